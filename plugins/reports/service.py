"""The plugin inside the running core: live score feed, scheduled reports, their files.

``ReportsService.run`` (a core task started from ``firebus_startup``) seeds and starts the
live feed, then runs one loop per ``reports.schedule`` entry: sleep on the core's clock
until the entry is due (site timezone), make the report of the period just ended for
each unit, store its files and its row, send it to the recipients.

A report is built off the event loop: collection, analysis and rendering run in a worker
thread; only the queries come back to the core's loop (``_Bridge``), so alarms are never
behind a report being made.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import anyio

from firebus.sdk import new_id

from . import deliver
from .config import OutFormat, ReportsConfig, Schedule
from .core_source import CoreSource
from .feed import LiveFeed
from .model import Place
from .period import PeriodKind, parse_period
from .render import Format, render
from .report import unit_report
from .schedule import next_due
from .settings import ThresholdSettings
from .store import StoredReport, insert, set_sent

log = logging.getLogger("firebus.plugin.reports")

ROLLUP_CHUNK = 50  # points per history read of a report
_PERIOD_OF = {"weekly": PeriodKind.WEEK, "monthly": PeriodKind.MONTH, "quarterly": PeriodKind.QUARTER}


class _Bridge:
    """A ``ReportSource`` for a worker thread: each query runs on the core's loop and is waited for."""

    def __init__(self, source: CoreSource, loop: asyncio.AbstractEventLoop) -> None:
        self._source, self._loop = source, loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._source, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._loop).result()

        return call

    async def rollups(self, point_ids: Any, start: float, end: float, resolution: Any) -> Any:
        # Rows come from the loop in chunks and become arrays here, in the thread: a month of
        # 1,000 points is 850 k rows, and millions of live tuples make every GC pass (which
        # holds the interpreter, so the loop too) long.
        out: dict[str, Any] = {}
        ids = list(point_ids)
        for i in range(0, len(ids), ROLLUP_CHUNK):
            rows = asyncio.run_coroutine_threadsafe(
                self._source.rollup_rows(ids[i:i + ROLLUP_CHUNK], start, end, resolution), self._loop).result()
            out.update(self._source.to_series(rows))
        return out


class ReportsService:
    def __init__(self, core: Any, cfg: ReportsConfig) -> None:
        self.core, self.cfg = core, cfg
        site = core.plugin_config("site") or {}
        self.tz = str(site.get("timezone") or "Asia/Shanghai")
        self.language = cfg.language or str(site.get("language") or "zh")
        settings = ThresholdSettings.from_alarms_section(core.plugin_config("alarms"))
        self.source = CoreSource(core, settings)
        self.feed = LiveFeed(core, cfg, self.tz, self.source)
        self.made = 0
        self.failures = 0
        self.done = anyio.Event()  # set after each scheduled run (tests wait on it; see ``wait_run``)
        self._runs = 0
        self._out: Path | None = None

    async def run(self) -> None:
        if self.cfg.live.enabled:
            await self.feed.start()
        for schedule in self.cfg.schedule:
            self.core.start_task(self._loop, schedule, name=f"reports:{schedule.every}")

    async def output_dir(self) -> Path:
        if self._out is None:
            out = Path(self.cfg.output_dir)
            if not out.is_absolute():
                # The database's folder: the plugin is not told where the site file is.
                rows = await self.core.storage.fetchall("PRAGMA database_list")
                main = next((r[2] for r in rows if r[1] == "main" and r[2]), "")
                out = (Path(main).parent if main else Path.cwd()) / out
            self._out = out
        return self._out

    async def _loop(self, schedule: Schedule) -> None:
        clock = self.core.clock
        while True:
            now = clock.time()
            due, label = next_due(schedule.every, schedule.at, self.tz, now)
            await clock.sleep(due - now)
            try:
                await self.run_schedule(schedule, label)
            except Exception:
                self.failures += 1
                log.exception("scheduled %s report %s failed", schedule.every, label)
            self._runs += 1
            self.done.set()
            self.done = anyio.Event()

    async def run_schedule(self, schedule: Schedule, label: str) -> list[StoredReport]:
        """Make, store and send the report of period ``label`` for the schedule's units."""
        now = self.core.clock.time()
        period = parse_period(label, self.tz, now=now)
        units = await self.source.units()
        if schedule.units:
            units = [u for u in units if u.key in schedule.units]
        made = []
        for unit in units:
            if not await self.source.points(unit.id, self.cfg.analysis.circuit_classes):
                log.info("%s report %s: unit %s has no electrical-fire circuits; none made", schedule.every, label, unit.key)
                continue
            try:
                stored = await self.make(schedule, unit, period)
            except Exception:
                self.failures += 1
                log.exception("%s report %s of unit %s failed", schedule.every, label, unit.key)
                continue
            made.append(stored)
            if schedule.recipients:
                sent = await deliver.send(self.core, schedule, stored, unit.label, self.language, self.cfg.base_url)
                await set_sent(self.core.storage, stored.id, sent)
        return made

    async def make(self, schedule: Schedule, unit: Place, period: Any) -> StoredReport:
        langs = list(schedule.languages or (self.language,))
        formats = list(schedule.formats)
        loop = asyncio.get_running_loop()
        out = await self.output_dir() / unit.key
        cfg, created = self.cfg, self.core.clock.time()
        bridge = _Bridge(self.source, loop)

        def work() -> tuple[Any, dict[str, str]]:
            report = asyncio.run(unit_report(bridge, unit.key, period, cfg, generated_ts=created))
            out.mkdir(parents=True, exist_ok=True)
            files: dict[str, str] = {}
            for fmt in formats:
                for lang in ([langs[0]] if fmt is OutFormat.JSON else langs):
                    name = "json" if fmt is OutFormat.JSON else f"{fmt.value}-{lang}"
                    path = out / (f"{unit.key}-{period.label}.json" if fmt is OutFormat.JSON
                                  else f"{unit.key}-{period.label}-{lang}.{fmt.value}")
                    tmp = path.with_suffix(path.suffix + ".tmp")
                    tmp.write_bytes(render(report, Format(fmt.value), lang))
                    os.replace(tmp, path)  # a reader never sees half a file
                    files[name] = str(path)
            return report, files

        report, files = await anyio.to_thread.run_sync(work)
        stored = StoredReport(new_id(), schedule.every.value, unit.id, unit.key, period.label, period.start, period.end,
                              str(report.score.grade), float(report.score.total), created, files)
        await insert(self.core.storage, stored)
        self.made += 1
        return stored

    def stop(self) -> None:
        self.feed.stop()
