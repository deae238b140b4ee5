"""The live score: a bounded state fed per rollup bucket and per alarm transition.

Nothing here scans history on a page load.  The state holds, per point, ring
buffers of the hourly rollups of the trailing window (plus the baseline's
lookback for baseline classes) and, for the sudden-change classes, of the
5-minute means; and the alarms alive in the window.  ``score(now)`` runs the
same analysis and scoring as a report over the window ``[now − window, now)``
on those arrays, and is cached until a bucket or an alarm arrives (and at most
once per ``refresh_s`` for buckets; an alarm always invalidates it).

Memory (float32 rings): 20 B per point-hour and 8 B per 5-minute bucket; the
bench's 1 000-point unit (200 residual-current and 200 load points, 30-day window,
28 more days for the load points' baseline) holds about 30 MB (bench/report.py
prints it).

How it is fed in the running core: ``feed.LiveFeed`` seeds it from
``CoreAPI.history`` once at start, then follows the journal (state changes →
5-minute and hourly buckets → ``on_bucket``; alarm transitions → ``on_alarm``
with the ``alarms`` row as it stands).  ``LiveScores`` keeps one state per unit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .collect import Evidence, Inputs, circuits_of, stage1, stage2
from .config import ReportsConfig
from .model import AlarmRecord, DeviceRef, Interval, Place, PointRef, Resolution, Series
from .period import Period, PeriodKind
from .scoring import Score, score

HOUR, FIVE = 3600, 300


@dataclass
class _Ring:
    """One point's rollup buckets in a ring indexed by bucket number modulo its length.

    Hourly rings keep mean, min, max and last (20 B a slot); 5-minute rings only the mean
    the level-shift test reads (8 B a slot).  Slots hold the bucket number, so a slot
    left over from a previous lap is never read as current.
    """

    step: int
    size: int

    def __post_init__(self) -> None:
        hourly = self.step == HOUR
        self.slot = np.full(self.size, -1, dtype=np.int32)  # bucket // step: 5-minute numbers fit int32 for 20 000 years
        self.mean = np.full(self.size, np.nan, dtype=np.float32)
        self.hi = np.full(self.size, np.nan, dtype=np.float32) if hourly else None
        self.lo = np.full(self.size, np.nan, dtype=np.float32) if hourly else None
        self.last = np.full(self.size, np.nan, dtype=np.float32) if hourly else None

    def put(self, bucket: int, mean: float, lo: float, hi: float, last: float) -> None:
        n = bucket // self.step
        i = n % self.size
        self.slot[i] = n
        self.mean[i] = mean
        if self.hi is not None:
            self.hi[i] = hi
            self.lo[i] = lo
            self.last[i] = last

    def put_many(self, bucket: np.ndarray, mean: np.ndarray, lo: np.ndarray, hi: np.ndarray, last: np.ndarray) -> None:
        """Many rows at once (the seed from history), in bucket order: a later row wins a slot."""
        n = (bucket // self.step).astype(np.int64)
        keep = n >= n.max(initial=0) - self.size + 1 if n.size else n.astype(bool)
        n = n[keep]
        i = n % self.size
        self.slot[i] = n
        self.mean[i] = mean[keep]
        if self.hi is not None:
            self.hi[i] = hi[keep]
            self.lo[i] = lo[keep]
            self.last[i] = last[keep]

    def copy(self) -> "_Ring":
        c = object.__new__(_Ring)
        c.step, c.size = self.step, self.size
        for name in ("slot", "mean", "hi", "lo", "last"):
            a = getattr(self, name)
            setattr(c, name, None if a is None else a.copy())
        return c

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(a for a in (self.slot, self.mean, self.hi, self.lo, self.last) if a is not None)

    def series(self, start: float, end: float) -> Series:
        bucket = self.slot.astype(np.int64) * self.step
        ok = (self.slot >= 0) & (bucket >= start) & (bucket < end)
        order = np.argsort(bucket[ok])
        b = bucket[ok][order]

        def col(a: np.ndarray | None) -> np.ndarray:
            return (self.mean if a is None else a)[ok][order].astype(np.float64)

        return Series(b, np.ones(b.shape, dtype=np.int64), col(self.mean), col(self.lo), col(self.hi), col(self.last))


class LiveScore:
    def __init__(self, unit: Place, places: list[Place], devices: list[DeviceRef], points: list[PointRef],
                 config: ReportsConfig, tz: str = "Asia/Shanghai", window_days: float = 30.0, refresh_s: float = 60.0) -> None:
        ac = config.analysis
        self.unit, self.places, self.config, self.tz = unit, places, config, tz
        self.devices, self.points = circuits_of(devices, points, ac)
        self.window = window_days * 86400
        self.refresh_s = refresh_s
        lookback = ac.baseline_weeks * 7 * 86400
        trend = max(self.window, ac.trend_window_days * 86400)
        self.hourly: dict[str, _Ring] = {}
        self.five: dict[str, _Ring] = {}
        for p in self.points:
            self._rings_for(p, trend, lookback)
        self._lookback, self._trend = lookback, trend
        self.alarms: dict[str, AlarmRecord] = {}
        self._device_ids = {d.id for d in self.devices}
        self._cache: tuple[float, Score, Evidence] | None = None
        self._dirty_at: float | None = None
        self._alarm_dirty = False

    def _rings_for(self, p: PointRef, trend: float, lookback: float) -> None:
        ac = self.config.analysis
        span = trend + (lookback if p.point_class in ac.baseline_classes else 0)
        self.hourly[p.id] = _Ring(HOUR, int(np.ceil(span / HOUR)) + 2)
        if p.point_class in ac.sudden_jump:
            self.five[p.id] = _Ring(FIVE, int(np.ceil((self.window + 2 * HOUR) / FIVE)) + 2)

    def add_point(self, point: PointRef, device: DeviceRef) -> bool:
        """A point that appeared while running (a device answered after start-up); False if not a circuit's."""
        if point.id in self.hourly:
            return True
        devices = {d.id: d for d in self.devices}
        devices.setdefault(device.id, device)
        keep_devices, keep_points = circuits_of(list(devices.values()), [*self.points, point], self.config.analysis)
        if point.id not in {p.id for p in keep_points}:
            return False
        self.devices, self.points = keep_devices, keep_points
        self._device_ids = {d.id for d in self.devices}
        for p in self.points:
            if p.id not in self.hourly:
                self._rings_for(p, self._trend, self._lookback)
        self._alarm_dirty = True
        return True

    # -- feeding --------------------------------------------------------------------------

    def on_bucket(self, point_id: str, resolution: Resolution, bucket: int, n: int, mean: float | None,
                  lo: float | None, hi: float | None, last: float | None) -> None:
        """One merged rollup row (the same row may come again after a late reading: it replaces)."""
        if mean is None:
            return
        rings = self.hourly if resolution is Resolution.HOUR else self.five
        ring = rings.get(point_id)
        if ring is None:
            return
        ring.put(int(bucket), mean, mean if lo is None else lo, mean if hi is None else hi, mean if last is None else last)
        if self._dirty_at is None:
            self._dirty_at = time.monotonic()

    def on_alarm(self, alarm: AlarmRecord) -> None:
        """The alarm as it stands after a transition (new, acknowledged, cleared, verdict …)."""
        if alarm.device_id not in self._device_ids:
            return
        self.alarms[alarm.id] = alarm
        self._alarm_dirty = True

    def touch(self) -> None:
        """Mark the state changed so the next refresh scores it (after a seed)."""
        self._alarm_dirty = True

    def _prune(self, start: float) -> None:
        for aid in [a.id for a in self.alarms.values() if not a.active and a.clear_ts is not None and a.clear_ts < start
                    and a.start_ts < start - self.config.analysis.baseline_weeks * 7 * 86400]:
            del self.alarms[aid]

    # -- reading --------------------------------------------------------------------------

    def evidence(self, now: float) -> Evidence:
        # The window includes ``now`` itself: an alarm raised this instant is in the live score.
        end = math.nextafter(float(now), math.inf)
        start = float(now) - self.window
        period = Period(PeriodKind.WINDOW, "live", start, end, self.tz)
        self._prune(start)
        alarms = sorted((a for a in self.alarms.values()
                         if a.start_ts < end and (a.active or a.clear_ts is None or a.clear_ts >= start)),
                        key=lambda a: (a.start_ts, a.id))
        outages = [Interval(a.device_id, a.start_ts, None if a.active else a.clear_ts)
                   for a in self.alarms.values() if a.category == "offline" and a.device_id]
        inputs = Inputs(self.unit, self.places, self.devices, self.points, alarms, outages, None, None)
        hourly = {pid: ring.series(0, end) for pid, ring in self.hourly.items()}
        st = stage1(inputs, period, hourly, self.config)
        five = [self.five[p.id].series(s, e) if p.id in self.five else Series.empty() for p, s, e in st.windows]
        return stage2(st, five, self.config)

    # -- off the event loop (the running plugin) -------------------------------------------

    @property
    def stale(self) -> bool:
        """An alarm arrived, or buckets did and ``refresh_s`` has passed (or nothing is cached)."""
        return self._alarm_dirty or self._cache is None or (
            self._dirty_at is not None and time.monotonic() - self._dirty_at >= self.refresh_s)

    def take(self, now: float) -> "LiveScore":
        """A copy to score in a worker thread while this one goes on being fed (about 30 MB for 1,000 points)."""
        self._prune(float(now) - self.window)
        c = object.__new__(LiveScore)
        c.__dict__.update(self.__dict__)
        c.hourly = {k: r.copy() for k, r in self.hourly.items()}
        c.five = {k: r.copy() for k, r in self.five.items()}
        c.alarms = dict(self.alarms)
        c.points, c.devices = list(self.points), list(self.devices)
        self._alarm_dirty = False
        self._dirty_at = None
        return c

    def compute(self, now: float) -> tuple[float, Score, Evidence]:
        ev = self.evidence(now)
        return now, score(ev, self.config.scoring), ev

    def put(self, result: tuple[float, Score, Evidence]) -> None:
        self._cache = result

    @property
    def cached(self) -> tuple[float, Score, Evidence] | None:
        return self._cache

    def score(self, now: float) -> Score:
        """The cached score, recomputed after an alarm, or after buckets once ``refresh_s`` has passed."""
        stale = self._alarm_dirty or self._cache is None or (
            self._dirty_at is not None and time.monotonic() - self._dirty_at >= self.refresh_s)
        if stale:
            ev = self.evidence(now)
            self._cache = (now, score(ev, self.config.scoring), ev)
            self._alarm_dirty = False
            self._dirty_at = None
        assert self._cache is not None
        return self._cache[1]


class LiveScores:
    """One live state per unit; the core (phase 2) routes buckets and alarms here."""

    def __init__(self) -> None:
        self.units: dict[str, LiveScore] = {}
        self._unit_of_point: dict[str, str] = {}
        self._unit_of_device: dict[str, str] = {}

    def add(self, live: LiveScore) -> None:
        self.units[live.unit.id] = live
        for p in live.points:
            self._unit_of_point[p.id] = live.unit.id
        for d in live.devices:
            self._unit_of_device[d.id] = live.unit.id

    def add_point(self, unit_id: str, point: PointRef, device: DeviceRef) -> bool:
        live = self.units.get(unit_id)
        if live is None or not live.add_point(point, device):
            return False
        for p in live.points:
            self._unit_of_point[p.id] = unit_id
        for d in live.devices:
            self._unit_of_device[d.id] = unit_id
        return True

    def unit_of_point(self, point_id: str) -> str | None:
        return self._unit_of_point.get(point_id)

    def on_bucket(self, point_id: str, resolution: Resolution, bucket: int, n: int, mean: float | None,
                  lo: float | None, hi: float | None, last: float | None) -> None:
        unit = self._unit_of_point.get(point_id)
        if unit is not None:
            self.units[unit].on_bucket(point_id, resolution, bucket, n, mean, lo, hi, last)

    def on_alarm(self, alarm: AlarmRecord) -> None:
        unit = self._unit_of_device.get(alarm.device_id or "")
        if unit is not None:
            self.units[unit].on_alarm(alarm)
