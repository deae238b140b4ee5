"""The ``firebus`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
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
            for kind, keys in r.get("declares", {}).items():
                print(f"{'':<{width}}  {'':<12}  {'':<10}  {kind}: {', '.join(keys)}")
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


def _print_errors(exc: Exception) -> None:
    for error in getattr(exc, "errors", None) or [exc]:
        print(f"error: {error}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        loaded, host = _load_and_prepare(args.config)
    except (ConfigError, PluginError) as exc:
        errors = list(getattr(exc, "errors", None) or [exc])
        partial = getattr(exc, "partial", None)
        if partial is not None:  # the file's structure is broken: check the rest of it too
            from .runtime import build_plugin_host, prepare

            try:
                prepare(partial, build_plugin_host(partial.site))
            except (ConfigError, PluginError) as more:
                known = {str(e) for e in errors}
                errors += [e for e in getattr(more, "errors", None) or [more] if str(e) not in known]
        errors.sort(key=lambda e: getattr(e, "line", None) or 0)
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{args.config}: {len(errors)} error(s)", file=sys.stderr)
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
        _print_errors(exc)
        return 2
    anyio.run(run_site, loaded, host, args)
    return 0


async def run_site(loaded: Any, host: PluginHost, args: argparse.Namespace, demo: bool = False,
                   announce: Callable[[str, tuple[str, str]], None] | None = None,
                   interrupted: Callable[[], bool] | None = None) -> None:
    """Run the core and (unless --no-web) the panel until SIGINT/SIGTERM.

    ``announce(url, (name, password))`` is called once the panel listens (the demo's guide);
    ``interrupted()`` says whether a signal came while starting that was lost (see demo.py)."""
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
            if interrupted is None or not interrupted():
                async for _ in signals:
                    break
            if server is not None:
                server.stop()  # the panel first, then the core
            core.stop()


def _site_database(args: argparse.Namespace) -> tuple[Path, Any]:
    """The database ``--config`` (its storage.path) or ``--data`` (file or folder) names, and
    the loaded site file (None with --data)."""
    if args.config:
        loaded = load_file(args.config)
        path = Path(loaded.site.storage.path)
        return (path if path.is_absolute() else loaded.path.parent / path), loaded
    if args.data:
        path = Path(args.data)
        return (path / "firebus.db" if path.is_dir() or not path.suffix else path), None
    raise ConfigError("firebus", None, "", "say which site: --config SITE.yaml or --data DIR")


def _site_time(ts: float, loaded: Any) -> str:
    import datetime as dt
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(loaded.site.site.timezone) if loaded is not None else None
    return dt.datetime.fromtimestamp(ts, tz).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z")


def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import BackupError, backup_folder, prune, take_backup

    db, loaded = _site_database(args)
    configured = loaded.site.backup if loaded is not None else None
    dest = Path(args.to) if args.to else backup_folder(db, configured.to if configured else "backups")
    try:
        result = take_backup(db, dest)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"backup: {result.path} ({result.size / 1e6:.1f} MB in {result.seconds:.1f} s, "
          f"integrity ok; schema {', '.join(f'{k} {v}' for k, v in sorted(result.versions.items()))}; "
          f"taken {_site_time(result.path.stat().st_mtime, loaded)})")
    if result.media_copied:
        print(f"media: {result.media_copied} new file(s) (alarm stills and clips) in {result.path.parent / 'media'}")
    keep = args.keep if args.keep is not None else (configured.keep if configured and not args.to else None)
    if keep:
        for old in prune(result.path.parent, keep):
            print(f"removed old backup {old}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .backup import BackupError, restore, verify

    db, loaded = _site_database(args)
    try:
        if args.check:
            versions = verify(args.backup)
            print(f"{args.backup}: integrity ok; schema {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}")
            return 0
        result = restore(args.backup, db)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.backup} to {result.db} (integrity ok)")
    if result.moved_aside is not None:
        print(f"the database it replaced is kept as {result.moved_aside}")
    print("start the core; it migrates the schema if the backup is from an older release")
    return 0


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
        "backup", help="copy the site database while the core runs (verified; docs/configuration.md)",
        description="A consistent online copy (SQLite backup API), checked with PRAGMA integrity_check "
        "before it gets its name firebus-<UTC time>.db. Default folder: the site file's backup.to, "
        "else backups/ beside the database.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="site file (finds the database through storage.path)")
    where.add_argument("--data", help="the site database file, or the folder holding firebus.db")
    p.add_argument("--to", help="folder for the backup, or a file name ending in .db")
    p.add_argument("--keep", type=int, help="then delete all but the KEEP newest backups in that folder "
                   "(default: the site file's backup.keep, when backing up there)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore", help="replace the site database with a backup (refused while the core runs)",
        description="Verifies the backup (PRAGMA integrity_check), refuses while any firebus process has "
        "the database open, moves the current database aside (never deletes it) and puts the backup "
        "in its place. The core migrates an older schema when it starts.")
    p.add_argument("backup", help="the backup file (firebus-….db)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", help="site file (finds the database through storage.path)")
    where.add_argument("--data", help="the site database file, or the folder holding firebus.db")
    p.add_argument("--check", action="store_true", help="only verify the backup; change nothing")
    p.set_defaults(func=cmd_restore)

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
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # a missing or broken site file named by --config
        _print_errors(exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
