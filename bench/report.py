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

The running plugin's paths are measured on the same database: the report through
``CoreAPI.history`` (core/history.py: the rollups plus the not-yet-rolled journal
tail in one snapshot) instead of the CLI's direct queries; seeding the live state
from history (once at start); and the live feed's merge rate (journal state
changes into 5-minute and hourly buckets, entries per second).
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


class Ticker:
    """Measures the longest the event loop goes without running a 2 ms ticker (an alarm would wait as long)."""

    async def __aenter__(self) -> "Ticker":
        self.max_gap = 0.0
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.002)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last - 0.002)
            last = now

    async def __aexit__(self, *exc: object) -> None:
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)


async def running_paths(db: Path, r) -> dict:
    """The plugin's paths in the running core, over the same file (CoreSource, LiveFeed)."""
    from types import SimpleNamespace

    from firebus.core.history import read_history
    from firebus.plugins.reports.core_source import CoreSource
    from firebus.plugins.reports.feed import LiveFeed
    from firebus.sdk import Event, StateChanged

    end = parse_period("2026-11").end
    async with ReadOnlyStorage(db) as storage:
        core = SimpleNamespace(storage=storage, clock=SimpleNamespace(time=lambda: end),
                               history=lambda *a: read_history(storage, *a))
        source = CoreSource(core)
        t = time.perf_counter()
        rh = await unit_report(source, "plant", parse_period("2026-11"), ReportsConfig())
        t_history = time.perf_counter() - t
        # The scheduler's way: the whole report in a worker thread, queries bridged to this loop;
        # a ticker on the loop measures how long the loop is ever held meanwhile.
        import asyncio

        from firebus.plugins.reports.service import _Bridge

        bridge = _Bridge(source, asyncio.get_running_loop())

        def work() -> bytes:
            rep = asyncio.run(unit_report(bridge, "plant", parse_period("2026-11"), ReportsConfig()))
            return render(rep, Format.PDF, "zh")

        async with Ticker() as tick:
            t = time.perf_counter()
            await anyio.to_thread.run_sync(work)
            t_sched = time.perf_counter() - t
        stall_sched = tick.max_gap
        feed = LiveFeed(core, ReportsConfig(), "Asia/Shanghai", source)
        unit = await source.unit("plant")
        places, devices = await source.places(unit.id), await source.devices(unit.id)
        points = await source.points(unit.id, feed._classes())
        live = LiveScore(unit, places, devices, points, ReportsConfig())
        feed.scores.add(live)
        async with Ticker() as tick:  # the ceiling: the same ticker with the loop idle (machine load, OS)
            await anyio.sleep(3)
        stall_idle = tick.max_gap
        async with Ticker() as tick:
            t = time.perf_counter()
            await feed._seed(live, [p.id for p in live.points], end)
            t_seed = time.perf_counter() - t
        stall_seed = tick.max_gap
        async with Ticker() as tick:
            t = time.perf_counter()
            copy = live.take(end)
            live.put(await anyio.to_thread.run_sync(copy.compute, end))
            t_score = time.perf_counter() - t
        stall_score = tick.max_gap
        # One minute of the unit's 1-minute data, 60 times: 60,000 state changes in batches of 1,000.
        seq0 = max(feed.through.values()) + 1
        events = []
        for m in range(60):
            for i, p in enumerate(live.points):
                ev = Event(data=StateChanged(point_id=p.id, device_id=p.device_id, point_key=p.key,
                                             point_class=p.point_class, ts=end - 3600 + m * 60, new_value=50.0 + m))
                ev.seq = seq0 + m * len(live.points) + i
                events.append(ev)
        t = time.perf_counter()
        for i in range(0, len(events), 1000):
            await feed._on_entries(events[i:i + 1000])
        t_feed = time.perf_counter() - t
    return {
        "scheduled_report_pdf_s": round(t_sched, 2), "scheduled_report_max_loop_stall_ms": round(stall_sched * 1000, 1),
        "live_seed_max_loop_stall_ms": round(stall_seed * 1000, 1),
        "idle_max_loop_stall_ms": round(stall_idle * 1000, 1),
        "live_score_max_loop_stall_ms": round(stall_score * 1000, 1),
        "history_report_data_s": round(t_history, 3), "history_report_score": rh.score.total,
        "history_report_same_score": rh.score.total == r.score.total,
        "live_seed_s": round(t_seed, 3), "live_score_s": round(t_score, 3),
        "live_feed_entries_per_s": round(len(events) / t_feed), "live_feed_entries": len(events),
    }


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

    progress("running-core paths: report through CoreAPI.history, live seed, live feed")
    running = anyio.run(running_paths, db, r)

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
        "running": running,
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
