"""Health-check report build time: a monthly report of a unit with 1,000 points at 1-minute data.

    .venv/bin/python bench/report.py [--devices 200] [--json] [--keep DIR]
    .venv/bin/python bench/report.py --docs docs/img/reports     # the docs' page images and plots

The unit (``synthetic.large``): 200 detectors × 5 points (residual current, T1–T3,
load current) = 1,000 points, 1-minute data for November 2026 plus the 28 days
before it, as the rollups that data produces (``readings_5m``: n = 5 per bucket,
8.6 M rows; ``readings_1h``: n = 60, 0.7 M rows), in a real SQLite file created
by the core's migrations.  The figure is the wall time of the whole report from
the database to the PDF bytes (the same code as ``firebus report``), with its
phases, against the issue's goal of 10 s on 2 cores; plus the JSON-only time and
the live-score state's memory for the same unit.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, progress  # noqa: E402

from firebus.plugins.reports import synthetic  # noqa: E402
from firebus.plugins.reports.config import ReportsConfig  # noqa: E402
from firebus.plugins.reports.live import LiveScore  # noqa: E402
from firebus.plugins.reports.period import parse_period  # noqa: E402
from firebus.plugins.reports.readonly import ReadOnlyStorage  # noqa: E402
from firebus.plugins.reports.render import Format, render  # noqa: E402
from firebus.plugins.reports.report import summarize, unit_report  # noqa: E402
from firebus.plugins.reports.sqlite_source import StorageSource  # noqa: E402

GOAL_S = 10.0


def build_db(path: Path, site: synthetic.Site, five_from: float | None = None, five_classes: set[str] | None = None,
             also: list[synthetic.Site] = ()) -> dict:
    from firebus.core.alarms.schema import ALARM_MIGRATIONS
    from firebus.core.storage import Storage

    async def migrate() -> None:
        async with Storage(path, synchronous="NORMAL").running(ALARM_MIGRATIONS):
            pass

    anyio.run(migrate)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    n5 = n1 = 0
    t = time.perf_counter()
    for other in also:  # more units in the same database (the docs' summary)
        with db:
            db.executemany(synthetic.SQL_PLACE, other.places)
            db.executemany(synthetic.SQL_DEVICE, other.devices)
            db.executemany(synthetic.SQL_POINT, other.points)
            for five, hour in other.rollups(five_classes=five_classes, five_from=five_from):
                db.executemany(synthetic.SQL_5M, five)
                db.executemany(synthetic.SQL_1H, hour)
            db.executemany(synthetic.SQL_ALARM, other.alarms)
            db.executemany(synthetic.SQL_HISTORY, other.history)
    with db:
        db.executemany(synthetic.SQL_PLACE, site.places)
        db.executemany(synthetic.SQL_DEVICE, site.devices)
        db.executemany(synthetic.SQL_POINT, site.points)
        for i, (five, hour) in enumerate(site.rollups(five_classes=five_classes, five_from=five_from)):
            db.executemany(synthetic.SQL_5M, five)
            db.executemany(synthetic.SQL_1H, hour)
            n5 += len(five)
            n1 += len(hour)
            if i % 100 == 99:
                progress(f"  {i + 1} points written ({n5} 5-minute rows)")
        db.executemany(synthetic.SQL_ALARM, site.alarms)
        db.executemany(synthetic.SQL_HISTORY, site.history)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"rows_5m": n5, "rows_1h": n1, "write_s": round(time.perf_counter() - t, 1)}


async def build_report(db: Path, unit: str, fmt: Format, lang: str = "zh"):
    async with ReadOnlyStorage(db) as storage:
        t = time.perf_counter()
        r = await unit_report(StorageSource(storage), unit, parse_period("2026-11"), ReportsConfig())
        t_data = time.perf_counter() - t
    t = time.perf_counter()
    out = render(r, fmt, lang)
    return r, out, t_data, time.perf_counter() - t


def bench(args: argparse.Namespace) -> None:
    folder = Path(args.keep) if args.keep else Path(tempfile.gettempdir()) / "firebus-bench-report"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"large-{args.devices}.db"
    site = synthetic.large(args.devices)
    info = {}
    if not db.exists():
        progress(f"writing {len(site.plans)} points × {site.hours} h of rollups into {db} (once; kept for reruns)")
        tmp = db.with_suffix(".part")
        for f in folder.glob(tmp.name + "*"):
            f.unlink()
        info = build_db(tmp, site)
        tmp.rename(db)
    counts = sqlite3.connect(db).execute(
        "SELECT (SELECT count(*) FROM readings_5m), (SELECT count(*) FROM readings_1h), (SELECT count(*) FROM points)").fetchone()
    progress("monthly report, PDF")
    t0 = time.perf_counter()
    r, pdf, t_data, t_render = anyio.run(build_report, db, "plant", Format.PDF)
    total = time.perf_counter() - t0
    progress("monthly report, JSON")
    t0 = time.perf_counter()
    _, js, t_data_json, _ = anyio.run(build_report, db, "plant", Format.JSON)
    total_json = time.perf_counter() - t0

    places = [synthetic_place(p) for p in site.places]
    live = LiveScore(places[0], places, [synthetic_device(d) for d in site.devices], list(r_points(r)), ReportsConfig())
    ring_bytes = sum(a.nbytes for ring in [*live.hourly.values(), *live.five.values()] for a in ring.arrays())
    emit({
        "bench": "report",
        "what": f"monthly health-check report, unit of {counts[2]} points at 1-minute data (rollups), database → PDF",
        "points": counts[2], "rows_5m": counts[0], "rows_1h": counts[1],
        "seconds": round(total, 2), "goal_s": GOAL_S, "ratio_to_goal": round(total / GOAL_S, 3),
        "phases_s": {**r.timings, "data_s": round(t_data, 3), "render_pdf_s": round(t_render, 3)},
        "json_seconds": round(total_json, 2), "json_data_s": round(t_data_json, 3),
        "pdf_bytes": len(pdf), "json_bytes": len(js), "score": r.score.total, "grade": str(r.score.grade),
        "findings": len(r.findings), "alarms": r.totals.alarms,
        "live_state_mb": round(ring_bytes / 2**20, 1),
        **({"db_write": info} if info else {}),
        "machine": machine(),
    }, one_line=args.json)


def synthetic_place(row):
    from firebus.plugins.reports.model import Place

    return Place(row[0], row[1], row[2], row[4], row[3])


def synthetic_device(row):
    from firebus.plugins.reports.model import DeviceRef

    return DeviceRef(row[0], row[8], row[4], row[3], row[2], row[6], row[10])


def r_points(r):
    from firebus.plugins.reports.model import PointRef

    for s in r.settings:
        yield PointRef(s.point_id, s.device_id, s.point, s.point_class, s.unit, s.point, s.setting, s.pre_setting)


def docs(out: Path) -> None:
    """The school's report pages and plots as PNG (docs/reports.md §4)."""
    from firebus.plugins.reports.plots import all_charts

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "firebus.db"
        build_db(db, synthetic.school(), five_from=synthetic.local(2026, 11, 1), five_classes={"residual_current"},
                 also=[synthetic.large(20)])
        for lang in ("zh", "en"):
            r, pdf, _, _ = anyio.run(build_report, db, "school", Format.PDF, lang)
            path = Path(tmp) / f"r-{lang}.pdf"
            path.write_bytes(pdf)
            pages = 3 if lang == "zh" else 1
            subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", str(pages), str(path),
                            str(out / f"page-{lang}")], check=True)
            for f in out.glob(f"page-{lang}-*.png"):  # pdftoppm pads page numbers by the page count
                f.rename(out / f"page-{lang}-{int(f.stem.rsplit('-', 1)[1])}.png")
            if lang == "zh":
                for key, png in all_charts(r, "zh").items():
                    (out / f"plot-{key}.png").write_bytes(png)
                plant, _, _, _ = anyio.run(build_report, db, "plant", Format.JSON, lang)
                s = summarize([r, plant], r.period, ReportsConfig())
                spdf = Path(tmp) / "s.pdf"
                spdf.write_bytes(render(s, Format.PDF, "zh"))
                subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", str(spdf), str(out / "summary-zh")],
                               check=True)
                for f in out.glob("summary-zh-*.png"):
                    f.rename(out / "summary-zh-1.png")
    progress(f"wrote {sorted(p.name for p in out.glob('*.png'))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200, help="detectors of 5 points each (default 200 = 1,000 points)")
    p.add_argument("--json", action="store_true", help="one JSON line")
    p.add_argument("--keep", help="folder for the database (default: the temp folder; reused when present)")
    p.add_argument("--docs", metavar="DIR", help="write the docs' example pages and plots instead")
    args = p.parse_args()
    if args.docs:
        docs(Path(args.docs))
    else:
        bench(args)


if __name__ == "__main__":
    main()
