"""Gather a unit's evidence for a period from a ``ReportSource`` and run the analysis on it."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from collections import defaultdict
from typing import Callable
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from . import analysis as an
from .config import AnalysisConfig, ReportsConfig
from .model import AlarmRecord, DeviceRef, Hazard, InspectionStats, Interval, Place, PointRef, Resolution, Series
from .period import Period
from .source import ReportSource

Progress = Callable[[str], None]


class ReportError(Exception):
    """A report that cannot be made (unknown unit …); the message is for the user."""


class DailyPoint(msgspec.Struct, frozen=True):
    """A plotted point: its daily peak (max of hourly means) and daily mean, with its settings."""

    point_id: str
    days: list[str]
    peak: list[float | None]
    mean: list[float | None]


class HourlyPoint(msgspec.Struct, frozen=True):
    point_id: str
    start: float
    values: list[float | None]  # hourly means from ``start``
    baseline: list[float | None]


class Charts(msgspec.Struct, frozen=True):
    daily: list[DailyPoint]
    hourly: list[HourlyPoint]
    online_days: list[str]
    online_rate: list[float]


class Evidence(msgspec.Struct, frozen=True):
    unit: Place
    period: Period
    places: list[Place]
    devices: list[DeviceRef]  # the circuits: devices with residual-current or temperature points
    points: list[PointRef]
    stats: list[an.PointStats]
    trends: list[an.Trend]
    episodes: list[an.Episode]
    sudden: list[an.Sudden]
    recurring: list[an.Recurring]
    health: dict[str, an.DeviceHealth]
    alarms: list[AlarmRecord]
    hazards: list[Hazard] | None
    inspections: InspectionStats | None
    charts: Charts
    timings: dict[str, float] = {}


def _round_list(a: np.ndarray, nd: int = 2) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), nd) for v in a.tolist()]


class Inputs(msgspec.Struct, frozen=True):
    """Everything the analysis reads except the 5-minute rollups (fetched only around candidates)."""

    unit: Place
    places: list[Place]
    devices: list[DeviceRef]  # circuits only
    points: list[PointRef]
    alarms: list[AlarmRecord]
    outages: list[Interval]
    hazards: list[Hazard] | None
    inspections: InspectionStats | None


@dataclass
class Stage:
    """Stage 1 of the analysis (hourly data) and the 5-minute windows stage 2 needs."""

    inputs: Inputs
    period: Period
    grid: an.HourGrid
    in_period: np.ndarray
    placed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # point → hourly (mean, min, max) on the grid
    stats: list[an.PointStats]
    trends: list[an.Trend]
    episodes: list[an.Episode]
    windows: list[tuple[PointRef, float, float]]  # 5-minute ranges to read for sudden changes
    outages_by_device: dict[str, list[Interval]]
    timings: dict[str, float]


def hourly_span(points: list[PointRef], period: Period, ac: AnalysisConfig) -> tuple[float, float, set[str]]:
    """(grid start, trend start, baseline point ids): what hourly history the analysis reads."""
    trend_start = min(period.start, period.end - ac.trend_window_days * 86400)
    base = {p.id for p in points if p.point_class in ac.baseline_classes}
    grid_start = min(trend_start, period.start - ac.baseline_weeks * 7 * 86400) if base else trend_start
    return grid_start, trend_start, base


def circuits_of(devices: list[DeviceRef], points: list[PointRef], ac: AnalysisConfig) -> tuple[list[DeviceRef], list[PointRef]]:
    ids = {p.device_id for p in points if p.point_class in ac.circuit_classes}
    return [d for d in devices if d.id in ids], [p for p in points if p.device_id in ids]


def stage1(inputs: Inputs, period: Period, hourly: dict[str, Series], config: ReportsConfig) -> Stage:
    ac, sc = config.analysis, config.scoring
    t = time.perf_counter()
    start, end = period.start, period.end
    grid_start, trend_start, base_ids = hourly_span(inputs.points, period, ac)
    grid = an.HourGrid(grid_start, end, period.tz)
    in_period = (grid.ts >= start) & (grid.ts < end)
    in_trend = (grid.ts >= trend_start) & (grid.ts < end)
    by_dev: dict[str, list[Interval]] = defaultdict(list)
    for o in inputs.outages:
        by_dev[o.device_id].append(o)
    masks = {d.id: grid.offline_mask(by_dev.get(d.id, []), end) for d in inputs.devices}
    stats: list[an.PointStats] = []
    trends: list[an.Trend] = []
    base_points, base_means = [], []
    placed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    windows: list[tuple[PointRef, float, float]] = []
    for p in inputs.points:
        mean, lo, hi = grid.place(hourly.get(p.id), masks.get(p.device_id))
        placed[p.id] = (mean, lo, hi)
        if p.point_class in ac.circuit_classes:
            stats.append(an.point_stats(p, grid, in_period, mean, hi, sc))
            tr = an.trend(p, grid, in_trend, mean, end, ac, sc)
            if tr is not None:
                trends.append(tr)
        if p.id in base_ids:
            base_points.append(p)
            base_means.append(mean)
        jump = ac.sudden_jump.get(p.point_class)
        if jump:
            windows += [(p, s, e) for s, e in an.sudden_windows(grid, lo, hi, in_period, jump, ac.sudden_window)]
    episodes = an.baseline_episodes(base_points, grid, np.array(base_means) if base_means else np.zeros((0, grid.size)),
                                    in_period, ac)
    if len(windows) > ac.sudden_max_windows:
        windows = sorted(windows, key=lambda w: w[2] - w[1], reverse=True)[: ac.sudden_max_windows]
    return Stage(inputs, period, grid, in_period, placed, stats, trends, episodes, windows, dict(by_dev),
                 {"analysis_1h_s": time.perf_counter() - t})


def stage2(st: Stage, five: list[Series], config: ReportsConfig) -> Evidence:
    """``five``: the 5-minute Series of each of ``st.windows``, in order."""
    ac = config.analysis
    inputs, period = st.inputs, st.period
    start, end = period.start, period.end
    t = time.perf_counter()
    found: list[an.Sudden] = []
    for (p, s, e), series in zip(st.windows, five):
        found += an.sudden_changes(p, series, s, e, ac.sudden_jump[p.point_class], ac.sudden_window,
                                   ac.sudden_direction, (start, end))
    pmap = {p.id: p for p in inputs.points}
    sudden = an.merge_sudden(_dedupe(found), an.jump_alarms((a for a in inputs.alarms if start <= a.start_ts < end), pmap))
    rec = an.recurring(inputs.alarms, start, end, period.tz, ac.recurring_min_days)
    health = an.device_health(inputs.devices, inputs.outages, inputs.alarms, start, end, ac)
    charts = _charts(st.grid, st.in_period, st.placed, st.stats, st.episodes, inputs.points, inputs.devices,
                     st.outages_by_device, period, ac)
    timings = dict(st.timings)
    timings["sudden_s"] = time.perf_counter() - t
    return Evidence(inputs.unit, period, inputs.places, inputs.devices, inputs.points, st.stats, st.trends, st.episodes,
                    sudden, rec, health, inputs.alarms, inputs.hazards, inputs.inspections, charts,
                    {k: round(v, 3) for k, v in timings.items()})


async def collect(source: ReportSource, unit_key: str, period: Period, config: ReportsConfig,
                  progress: Progress | None = None) -> Evidence:
    say = progress or (lambda _m: None)
    t_start = time.perf_counter()
    ac = config.analysis
    unit = await source.unit(unit_key)
    if unit is None:
        known = ", ".join(u.key for u in await source.units()) or "none"
        raise ReportError(f"unknown unit {unit_key!r} (the database has: {known})")
    places = await source.places(unit.id)
    devices, points = circuits_of(await source.devices(unit.id), await source.points(
        unit.id, set(ac.circuit_classes) | set(ac.baseline_classes)), ac)
    say(f"{unit.key}: {len(devices)} circuits, {len(points)} points")
    start, end = period.start, period.end
    grid_start, trend_start, base_ids = hourly_span(points, period, ac)
    circuit_ids = {d.id for d in devices}
    alarms = [a for a in await source.alarms(unit.id, start, end) if a.device_id in circuit_ids]
    outages = [o for o in await source.offline_intervals(unit.id, grid_start, end) if o.device_id in circuit_ids]
    inputs = Inputs(unit, places, devices, points, alarms, outages, await source.hazards(unit.id, start, end),
                    await source.inspections(unit.id, start, end))
    t_meta = time.perf_counter() - t_start

    t = time.perf_counter()
    hourly = await source.rollups([p.id for p in points if p.id in base_ids], grid_start, end, Resolution.HOUR)
    hourly.update(await source.rollups([p.id for p in points if p.id not in base_ids], trend_start // 3600 * 3600, end,
                                       Resolution.HOUR))
    t_fetch = time.perf_counter() - t
    say(f"hourly rollups: {sum(len(s) for s in hourly.values())} rows")
    st = stage1(inputs, period, hourly, config)
    t = time.perf_counter()
    five = []
    for p, s, e in st.windows:
        five.append((await source.rollups([p.id], s, e, Resolution.FIVE_MIN)).get(p.id, Series.empty()))
    t_five = time.perf_counter() - t
    ev = stage2(st, five, config)
    say(f"sudden changes: {len(st.windows)} windows checked, {len(ev.sudden)} found")
    timings = dict(ev.timings, metadata_s=round(t_meta, 3), fetch_1h_s=round(t_fetch, 3), fetch_5m_s=round(t_five, 3),
                   collect_s=round(time.perf_counter() - t_start, 3))
    return msgspec.structs.replace(ev, timings=timings)


def _dedupe(events: list[an.Sudden]) -> list[an.Sudden]:
    seen: dict[tuple[str, float], an.Sudden] = {}
    for e in events:  # overlapping screen windows find the same shift twice
        seen.setdefault((e.point_id, e.ts), e)
    return list(seen.values())


def _charts(grid: an.HourGrid, in_period: np.ndarray, placed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
            stats: list[an.PointStats], episodes: list[an.Episode], points: list[PointRef], devices: list[DeviceRef],
            outages: dict[str, list[Interval]], period: Period, ac: AnalysisConfig) -> Charts:
    daily: list[DailyPoint] = []
    days = list(dict.fromkeys(grid.day[in_period].tolist()))
    for cls in ac.circuit_classes:
        ranked = sorted((s for s in stats if s.point_class == cls and s.q_ratio is not None),
                        key=lambda s: -(s.q_ratio or 0))[: ac.plot_top]
        for s in ranked:
            mean = placed[s.point_id][0]
            peak, avg = [], []
            for d in days:
                v = mean[in_period & (grid.day == d)]
                v = v[~np.isnan(v)]
                peak.append(round(float(v.max()), 2) if v.size else None)
                avg.append(round(float(v.mean()), 2) if v.size else None)
            daily.append(DailyPoint(s.point_id, days, peak, avg))
    hourly: list[HourlyPoint] = []
    for pid in list(dict.fromkeys(e.point_id for e in sorted(episodes, key=lambda e: -e.peak_z)))[:3]:
        mean = placed[pid][0]
        lag = np.full(grid.size, np.nan)
        stack = []
        for k in range(1, ac.baseline_weeks + 1):
            sh = np.full(grid.size, np.nan)
            if k * an.WEEK_H < grid.size:
                sh[k * an.WEEK_H:] = mean[: -k * an.WEEK_H]
            stack.append(sh)
        with an._quiet():
            lag = np.nanmedian(np.array(stack), axis=0)
        hourly.append(HourlyPoint(pid, float(grid.ts[in_period][0]), _round_list(mean[in_period]), _round_list(lag[in_period])))
    # unit online rate per local day: device-seconds online / device-seconds exposed
    zone = ZoneInfo(period.tz)
    online_days, online_rate = [], []
    day0 = dt.datetime.fromtimestamp(period.start, zone).date()
    d = day0
    while True:
        s = dt.datetime.combine(d, dt.time(), zone).timestamp()
        if s >= period.end:
            break
        e = min(dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), zone).timestamp(), period.end)
        exposed = off = 0.0
        for dev in devices:
            s0 = max(s, dev.created_at or s)
            if e <= s0:
                continue
            exposed += e - s0
            for o in outages.get(dev.id, []):
                off += max(0.0, min(o.end if o.end is not None else period.end, e) - max(o.start, s0))
        online_days.append(d.isoformat())
        online_rate.append(round(1 - off / exposed, 5) if exposed else 1.0)
        d += dt.timedelta(days=1)
    return Charts(daily, hourly, online_days, online_rate)
