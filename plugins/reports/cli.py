"""``firebus report``: a health-check report of a unit (or a summary of several) for any past period."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import yaml

from .collect import ReportError
from .config import ReportsConfig, load_config
from .period import PeriodError, parse_period
from .readonly import DatabaseError, ReadOnlyStorage
from .render import Format, Lang, render
from .report import summarize, unit_report
from .settings import ThresholdSettings
from .sitefile import SiteFacts, SiteFileError, database_path, read_site
from .sqlite_source import StorageSource


class UsageError(Exception):
    pass


def add_commands(cli: Any) -> None:
    p = cli.add_parser(
        "report",
        help="electrical-fire health-check report of a unit for a period (PDF, HTML or JSON)",
        description="Builds the health-check report of a unit (several --unit, or --all: a summary of them) "
        "for a past period from the site database's rollups and alarms. Progress goes to stderr.",
    )
    p.add_argument("--unit", action="append", default=[], metavar="KEY", help="unit key (repeat for a summary)")
    p.add_argument("--all", action="store_true", help="every unit of the database (a summary)")
    p.add_argument("--period", required=True, help="2026-11 (month), 2026-W46 (ISO week) or 2026-Q4 (quarter)")
    p.add_argument("--format", default="pdf", choices=[f.value for f in Format])
    p.add_argument("--config", "-c", help="site file: database (storage.path), timezone, thresholds, reports: section")
    p.add_argument("--data", help="the site database file, or the folder holding firebus.db")
    p.add_argument("--db", help="the site database file")
    p.add_argument("--lang", choices=[lang.value for lang in Lang], help="language (default: the site's, else zh)")
    p.add_argument("--tz", help="timezone of the period (default: the site's, else Asia/Shanghai)")
    p.add_argument("--scoring", metavar="FILE", help="YAML file with a reports: configuration (weights, bands …)")
    p.add_argument("--out", "-o", help="output file ('-': stdout; default report-UNIT-PERIOD-LANG.FORMAT)")
    p.set_defaults(func=cmd_report)


def _say(message: str) -> None:
    print(f"report: {message}", file=sys.stderr, flush=True)


def _config(args: argparse.Namespace, facts: SiteFacts | None) -> ReportsConfig:
    if not args.scoring:
        return facts.reports if facts else ReportsConfig()
    try:
        data = yaml.safe_load(Path(args.scoring).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"{args.scoring}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{args.scoring}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and "reports" in data:
        data = data["reports"]
    try:
        return load_config(data)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{args.scoring}: {exc}") from None


def cmd_report(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (UsageError, SiteFileError, PeriodError, DatabaseError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    facts = read_site(args.config) if args.config else None
    if args.data and args.db:
        raise UsageError("give --data or --db, not both")
    if not args.unit and not args.all:
        raise UsageError("say which unit: --unit KEY (repeat for a summary) or --all")
    path = database_path(args.data, args.db, facts)
    tz = args.tz or (facts.timezone if facts else "Asia/Shanghai")
    period = parse_period(args.period, tz)
    cfg = _config(args, facts)
    lang = args.lang or cfg.language or (facts.language if facts else "zh")
    if lang not in ("zh", "en"):
        raise UsageError(f"language {lang!r}: use zh or en")
    fmt = Format(args.format)
    if facts is None:
        _say("no --config: default thresholds (300 mA / 85 °C) and no device names from the site file")
    settings = ThresholdSettings.from_alarms_section(facts.alarms if facts else None)

    async def build() -> bytes:
        async with ReadOnlyStorage(path) as storage:
            source = StorageSource(storage, settings, facts.device_names if facts else None)
            keys = list(args.unit)
            if args.all:
                keys = [u.key for u in await source.units()]
                if not keys:
                    raise ReportError(f"{path} holds no units")
            reports = []
            for key in keys:
                t = time.perf_counter()
                _say(f"{key}: collecting {period.label} ({period.kind})")
                r = await unit_report(source, key, period, cfg, progress=_say)
                _say(f"{key}: score {r.score.total:g} ({r.score.grade}), {len(r.findings)} findings, "
                     f"{r.totals.alarms} alarms, {time.perf_counter() - t:.2f} s")
                reports.append(r)
            for problem in dict.fromkeys(settings.problems):
                _say(f"warning: {problem}")
        report = summarize(reports, period, cfg) if args.all or len(reports) > 1 else reports[0]
        _say(f"rendering {fmt.value} ({lang})")
        return render(report, fmt, lang)

    data = anyio.run(build)
    if args.out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    name = args.unit[0] if len(args.unit) == 1 and not args.all else "summary"
    out = Path(args.out or f"report-{name}-{period.label}-{lang}.{fmt.value}")
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{out}: cannot write: {exc.strerror}") from None
    _say(f"wrote {out} ({len(data)} bytes)")
    return 0
