"""``firebus federation centre --pg DSN --nats URL``: run the centre's ingest until stopped."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any, Awaitable, Callable

from firebus.sdk.core_api import AlarmAction

from .access import CentreRole


def add_commands(cli: Any) -> None:
    fed = cli.add_parser("federation", help="many sites, one centre: NATS JetStream → PostgreSQL "
                                            "/ 多站点联网：NATS JetStream → PostgreSQL")
    sub = fed.add_subparsers(dest="federation_cmd", required=True)
    centre = sub.add_parser("centre", help="run the centre: JetStream consumers writing into PostgreSQL "
                                           "/ 运行中心端：从 JetStream 写入 PostgreSQL")
    centre.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    centre.add_argument("--nats", required=True, action="append",
                        help="NATS server URL (repeat for a cluster) / NATS 服务器地址（集群可重复）")
    centre.add_argument("--stream", default="FIREBUS", help="JetStream stream (default FIREBUS) / 流名称")
    centre.add_argument("--creds", default=None, help="NATS credentials file / NATS 凭据文件")
    centre.add_argument("--ack-wait", type=float, default=10.0,
                        help="seconds before an unacknowledged batch is delivered again (default 10) "
                             "/ 未确认批次重投等待秒数")
    centre.add_argument("--stats-every", type=float, default=0.0,
                        help="print a JSON line of counters every N seconds (0: never) / 每 N 秒输出计数")
    centre.add_argument("--http", default=None, metavar="HOST:PORT",
                        help="serve the commands API there (docs/federation.md) / 在此地址提供命令 API")
    centre.add_argument("--command-expiry", type=float, default=24 * 3600.0, metavar="SECONDS",
                        help="a site refuses a command older than this (default 86400) / 命令有效期（秒）")
    centre.set_defaults(func=run_centre)

    user = sub.add_parser("user", help="centre users of the commands API / 中心端 API 用户")
    user_sub = user.add_subparsers(dest="federation_user_cmd", required=True)
    add = user_sub.add_parser("add", help="create or replace a user; prints a new token once "
                                          "/ 新建或替换用户，输出一次性显示的令牌")
    add.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    add.add_argument("--name", required=True, help="user name / 用户名")
    add.add_argument("--role", required=True, choices=[str(r) for r in CentreRole], help="role / 角色")
    add.add_argument("--site", action="append", default=[],
                     help="a site the user sees (repeat; admin and integrator see all) / 可见站点（可重复）")
    add.add_argument("--org", action="append", default=[],
                     help="an organisation whose sites (and those below it) the user sees (repeat) "
                          "/ 所属组织，可见其及下级组织的站点（可重复）")
    add.set_defaults(func=run_user_add)

    org = sub.add_parser("org", help="organisations at the centre and the sites they cover / 中心端组织机构及其覆盖站点")
    org_sub = org.add_subparsers(dest="federation_org_cmd", required=True)
    org_add = org_sub.add_parser("add", help="create or replace an organisation / 新建或替换组织")
    org_add.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    org_add.add_argument("--key", required=True, help="organisation key / 组织编号")
    org_add.add_argument("--name", required=True, help="name (Chinese) / 名称（中文）")
    org_add.add_argument("--name-en", default="", help="English name (default none) / 英文名称")
    org_add.add_argument("--kind", required=True, metavar="KIND",
                         help="fire_brigade, town, regulator, maintenance or other / 组织类型")
    org_add.add_argument("--parent", default=None, help="the organisation above it (default: none, a root) / 上级组织")
    org_add.add_argument("--site", action="append", default=[],
                         help="a site it covers directly (repeat; replaces the list) / 直接覆盖的站点（可重复，整体替换）")
    org_add.set_defaults(func=run_org_add)
    org_remove = org_sub.add_parser("remove", help="remove an organisation with no child organisations and no "
                                                   "users / 删除没有下级组织和用户的组织")
    org_remove.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    org_remove.add_argument("--key", required=True, help="organisation key / 组织编号")
    org_remove.set_defaults(func=run_org_remove)
    org_list = org_sub.add_parser("list", help="list the organisations as trees / 以树形列出组织")
    org_list.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    org_list.add_argument("--json", action="store_true", help="print JSON / 输出 JSON")
    org_list.set_defaults(func=run_org_list)

    command = sub.add_parser("command", help="send an alarm command to a site as a centre user "
                                             "/ 以中心用户身份向站点发送报警命令")
    command.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    command.add_argument("--nats", required=True, action="append", help="NATS server URL / NATS 服务器地址")
    command.add_argument("--creds", default=None, help="NATS credentials file / NATS 凭据文件")
    command.add_argument("--stream", default="FIREBUS_CMD", help="command stream (default FIREBUS_CMD) / 命令流名称")
    command.add_argument("--as", dest="user", required=True, help="the centre user it is from / 发出命令的中心用户")
    command.add_argument("--site", required=True, help="site id / 站点编号")
    command.add_argument("--alarm", required=True, help="alarm id at the site / 站点的报警编号")
    command.add_argument("--kind", required=True, choices=[str(a) for a in AlarmAction],
                         help="acknowledge (确认), silence (消音) or clear (复位)")
    command.add_argument("--note", default="", help="note for the alarm history / 写入报警记录的备注")
    command.set_defaults(func=run_command)

    listing = sub.add_parser("commands", help="list commands and the sites' answers / 列出命令及站点回复")
    listing.add_argument("--pg", required=True, help="PostgreSQL DSN or URL / PostgreSQL 连接串")
    listing.add_argument("--as", dest="user", required=True, help="list what this centre user sees / 以此用户的范围列出")
    listing.add_argument("--site", default=None, help="only this site / 仅此站点")
    listing.add_argument("--alarm", default=None, help="only this alarm / 仅此报警")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50) / 最多条数")
    listing.set_defaults(func=run_commands)


def run_centre(args: argparse.Namespace) -> int:
    try:
        import nats  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        print(f"错误 error: 缺少依赖 {exc.name}，请安装 firebus[federation] / "
              f"missing {exc.name}: pip install 'firebus[federation]'", file=sys.stderr)
        return 2
    from .centre import Centre, CentreConfig

    centre = Centre(CentreConfig(pg=args.pg, nats=list(args.nats), stream=args.stream, credentials=args.creds,
                                  ack_wait_s=args.ack_wait, http=args.http, command_expiry_s=args.command_expiry))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        runner = asyncio.create_task(centre.run())

        async def ready() -> None:
            await centre.ready.wait()
            print(json.dumps({"ready": True, "stream": args.stream, "http": args.http}), flush=True)
            while args.stats_every > 0:
                await asyncio.sleep(args.stats_every)
                print(json.dumps(centre.metrics()), flush=True)

        announcer = asyncio.create_task(ready())
        try:
            await runner
        finally:
            announcer.cancel()
            runner.cancel()

    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    return 0


def _fail(en: str, zh: str) -> int:
    print(f"错误 error: {zh} / {en}", file=sys.stderr)
    return 2


def _offline(func: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    """Run a one-shot command; its refusals and a missing database are sentences, not tracebacks."""
    try:
        import psycopg
    except ImportError as exc:
        return _fail(f"missing {exc.name}: pip install 'firebus[federation]'",
                     f"缺少依赖 {exc.name}，请安装 firebus[federation]")
    from .desk import DeskError
    from .orgs import OrgRefused

    try:
        return asyncio.run(func(args))
    except (DeskError, OrgRefused) as exc:
        return _fail(exc.en, exc.zh)
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        return _fail(f"the database's schema is older than this firebus ({str(exc).strip()}); start "
                     "firebus federation centre once, or run firebus federation org list, to update it",
                     f"数据库结构比此版本旧（{str(exc).strip()}）；先启动一次 firebus federation centre"
                     "或运行 firebus federation org list 以更新")
    except psycopg.OperationalError as exc:
        return _fail(f"cannot reach PostgreSQL: {str(exc).strip()}", f"无法连接 PostgreSQL：{str(exc).strip()}")


async def _user(desk: Any, name: str) -> Any:
    from .access import USER_BY_NAME, user_from_row
    from .desk import DeskError

    rows = await desk.query(USER_BY_NAME, (name,))
    if not rows:
        raise DeskError(404, "user_not_found", f"no centre user {name!r} (firebus federation user add)",
                        f"没有中心用户 {name!r}（firebus federation user add）")
    return user_from_row(rows[0])


async def _migrated(pg: str) -> None:
    from .centre import Centre, CentreConfig

    await Centre(CentreConfig(pg=pg, nats=[])).migrate()


def run_user_add(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        import psycopg

        from .access import add_user
        from .desk import CommandDesk
        from .orgs import check_orgs

        await _migrated(args.pg)
        orgs = list(dict.fromkeys(args.org))
        desk = CommandDesk(args.pg)
        try:
            await check_orgs(desk.query, orgs)
        finally:
            await desk.close()
        async with await psycopg.AsyncConnection.connect(args.pg, autocommit=True) as conn:
            token = await add_user(conn, args.name, CentreRole(args.role), list(args.site), orgs)
        print(json.dumps({"name": args.name, "role": args.role, "sites": list(args.site), "orgs": orgs,
                          "token": token}, ensure_ascii=False))
        return 0

    return _offline(main, args)


def run_org_add(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        import psycopg

        from .orgs import check_fields, put_org

        check_fields(args.key, args.name, args.kind, args.parent, list(args.site))  # before touching the database
        await _migrated(args.pg)
        async with await psycopg.AsyncConnection.connect(args.pg, autocommit=True) as conn:
            done = await put_org(conn, args.key, args.name, args.kind, name_en=args.name_en, parent=args.parent,
                                 sites=list(args.site))
        print(json.dumps(done, ensure_ascii=False))
        return 0

    return _offline(main, args)


def run_org_remove(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        import psycopg

        from .orgs import remove_org

        await _migrated(args.pg)
        async with await psycopg.AsyncConnection.connect(args.pg, autocommit=True) as conn:
            done = await remove_org(conn, args.key)
        print(json.dumps(done, ensure_ascii=False))
        return 0

    return _offline(main, args)


def run_org_list(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        from .desk import CommandDesk
        from .orgs import load_tree, text_lines, to_builtins

        await _migrated(args.pg)
        desk = CommandDesk(args.pg)
        try:
            tree = await load_tree(desk.query)
        finally:
            await desk.close()
        if args.json:
            print(json.dumps(to_builtins(tree, tree.roots()), ensure_ascii=False))
        else:
            print("\n".join(text_lines(tree)) or "(没有组织 / no organisations)")
        return 0

    return _offline(main, args)


def run_command(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        from .desk import CommandDesk

        desk = CommandDesk(args.pg, command_stream=args.stream)
        nc = None
        try:
            user = await _user(desk, args.user)
            try:
                import nats

                kwargs: dict[str, Any] = {"user_credentials": args.creds} if args.creds else {}
                nc = await nats.connect(servers=list(args.nats), connect_timeout=2, max_reconnect_attempts=0,
                                        **kwargs)
                desk.js, desk.nc = nc.jetstream(timeout=5), nc
            except Exception as exc:  # stored unsent: a running centre publishes it
                print(f"注意 note: 无法连接 NATS，命令已保存，由中心端稍后发出 / cannot reach NATS ({exc}); "
                      "the command is stored and a running centre sends it", file=sys.stderr)
            view, _ = await desk.issue(user, args.site, args.alarm, args.kind, note=args.note)
            print(json.dumps(view, ensure_ascii=False))
            return 0
        finally:
            if nc is not None:
                await nc.close()
            await desk.close()

    return _offline(main, args)


def run_commands(args: argparse.Namespace) -> int:
    async def main(args: argparse.Namespace) -> int:
        from .desk import CommandDesk

        desk = CommandDesk(args.pg)
        try:
            items, total = await desk.list(await _user(desk, args.user), site_id=args.site, alarm_id=args.alarm,
                                           limit=max(1, min(args.limit, 500)))
        finally:
            await desk.close()
        print(json.dumps({"items": items, "total": total}, ensure_ascii=False))
        return 0

    return _offline(main, args)
