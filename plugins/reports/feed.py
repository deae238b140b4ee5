"""Feeding the live score from the event path: the journal, never a scan on a page load.

At start the state is seeded once from ``CoreAPI.history`` (rollups plus the entries
not yet rolled up, in one snapshot up to ``History.through_seq``) and from the alarms
alive in the window.  Then a durable journal consumer (``reports.live``, stored cursor)
receives every ``StateChanged`` and ``AlarmEvent``:

* a state change is added to its 5-minute and hourly buckets the way core/retention.py
  merges them (count, mean, min, max, last by seq), unless its seq is at or below the
  seed's ``through_seq`` for that point and resolution (already counted: this is what
  makes a repeated delivery after a restart harmless);
* an alarm transition re-reads the alarm as it stands (one ``alarms`` row), so a
  repeated delivery is harmless too.

Buckets are kept open for ``OPEN_S`` (2 h) after their start; a late reading for an older
bucket is left to the rollups (the periodic report reads those), not the live view.
A point that appears while running (a device answering after start) is seeded from
history on its first state change.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel

from firebus.sdk import AlarmEvent, Event, PointInfo, StateChanged, UnitScored
from firebus.sdk.core_api import HistoryBucket

from .config import ReportsConfig
from .core_source import CoreSource
from .live import FIVE, HOUR, LiveScore, LiveScores
from .model import DeviceRef, PointRef, Resolution, Series
from .scoring import Score

OPEN_S = 2 * 3600
# Rows per history read while seeding: few live tuples at a time keep GC passes (which hold the
# interpreter, so the event loop) short.
SEED_ROWS = 50_000
_RES = {FIVE: Resolution.FIVE_MIN, HOUR: Resolution.HOUR}
_BUCKET = {FIVE: HistoryBucket.FIVE_MIN, HOUR: HistoryBucket.HOUR}

log = logging.getLogger("firebus.plugin.reports")


class LiveFeed:
    NAME = "reports.live"

    def __init__(self, core: Any, cfg: ReportsConfig, tz: str, source: CoreSource) -> None:
        self.core, self.cfg, self.tz, self.source = core, cfg, tz, source
        self.scores = LiveScores()
        #: (point, step) → entries with seq ≤ this are already in the seed
        self.through: dict[tuple[str, int], int] = {}
        #: open buckets: (point, step, bucket) → [n, sum, min, max, last, last_seq]
        self.acc: dict[tuple[str, int, int], list[Any]] = {}
        self.not_circuit: set[str] = set()
        self.ready = anyio.Event()
        self.consumer: Any = None
        self.entries = 0
        self.alarm_reads = 0
        self._closed_at = 0.0
        self._kick = anyio.Event()
        self.scored = anyio.Event()  # set after each refresh pass
        self.computed = 0
        #: unit id → (score, grade) last published as ``UnitScored``
        self.published: dict[str, tuple[float, str]] = {}

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.core.clock.time()
        for unit in await self.source.units():
            places = await self.source.places(unit.id)
            devices = await self.source.devices(unit.id)
            points = await self.source.points(unit.id, self._classes())
            live = LiveScore(unit, places, devices, points, self.cfg, self.tz,
                             self.cfg.live.window_days, self.cfg.live.refresh_s)
            self.scores.add(live)
            await self._seed(live, [p.id for p in live.points], now)
            span = live.window + self.cfg.analysis.baseline_weeks * 7 * 86400
            for alarm in await self.source.alarms(unit.id, now - span, now + 1):
                live.on_alarm(alarm)
        initial = max(self.through.values(), default=self.core.journal.last_seq)
        self.consumer = self.core.journal.subscribe(self.NAME, self._on_entries, [StateChanged, AlarmEvent],
                                                    initial=initial)
        self.core.start_task(self.refresher, name="reports:live-score")
        self.kick()
        with anyio.fail_after(600):
            await self.scored.wait()  # the first scores: pages answer from here on
        self.ready.set()

    def _classes(self) -> set[str]:
        ac = self.cfg.analysis
        return {*ac.circuit_classes, *ac.baseline_classes, *ac.sudden_jump}

    async def _seed(self, live: LiveScore, point_ids: list[str], now: float) -> None:
        """Fill the rings from history and open the recent buckets at their counts.

        In chunks of about ``SEED_ROWS`` rows with a checkpoint between them, and one numpy
        assignment per point: seeding 1,000 points must not hold the event loop.
        """
        for step, rings in ((HOUR, live.hourly), (FIVE, live.five)):
            ids = [pid for pid in point_ids if pid in rings]
            per = max(1, SEED_ROWS // max(r.size for r in rings.values())) if rings else 1
            for k in range(0, len(ids), per):
                chunk = ids[k:k + per]
                longest = max(rings[pid].size for pid in chunk) * step
                history = await self.core.history(chunk, now - longest, now + step, _BUCKET[step])
                for pid in chunk:
                    self.through[(pid, step)] = history.through_seq
                for pid, rows in history.rows.items():
                    series = Series.from_rows(rows)
                    rings[pid].put_many(series.bucket, series.mean, series.min, series.max, series.last)
                    for b, n, mean, lo, hi, last in rows[-(OPEN_S // step + 1):]:
                        if b >= now - OPEN_S:
                            self.acc[(pid, step, b)] = [n, mean * n, lo, hi, last, history.through_seq]
                    await anyio.lowlevel.checkpoint()
            live.touch()

    async def refresher(self) -> None:
        """Score stale units in a worker thread; a page reads the last result (never computes)."""
        while True:
            await self._kick.wait()
            self._kick = anyio.Event()
            for live in list(self.scores.units.values()):
                if not live.stale:
                    continue
                now = self.core.clock.time()
                copy = live.take(now)
                result = await anyio.to_thread.run_sync(copy.compute, now)
                live.put(result)
                self.computed += 1
                self._publish(live, result[1], now)
            self.scored.set()
            self.scored = anyio.Event()

    def kick(self) -> None:
        self._kick.set()

    def _publish(self, live: LiveScore, sc: Score, now: float) -> None:
        """Journal the unit's score when it or its grade moved (by 0.1 or more): the supervision
        views and a federation centre read ratings from the journal, not from this plugin."""
        new = (round(sc.total, 1), str(sc.grade))
        if self.published.get(live.unit.id) == new:
            return
        self.published[live.unit.id] = new
        self.core.bus.publish(UnitScored(unit_id=live.unit.id, unit_key=live.unit.key, score=new[0],
                                         grade=new[1], window_days=self.cfg.live.window_days, ts=now))

    # -- the journal ------------------------------------------------------------------------

    async def _on_entries(self, events: list[Event]) -> None:
        await self._new_points(events)
        touched: set[tuple[str, int, int]] = set()
        alarms: list[str] = []
        for ev in events:
            p = ev.data
            if isinstance(p, StateChanged):
                self._state(ev.seq or 0, p, touched)
            elif isinstance(p, AlarmEvent):
                alarms.append(p.alarm_id)
        self.entries += len(events)
        for key in touched:
            pid, step, b = key
            n, total, lo, hi, last, _ = self.acc[key]
            self.scores.on_bucket(pid, _RES[step], b, n, total / n, lo, hi, last)
        for alarm_id in dict.fromkeys(alarms):
            record = await self.source.alarm(alarm_id)
            self.alarm_reads += 1
            if record is not None:
                self.scores.on_alarm(record)
        self._close_old()
        if alarms or any(live.stale for live in self.scores.units.values()):
            self.kick()

    def _state(self, seq: int, p: StateChanged, touched: set[tuple[str, int, int]]) -> None:
        value = p.new_value
        if not isinstance(value, (int, float)) or self.scores.unit_of_point(p.point_id) is None:
            return
        value = float(value)
        seconds = round(p.ts * 1000) // 1000  # the journal's vts, as core/retention.py buckets it
        for step in (FIVE, HOUR):
            if seq <= self.through.get((p.point_id, step), 1 << 62):
                continue
            b = seconds // step * step
            key = (p.point_id, step, b)
            a = self.acc.get(key)
            if a is None:
                if b < self.core.clock.time() - OPEN_S:
                    continue  # a late reading for a closed bucket: the rollups have it
                self.acc[key] = [1, value, value, value, None if p.late else value, None if p.late else seq]
            else:
                a[0] += 1
                a[1] += value
                a[2] = min(a[2], value)
                a[3] = max(a[3], value)
                if not p.late and (a[5] is None or seq > a[5]):
                    a[4], a[5] = value, seq
            if self.acc[key][4] is None:
                self.acc[key][4] = value
            touched.add(key)

    async def _new_points(self, events: list[Event]) -> None:
        """Points not known yet: add their device's points to the unit's state, seeded from history."""
        fresh = {ev.data.point_id for ev in events if isinstance(ev.data, StateChanged)
                 and ev.data.point_id not in self.not_circuit and self.scores.unit_of_point(ev.data.point_id) is None}
        now = self.core.clock.time()
        for pid in fresh:
            if self.scores.unit_of_point(pid) is not None:
                continue
            info: PointInfo | None = self.core.registry.point_info(pid)
            if info is None or info.unit_id is None or info.unit_id not in self.scores.units:
                self.not_circuit.add(pid)
                continue
            live = self.scores.units[info.unit_id]
            device = DeviceRef(info.device_id, info.device_name or info.device_id, info.unit_id, info.location_id,
                               info.driver, "", now)
            added: list[str] = []
            for other in self.core.registry.points_of_device(info.device_id):
                if other.point_class not in self._classes():
                    continue
                setting, pre = self.source.settings.for_point(other)
                ref = PointRef(other.point_id, other.device_id, other.key, other.point_class, other.unit,
                               other.name or other.key, setting, pre)
                if other.point_id not in live.hourly and self.scores.add_point(info.unit_id, ref, device):
                    added.append(other.point_id)
            if added:
                await self._seed(live, added, now)
            if self.scores.unit_of_point(pid) is None:
                self.not_circuit.add(pid)

    def _close_old(self) -> None:
        """Forget buckets past ``OPEN_S`` (at most every 5 minutes of clock time: it walks them all)."""
        now = self.core.clock.time()
        if now - self._closed_at < 300:
            return
        self._closed_at = now
        cutoff = now - OPEN_S
        for key in [k for k in self.acc if k[2] < cutoff]:
            del self.acc[key]

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
