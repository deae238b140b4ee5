"""``firebus inspection labels|export``: the QR label sheet and the monthly GB 25201 forms offline.

Exit codes: 0 done, 1 bad input (site file, month, unreadable database), 2 usage.
``export`` reads the site's database read-only (SQLite ``mode=ro``): it can run
beside a live core and never takes its write lock.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import yaml

from firebus.sdk import SystemClock

from . import printing
from .config import ConfigError, load_config


def add_commands(cli: Any) -> None:
    p = cli.add_parser("inspection", help="patrol checkpoints: QR label sheet, monthly GB 25201 forms (巡查标签、记录导出)")
    sub = p.add_subparsers(dest="inspection_cmd")
    lab = sub.add_parser("labels", help="PDF sheet of the checkpoints' QR labels")
    lab.add_argument("--config", required=True, help="site file")
    lab.add_argument("--base-url", required=True, help="the panel's address as phones reach it, e.g. https://fire.example.cn")
    lab.add_argument("--unit", help="only this unit's checkpoints (unit key)")
    lab.add_argument("--out", required=True, help="PDF file to write")
    lab.set_defaults(func=_labels)
    ex = sub.add_parser("export", help="a month's patrol, duty or hazard records as CSV or PDF")
    ex.add_argument("--config", required=True, help="site file")
    ex.add_argument("--kind", choices=("patrol", "duty", "hazards"), default="patrol")
    ex.add_argument("--month", required=True, help="YYYY-MM, in the site's time zone")
    ex.add_argument("--format", choices=("csv", "pdf"), default="csv")
    ex.add_argument("--unit", help="only this unit (unit key)")
    ex.add_argument("--out", required=True, help="file to write ('-' for standard output, CSV only)")
    ex.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _site(path: str) -> dict[str, Any]:
    try:
        site = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, f"cannot read the site file: {exc}") from None
    if not isinstance(site, dict):
        raise ConfigError(path, "the site file is not a mapping")
    return site


class _ReadOnly:
    """``fetchall``/``fetchone`` over a read-only SQLite connection (what the service's readers need)."""

    def __init__(self, db: Path) -> None:
        if not db.exists():
            raise ConfigError(str(db), "no database here (has the site run yet?)")
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

    async def fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Any = ()) -> tuple[Any, ...] | None:
        return self.conn.execute(sql, params).fetchone()

    async def fetch_batch(self, statements: Any) -> list[list[tuple[Any, ...]]]:
        return [self.conn.execute(sql, params).fetchall() for sql, params in statements]


class _Core:
    def __init__(self, storage: Any) -> None:
        self.storage, self.clock, self.registry = storage, SystemClock(), None


def _service(args: argparse.Namespace, storage: Any = None) -> Any:
    from .service import Service

    site = _site(args.config)
    cfg = load_config(site.get("inspection") or {}, site)
    return Service(_Core(storage), cfg, site)


def _labels(args: argparse.Namespace) -> int:
    from .web import label_list

    try:
        service = _service(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    labels = label_list(service, args.base_url, lambda key: not args.unit or service.unit_of(key) == args.unit)
    if not labels:
        print("error: no checkpoint with a QR tag (inspection.checkpoints[].tags: {kind: qr}) / 没有带二维码的点位",
              file=sys.stderr)
        return 1
    Path(args.out).write_bytes(printing.pdf(printing.labels_html(labels, "checkpoint labels")))
    print(f"{len(labels)} label(s) → {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .web import form_data

    try:
        site = _site(args.config)
        db = Path(str((site.get("storage") or {}).get("path") or "firebus.db"))
        if not db.is_absolute():
            db = Path(args.config).resolve().parent / db
        service = _service(args, _ReadOnly(db))
        header, rows = anyio.run(form_data, service, args.kind, args.month, None, args.unit)
    except (ConfigError, ValueError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "csv":
        data = printing.to_csv(header, rows)
    else:
        if args.out == "-":
            print("error: a PDF needs --out FILE", file=sys.stderr)
            return 1
        title = printing.both({"patrol": "form_patrol", "duty": "form_duty", "hazards": "form_hazards"}[args.kind])
        data = printing.pdf(printing.form_html(title, str((site.get("site") or {}).get("name") or ""), args.month,
                                               header, rows, ""))
    if args.out == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.out).write_bytes(data)
        print(f"{len(rows)} row(s) → {args.out}")
    return 0
