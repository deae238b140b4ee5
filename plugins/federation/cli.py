"""``firebus federation centre --pg DSN --nats URL``: run the centre's ingest until stopped."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any


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
    centre.set_defaults(func=run_centre)


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
                                  ack_wait_s=args.ack_wait))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        runner = asyncio.create_task(centre.run())

        async def ready() -> None:
            await centre.ready.wait()
            print(json.dumps({"ready": True, "stream": args.stream}), flush=True)
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
