"""``firebus user …`` and ``firebus token …``: accounts and API tokens from the shell.

They open the site database directly (``--config`` finds it through the site
file's ``storage.path``; ``--data`` names the file or its folder), so they work
whether or not the core is running (SQLite WAL lets both write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

import anyio

from .auth import WEB_MIGRATIONS, AuthError, AuthStore, Role

DB_NAME = "firebus.db"


def database_path(args: argparse.Namespace) -> Path:
    if getattr(args, "data", None):
        path = Path(args.data)
        path = path / DB_NAME if path.is_dir() or not path.suffix else path
        # A mistyped --data must not quietly start an empty site database (docs/configuration.md).
        if not path.is_file() and not getattr(args, "init", False):
            raise AuthError(f"no site database at {path} (check --data, or pass --init to create one)")
        return path
    if getattr(args, "config", None):
        from ..config import load_file

        loaded = load_file(args.config)
        path = Path(loaded.site.storage.path)
        return path if path.is_absolute() else loaded.path.parent / path
    raise AuthError("say where the site database is: --config SITE.yaml or --data DIR")


def _site_units(args: argparse.Namespace) -> set[str] | None:
    if not getattr(args, "config", None):
        return None
    from ..config import load_file

    return {u.key for u in load_file(args.config).site.units}


def _site_orgs(args: argparse.Namespace) -> dict[str, Any] | None:
    """Organisation key → Organisation of the site file (None without --config)."""
    if not getattr(args, "config", None):
        return None
    from firebus.sdk.orgs import OrgTree

    from ..config import load_file

    return {o.key: o for o in OrgTree.from_section(load_file(args.config).site.organisations)}


def _check_keys(args: argparse.Namespace) -> str | None:
    """What is wrong with the --unit and --org keys, checked against the site file (--config)."""
    try:
        known_units, known_orgs = _site_units(args), _site_orgs(args)
    except Exception as exc:  # a broken site file: say so, not a traceback
        return str(exc)
    if known_units is not None:
        missing = [u for u in args.unit if u not in known_units]
        if missing:
            return f"unknown unit(s) {missing}; the site file has {sorted(known_units)}"
    if known_orgs is not None:
        missing = [o for o in args.org if o not in known_orgs]
        if missing:
            have = ", ".join(f"{k} ({o.name})" for k, o in known_orgs.items()) or "none (no organisations: section)"
            return f"unknown organisation(s) {missing}; the site file has: {have}"
    elif args.org:
        print("warning: organisation keys not checked (pass --config SITE.yaml to check them)", file=sys.stderr)
    return None


def _scope_text(user: Any) -> str:
    if not user.units and not user.orgs:
        return "all units"
    parts = []
    if user.units:
        parts.append("units " + ", ".join(user.units))
    if user.orgs:
        parts.append("organisations " + ", ".join(user.orgs) + " (every unit under them)")
    return "; ".join(parts)


def _run(args: argparse.Namespace, job: Callable[[AuthStore], Awaitable[int]]) -> int:
    from ..storage import Storage

    global _TZ
    try:
        path = database_path(args)
        if getattr(args, "config", None):
            from zoneinfo import ZoneInfo

            from ..config import load_file

            _TZ = ZoneInfo(load_file(args.config).site.site.timezone)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        async with Storage(path).running(WEB_MIGRATIONS) as storage:
            try:
                return await job(AuthStore(storage))
            except AuthError as exc:  # inside: the storage task group would wrap it
                print(f"error: {exc}", file=sys.stderr)
                return 2

    return anyio.run(main)


#: the site's timezone when --config names the site file (the panel shows times in it too)
_TZ: dt.tzinfo | None = None


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, _TZ).astimezone(_TZ).strftime("%Y-%m-%d %H:%M %z") if ts else "-"


def cmd_user_add(args: argparse.Namespace) -> int:
    problem = _check_keys(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    async def job(store: AuthStore) -> int:
        user, password = await store.create_user(args.name, args.role, units=args.unit, orgs=args.org)
        await store.log("user_created", user.name, "cli",
                        f"role={user.role} units={','.join(user.units)} orgs={','.join(user.orgs)}")
        print(f"created {user.name} ({user.role}; {_scope_text(user)})")
        print(f"one-time password: {password}")
        print("it must be changed at first login")
        return 0

    return _run(args, job)


def cmd_user_set(args: argparse.Namespace) -> int:
    problem = _check_keys(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    async def job(store: AuthStore) -> int:
        if args.unit or args.org:
            user = await store.set_assignment(args.name, role=args.role, units=args.unit, orgs=args.org)
        else:  # only a new role: the units and organisations stay
            found = await store.get_user(args.name)
            if found is None:
                raise AuthError(f"no user {args.name!r}")
            user = await store.set_assignment(args.name, role=args.role, units=found.units, orgs=found.orgs)
        await store.log("user_changed", user.name, "cli",
                        f"role={user.role} units={','.join(user.units)} orgs={','.join(user.orgs)}")
        print(f"{user.name}: {user.role}; {_scope_text(user)} (from their next request)")
        return 0

    return _run(args, job)


def cmd_user_list(args: argparse.Namespace) -> int:
    async def job(store: AuthStore) -> int:
        for user in await store.list_users():
            flags = " disabled" if user.disabled else (" must-change" if user.must_change else "")
            scope = ",".join(user.units + [f"org:{o}" for o in user.orgs]) or "*"
            print(f"{user.name:<24} {user.role:<20} {scope:<24} {_when(user.created_ts)}{flags}")
        return 0

    return _run(args, job)


def _set_disabled(disabled: bool) -> Callable[[argparse.Namespace], int]:
    def cmd(args: argparse.Namespace) -> int:
        async def job(store: AuthStore) -> int:
            user = await store.get_user(args.name)
            if user is None:
                raise AuthError(f"no user {args.name!r}")
            await store.set_disabled(user.id, disabled)
            await store.log("user_disabled" if disabled else "user_enabled", user.name, "cli")
            print(f"{user.name}: {'disabled (sessions ended)' if disabled else 'enabled'}")
            return 0

        return _run(args, job)

    return cmd


def cmd_user_reset(args: argparse.Namespace) -> int:
    async def job(store: AuthStore) -> int:
        password = await store.reset_password(args.name)
        await store.log("password_reset", args.name, "cli")
        print(f"one-time password for {args.name}: {password} (sessions ended; change it at login)")
        return 0

    return _run(args, job)


def cmd_token_create(args: argparse.Namespace) -> int:
    async def job(store: AuthStore) -> int:
        raw, token = await store.create_token(args.user, label=args.label or "", days=args.days)
        await store.log("token_created", token.user_name, "cli", f"id={token.id}")
        print(raw)
        print(f"token id {token.id} for {token.user_name}; shown once, store it now "
              f"(revoke with: firebus token revoke {token.id})", file=sys.stderr)
        return 0

    return _run(args, job)


def cmd_token_list(args: argparse.Namespace) -> int:
    async def job(store: AuthStore) -> int:
        for t in await store.list_tokens(args.user):
            state = f"revoked {_when(t.revoked_ts)}" if t.revoked_ts else (
                f"expires {_when(t.expires_ts)}" if t.expires_ts else "active")
            print(f"{t.id}  {t.user_name:<20} {t.label:<16} created {_when(t.created_ts)}  "
                  f"last used {_when(t.last_used_ts)}  {state}")
        return 0

    return _run(args, job)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    if not args.token and not args.user:
        print("error: give a token id or --user NAME", file=sys.stderr)
        return 2

    async def job(store: AuthStore) -> int:
        if args.user:
            count = await store.revoke_user_tokens(args.user)
            await store.log("tokens_revoked", args.user, "cli", f"count={count}")
            print(f"revoked {count} token(s) of {args.user}")
            return 0
        if not await store.revoke_token(args.token):
            print(f"error: no token {args.token!r}", file=sys.stderr)
            return 1
        await store.log("token_revoked", "", "cli", f"id={args.token[:40]}")
        print("revoked")
        return 0

    return _run(args, job)


def _assignment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unit", action="append", default=[], metavar="UNIT",
                   help="site unit key the user may see (repeat for several; admin and integrator see all)")
    p.add_argument("--org", action="append", default=[], metavar="ORG",
                   help="organisation key of the site file: the user sees every unit under it (repeat for several)")


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="site file (finds the database through storage.path)")
    p.add_argument("--data", help="the site database file, or the folder holding firebus.db (it must exist)")
    p.add_argument("--init", action="store_true", help="with --data: create the database if there is none")


def add_web_commands(subparsers: Any) -> None:
    """Add ``user`` and ``token`` to the ``firebus`` CLI's sub-parsers."""
    user = subparsers.add_parser("user", help="panel and API users")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = user_sub.add_parser("add", help="add a user; prints a one-time password")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    _assignment_args(p)
    _where(p)
    p.set_defaults(func=cmd_user_add)
    p = user_sub.add_parser("set", help="change a user's role; --unit/--org given: they replace the user's "
                                        "units and organisations (both)")
    p.add_argument("name")
    p.add_argument("--role", choices=[r.value for r in Role], help="new role (default: keep)")
    _assignment_args(p)
    _where(p)
    p.set_defaults(func=cmd_user_set)
    p = user_sub.add_parser("list", help="list users")
    _where(p)
    p.set_defaults(func=cmd_user_list)
    for name, disabled in (("disable", True), ("enable", False)):
        p = user_sub.add_parser(name, help=f"{name} a user" + (" and end their sessions" if disabled else ""))
        p.add_argument("name")
        _where(p)
        p.set_defaults(func=_set_disabled(disabled))
    p = user_sub.add_parser("reset-password", help="new one-time password; ends the user's sessions")
    p.add_argument("name")
    _where(p)
    p.set_defaults(func=cmd_user_reset)

    token = subparsers.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    p = token_sub.add_parser("create", help="create an API token for USER (printed once)")
    p.add_argument("user")
    p.add_argument("--label", help="what the token is for")
    p.add_argument("--days", type=float, help="expire after this many days (default: until revoked)")
    _where(p)
    p.set_defaults(func=cmd_token_create)
    p = token_sub.add_parser("list", help="list tokens (never their secrets)")
    p.add_argument("user", nargs="?")
    _where(p)
    p.set_defaults(func=cmd_token_list)
    p = token_sub.add_parser("revoke", help="revoke a token by id (or all of --user)")
    p.add_argument("token", nargs="?", help="token id (or the whole token)")
    p.add_argument("--user", help="revoke every token of this user")
    _where(p)
    p.set_defaults(func=cmd_token_revoke)
