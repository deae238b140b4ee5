"""The ``firebus`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any, Callable, Sequence

import anyio

from .config import ConfigError, load_file
from .plugins import PluginError, PluginHost


def _host_for_listing(args: argparse.Namespace) -> PluginHost:
    from . import builtin

    host = PluginHost(strict=getattr(args, "strict", None) or None)
    host.register(builtin, name="core")
    host.load_entry_points()
    return host


def cmd_plugins(args: argparse.Namespace) -> int:
    host = _host_for_listing(args)
    conflicts = ""
    try:
        host.collect_declarations(None)
    except PluginError as exc:
        conflicts = str(exc)
    rows = host.listing()
    if args.json:
        print(json.dumps({"plugins": rows, "conflict": conflicts or None}, ensure_ascii=False, indent=2))
    else:
        width = max([len(r["name"]) for r in rows] + [4])
        print(f"{'name':<{width}}  {'status':<12}  {'version':<10}  distribution / hooks")
        for r in rows:
            print(f"{r['name']:<{width}}  {r['status']:<12}  {r['version'] or '-':<10}  {r['distribution'] or r['module']}")
            if r["hooks"]:
                print(f"{'':<{width}}  {'':<12}  {'':<10}  hooks: {', '.join(r['hooks'])}")
            if r["error"]:
                print(f"{'':<{width}}  {'':<12}  {'':<10}  error: {r['error']}")
        if conflicts:
            print(f"\nconflict: {conflicts}")
    failed = any(r["status"] in ("failed", "incompatible") for r in rows)
    return 1 if (conflicts or (failed and host.strict)) else 0


def _load_and_prepare(path: str) -> tuple[Any, Any]:
    from .runtime import build_plugin_host, prepare

    loaded = load_file(path)
    host = build_plugin_host(loaded.site)
    prepare(loaded, host)
    return loaded, host


def cmd_check(args: argparse.Namespace) -> int:
    try:
        loaded, host = _load_and_prepare(args.config)
    except (ConfigError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    site = loaded.site
    failed = [r for r in host.listing() if r["status"] in ("failed", "incompatible")]
    for r in failed:
        print(f"warning: plugin {r['name']} not loaded: {r['error']}", file=sys.stderr)
    print(
        f"{args.config}: OK — {len(site.units)} unit(s), {len(site.transports)} transport(s), "
        f"{len(site.devices)} device(s), {len(site.alarms.get('rules') or [])} configured rule(s)"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        loaded, host = _load_and_prepare(args.config)
    except (ConfigError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    anyio.run(run_site, loaded, host, args)
    return 0


async def run_site(loaded: Any, host: PluginHost, args: argparse.Namespace, demo: bool = False,
                   announce: Callable[[str, tuple[str, str]], None] | None = None) -> None:
    """Run the core and (unless --no-web) the panel until SIGINT/SIGTERM.

    ``announce(url, (name, password))`` is called once the panel listens (the demo's guide)."""
    from .runtime import Core
    from .web import demo_credentials, ensure_first_admin, serve

    core = Core(loaded, host)
    async with anyio.create_task_group() as tg:
        await tg.start(core.run)
        logging.getLogger("firebus").info("firebus running: %s (%d devices)", loaded.path, len(loaded.site.devices))
        server = None
        login = ("", "")
        if not getattr(args, "no_web", False):
            if demo:
                login = await demo_credentials(core.storage)
                print(f"demo login: {login[0]} / {login[1]}", flush=True)
            else:
                password = await ensure_first_admin(core.storage)
                if password:
                    print(
                        f"first start: log in as 'admin' with the one-time password {password} "
                        "(shown once; it must be changed at first login)",
                        flush=True,
                    )
            server = await tg.start(serve, core, args.host, args.port)
            print(f"panel: {server.url}", flush=True)
            if announce is not None:
                announce(server.url, login)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if server is not None:
                    server.stop()  # the panel first, then the core
                core.stop()
                break


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def build_parser(host: PluginHost | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebus", description="Smart fire-safety monitoring core (智慧消防).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins: name, version, distribution, hooks, load status")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any plugin failed to load")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("check", help="validate a site file without starting anything")
    p.add_argument("config", help="site file (YAML)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("run", help="run a site: the core and its web panel")
    p.add_argument("--config", "-c", required=True, help="site file (YAML)")
    p.add_argument("--host", help="panel address (default: the site file's web.host)")
    p.add_argument("--port", type=int, help="panel port (default: the site file's web.port)")
    p.add_argument("--no-web", action="store_true", help="run without the panel")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "demo",
        help="run the demo site: simulated devices of every class, the core and the panel",
        description="Starts a local Mosquitto, Modbus and MQTT device simulators, the core on "
        "the example site and the panel; prints the URL, the demo login and what happens when. "
        "The scenario repeats every 5 minutes; the database starts empty unless --keep.",
    )
    p.add_argument("--host", default="127.0.0.1", help="panel address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="panel port (default 8080)")
    p.add_argument("--data", default="data/demo",
                   help="folder for the demo database and broker (default data/demo); emptied at start")
    p.add_argument("--keep", action="store_true", help="resume the last demo database instead of starting fresh")
    p.add_argument("--config", help="site file (default: the example site shipped with firebus)")
    p.add_argument("--no-web", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)

    try:
        from .sim.cli import add_sim_commands
    except ImportError:  # simulators not installed in this build
        pass
    else:
        add_sim_commands(sub, host)

    from firebus.sdk.tools import add_sdk_commands

    from .web import add_web_commands

    add_web_commands(sub)
    add_sdk_commands(sub)
    if host is not None:
        host.call_each("firebus_register_commands", cli=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from . import builtin

    host = PluginHost()
    host.register(builtin, name="core")
    try:
        host.load_entry_points()
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser(host)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # one line per HTTP request drowns the alarms
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
