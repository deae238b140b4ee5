"""The analysis methods, on rollup arrays (one job each; all named in docs/reports.md).

Inputs are hourly rollups on a common hour grid (``HourGrid``), 5-minute rollups
only around candidate sudden changes, alarm records and outage intervals.  An
hour without a rollup row holds the previous value (an unchanged value writes
no reading: "quiet repeats"), except while the device was offline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .config import AnalysisConfig, ScoringConfig
from .model import AlarmRecord, DeviceRef, Interval, PointRef, Series
from .stats import MAD_TO_SIGMA, ffill, nearest_rank, runs, theil_sen

HOUR = 3600
FIVE = 300
WEEK_H = 168


# -- results (they go into the JSON report as they are) -----------------------------------


class PointStats(msgspec.Struct, frozen=True, omit_defaults=True):
    """Margin of one point to its alarm setting over the period (hourly maxima)."""

    point_id: str
    device_id: str
    point_class: str
    hours: int  # hours with a value
    setting: float | None = None
    q_value: float | None = None  # the margin quantile (95 %) of the hourly maxima
    q_ratio: float | None = None  # q_value / setting
    share_80: float = 0.0  # share of hours whose maximum ≥ 80 % of the setting
    share_alarm: float = 0.0  # share of hours whose mean ≥ the setting
    max_value: float | None = None
    max_ts: float | None = None
    mean_value: float | None = None
    severity: float = 0.0  # margin severity 0..1


class Trend(msgspec.Struct, frozen=True, omit_defaults=True):
    point_id: str
    device_id: str
    days: int  # daily values used
    slope_per_day: float
    mk_z: float
    level_end: float  # fitted daily peak at the period end
    setting: float | None = None
    significant: bool = False
    days_to_cross: float | None = None
    cross_ts: float | None = None
    severity: float = 0.0


class Episode(msgspec.Struct, frozen=True, omit_defaults=True):
    """Hours off the point's own hour-of-week baseline."""

    point_id: str
    device_id: str
    start: float
    end: float
    hours: int
    peak_z: float
    value: float  # mean of the hours
    baseline: float  # mean of their baseline medians
    night: bool = False


class Sudden(msgspec.Struct, frozen=True, omit_defaults=True):
    point_id: str
    device_id: str
    ts: float
    before: float | None
    after: float | None
    delta: float
    source: str = "rollup"  # rollup | alarm (the leakage.jump rule)


class Recurring(msgspec.Struct, frozen=True, omit_defaults=True):
    point_id: str | None
    device_id: str | None
    category: str
    hour: int  # local hour of day
    dates: list[str]
    alarm_ids: list[str]


class DeviceHealth(msgspec.Struct, frozen=True, omit_defaults=True):
    device_id: str
    exposure_s: float
    offline_s: float
    online_rate: float
    outages: int  # outages that started in the period
    longest_s: float
    faults: int  # fault alarms in the period
    flaky: bool = False


# -- the hour grid ----------------------------------------------------------------------


class HourGrid:
    """Hours [start, end) aligned to the hour, with their local hour of day and day."""

    def __init__(self, start: float, end: float, tz: str) -> None:
        self.start = int(start // HOUR * HOUR)
        self.end = int(math.ceil(end / HOUR) * HOUR)
        self.size = (self.end - self.start) // HOUR
        self.ts = self.start + HOUR * np.arange(self.size, dtype=np.int64)
        zone = ZoneInfo(tz)
        hod = np.empty(self.size, dtype=np.int64)
        day: list[str] = []
        for i, t in enumerate(self.ts.tolist()):
            local = dt.datetime.fromtimestamp(t, zone)
            hod[i] = local.hour
            day.append(local.date().isoformat())
        self.hour_of_day = hod
        self.day = np.array(day)
        # local days numbered in order (0, 1, …): grouping hours by day without string compares
        _, self.day_code = np.unique(self.day, return_inverse=True)

    def index(self, ts: float) -> int:
        return int((ts - self.start) // HOUR)

    def place(self, series: Series | None, offline: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, min, max) on the grid; missing hours hold the previous last value unless offline."""
        mean = np.full(self.size, np.nan)
        lo = np.full(self.size, np.nan)
        hi = np.full(self.size, np.nan)
        last = np.full(self.size, np.nan)
        if series is not None and len(series):
            idx = (series.bucket - self.start) // HOUR
            ok = (idx >= 0) & (idx < self.size)
            idx = idx[ok]
            mean[idx], lo[idx], hi[idx], last[idx] = series.mean[ok], series.min[ok], series.max[ok], series.last[ok]
        held = ffill(last)
        gap = np.isnan(mean) & ~np.isnan(held)
        # the value held through a gap is the last one of the hour before
        prev = np.concatenate(([np.nan], held[:-1]))
        fill = gap & ~np.isnan(prev)
        for arr in (mean, lo, hi):
            arr[fill] = prev[fill]
        if offline is not None:
            for arr in (mean, lo, hi):
                arr[offline] = np.nan
        return mean, lo, hi

    def offline_mask(self, outages: Iterable[Interval], until: float) -> np.ndarray:
        """Hours during which the device was offline for more than half the hour."""
        off = np.zeros(self.size, dtype=np.float64)
        for o in outages:
            s = max(o.start, self.start)
            e = min(o.end if o.end is not None else until, self.end)
            if e <= s:
                continue
            i0, i1 = self.index(s), min(self.index(e - 1e-6), self.size - 1)
            for i in range(i0, i1 + 1):
                h0 = self.start + i * HOUR
                off[i] += max(0.0, min(e, h0 + HOUR) - max(s, h0))
        return off > HOUR / 2


# -- margin -------------------------------------------------------------------------------


def margin_severity(ratio: float | None, sc: ScoringConfig) -> float:
    if ratio is None:
        return 0.0
    return float(np.clip((ratio - sc.margin_low) / (sc.margin_high - sc.margin_low), 0.0, 1.0))


def point_stats(point: PointRef, grid: HourGrid, in_period: np.ndarray, mean: np.ndarray, hi: np.ndarray,
                sc: ScoringConfig) -> PointStats:
    m = in_period & ~np.isnan(hi)
    hours = int(m.sum())
    if hours == 0:
        return PointStats(point.id, point.device_id, point.point_class, 0, point.setting)
    maxima = hi[m]
    k = int(np.argmax(np.where(m, hi, -np.inf)))
    q = nearest_rank(maxima, sc.margin_quantile)
    setting = point.setting
    ratio = q / setting if setting else None
    share_80 = float(np.mean(maxima >= 0.8 * setting)) if setting else 0.0
    share_alarm = float(np.mean(mean[m] >= setting)) if setting else 0.0
    return PointStats(
        point.id, point.device_id, point.point_class, hours, setting, round(q, 3),
        None if ratio is None else round(ratio, 4), round(share_80, 4), round(share_alarm, 4),
        float(hi[k]), float(grid.ts[k]), round(float(np.mean(mean[m])), 3), round(margin_severity(ratio, sc), 4),
    )


# -- trend --------------------------------------------------------------------------------


def trend_severity(days: float | None, sc: ScoringConfig) -> float:
    if days is None:
        return 0.0
    for limit, severity in sc.trend_bands:
        if days <= limit:
            return severity
    return 0.0


def daily_peaks(grid: HourGrid, mean: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day index, peak hourly mean) for local days with ≥ 12 hours of values in ``window``."""
    codes = grid.day_code[window]
    vals = mean[window]
    ok = ~np.isnan(vals)
    if not ok.any():
        return np.zeros(0), np.zeros(0)
    first = int(codes[0])
    idx = codes[ok] - first
    size = int(codes[-1]) - first + 1
    counts = np.bincount(idx, minlength=size)
    peaks = np.full(size, -np.inf)
    np.maximum.at(peaks, idx, vals[ok])
    days = np.flatnonzero(counts >= 12)
    return days.astype(np.float64), peaks[days]


def trend(point: PointRef, grid: HourGrid, window: np.ndarray, mean: np.ndarray, period_end: float,
          ac: AnalysisConfig, sc: ScoringConfig) -> Trend | None:
    x, y = daily_peaks(grid, mean, window)
    if x.shape[0] < max(3, ac.trend_min_days):
        return None
    slope, intercept, z = theil_sen(x, y)
    codes = grid.day_code[window]
    n_days = int(codes[-1] - codes[0] + 1)
    x_end = n_days - 0.5  # the middle of the window's last day
    level = intercept + slope * x_end
    significant = z >= ac.trend_z and slope > 0
    days_to_cross = cross_ts = None
    if significant and point.setting is not None and level < point.setting:
        days = (point.setting - level) / slope
        if days <= ac.trend_horizon_days:
            days_to_cross = round(days, 1)
            cross_ts = period_end + days * 86400
    return Trend(
        point.id, point.device_id, int(x.shape[0]), round(slope, 4), round(z, 3), round(level, 3), point.setting,
        significant, days_to_cross, cross_ts, trend_severity(days_to_cross, sc),
    )


# -- hour-of-week baseline ------------------------------------------------------------------


def baseline_episodes(points: Sequence[PointRef], grid: HourGrid, means: np.ndarray, in_period: np.ndarray,
                      ac: AnalysisConfig) -> list[Episode]:
    """Hours whose mean is ≥ ``baseline_z`` robust z above the same hour of the previous weeks.

    ``means``: (points × hours) hourly means on ``grid`` (lookback included).
    """
    if not points:
        return []
    k = ac.baseline_weeks
    lagged = np.full((k,) + means.shape, np.nan)
    for lag in range(1, k + 1):
        shift = lag * WEEK_H
        if shift < grid.size:
            lagged[lag - 1, :, shift:] = means[:, :-shift]
    count = np.sum(~np.isnan(lagged), axis=0)
    with np.errstate(all="ignore"), _quiet():
        med = np.nanmedian(lagged, axis=0)
        mad = np.nanmedian(np.abs(lagged - med[None]), axis=0)
    floors = np.array([ac.baseline_floor.get(p.point_class, 0.0) for p in points])[:, None]
    scale = np.maximum(MAD_TO_SIGMA * np.nan_to_num(mad), np.maximum(0.25 * floors, 1e-9))
    diff = means - med
    with np.errstate(all="ignore"):
        z = diff / scale
    hot = (count >= ac.baseline_min_weeks) & in_period[None, :] & (z >= ac.baseline_z) & (diff >= floors)
    hot &= ~np.isnan(means)
    night_from, night_to = ac.night_hours
    hod = grid.hour_of_day
    is_night = (hod >= night_from) | (hod < night_to) if night_from > night_to else (hod >= night_from) & (hod < night_to)
    out: list[Episode] = []
    for i, p in enumerate(points):
        if not hot[i].any():
            continue
        for s, e in runs(hot[i]):
            if e - s < ac.baseline_min_hours:
                continue
            out.append(Episode(
                p.id, p.device_id, float(grid.ts[s]), float(grid.ts[e - 1] + HOUR), e - s,
                round(float(np.max(z[i, s:e])), 2), round(float(np.mean(means[i, s:e])), 3),
                round(float(np.mean(med[i, s:e])), 3), bool(np.mean(is_night[s:e]) > 0.5),
            ))
    return out


class _quiet:
    """Silence numpy's "All-NaN slice" warnings (an all-NaN slice is a hour without history)."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._w.__exit__(*exc)


# -- sudden changes ------------------------------------------------------------------------


def sudden_windows(grid: HourGrid, lo: np.ndarray, hi: np.ndarray, in_period: np.ndarray, jump: float,
                   w: int) -> list[tuple[float, float]]:
    """Time ranges that may hold a level shift ≥ ``jump`` (conservative screen on hourly min/max).

    A shift between the medians of w 5-minute means before and after lies within the
    range (max − min) of the ≤ 3 hours those 2w buckets touch, so nothing is missed.
    """
    if grid.size < 1:
        return []
    hi_f = np.where(np.isnan(hi), -np.inf, hi)
    lo_f = np.where(np.isnan(lo), np.inf, lo)
    pad_hi = np.concatenate(([-np.inf], hi_f, [-np.inf]))
    pad_lo = np.concatenate(([np.inf], lo_f, [np.inf]))
    span = np.max(sliding_window_view(pad_hi, 3), axis=1) - np.min(sliding_window_view(pad_lo, 3), axis=1)
    cand = (span >= jump) & in_period
    out = []
    for s, e in runs(cand):
        out.append((float(grid.ts[s] - HOUR - w * FIVE), float(grid.ts[e - 1] + 2 * HOUR + w * FIVE)))
    return out


def sudden_changes(point: PointRef, five: Series, start: float, end: float, jump: float, w: int,
                   direction: str, period: tuple[float, float]) -> list[Sudden]:
    """Level shifts: median of the w 5-minute means after a bucket minus the w before."""
    b0 = int(start // FIVE * FIVE)
    size = int(math.ceil((end - b0) / FIVE))
    if size < 2 * w or not len(five):
        return []
    m = np.full(size, np.nan)
    idx = (five.bucket - b0) // FIVE
    ok = (idx >= 0) & (idx < size)
    m[idx[ok]] = five.mean[ok]
    m = ffill(m)
    win = sliding_window_view(m, w)  # win[j] = m[j:j+w]
    with _quiet():
        med = np.nanmedian(win, axis=1)
    # position i (first "after" bucket): before = med[i-w], after = med[i]
    i = np.arange(w, size - w + 1)
    before = med[i - w]
    after = med[i]
    d = after - before
    hit = (d >= jump) if direction == "rise" else (np.abs(d) >= jump)
    hit &= ~np.isnan(d)
    ts = b0 + i * FIVE
    hit &= (ts >= period[0]) & (ts < period[1])
    out = []
    for s, e in runs(hit):
        # a step between two flat levels gives the same |d| over a plateau of up to w
        # positions (a median of w ignores < w/2 values of the other level): take its middle
        mags = np.abs(d[s:e])
        top = np.flatnonzero(mags >= mags.max() - 1e-9)
        k = s + int(top[len(top) // 2])
        out.append(Sudden(point.id, point.device_id, float(ts[k]), round(float(before[k]), 3),
                          round(float(after[k]), 3), round(float(d[k]), 3)))
    return out


def jump_alarms(alarms: Iterable[AlarmRecord], points: dict[str, PointRef]) -> list[Sudden]:
    """The ``leakage.jump`` rule's alarms (reading-to-reading jumps the rollups may smooth away)."""
    out = []
    for a in alarms:
        if a.rule_type == "leakage.jump" and a.point_id in points:
            value = a.peak_value if a.peak_value is not None else (a.first_value or 0.0)
            out.append(Sudden(a.point_id, a.device_id or points[a.point_id].device_id, a.start_ts, None, value,
                              value, "alarm"))
    return out


def merge_sudden(found: list[Sudden], from_alarms: list[Sudden], within: float = HOUR) -> list[Sudden]:
    out = list(found)
    for a in from_alarms:
        if not any(s.point_id == a.point_id and abs(s.ts - a.ts) <= within for s in found):
            out.append(a)
    return sorted(out, key=lambda s: (s.ts, s.point_id))


# -- alarms ---------------------------------------------------------------------------------


def recurring(alarms: Iterable[AlarmRecord], start: float, end: float, tz: str, min_days: int) -> list[Recurring]:
    """Alarms of one point and category that started in the same local hour on ≥ ``min_days`` days."""
    zone = ZoneInfo(tz)
    groups: dict[tuple[str | None, str | None, str, int], list[tuple[str, str]]] = defaultdict(list)
    for a in alarms:
        if a.category == "offline" or not (start <= a.start_ts < end):
            continue
        local = dt.datetime.fromtimestamp(a.start_ts, zone)
        groups[(a.point_id, a.device_id, a.category, local.hour)].append((local.date().isoformat(), a.id))
    out = []
    for (pid, did, cat, hour), items in sorted(groups.items(), key=lambda kv: (str(kv[0][1]), str(kv[0][0]), kv[0][3])):
        dates = sorted({d for d, _ in items})
        if len(dates) >= min_days:
            out.append(Recurring(pid, did, cat, hour, dates, [i for _, i in items]))
    return out


def device_health(devices: Sequence[DeviceRef], outages: Iterable[Interval], alarms: Iterable[AlarmRecord],
                  start: float, end: float, ac: AnalysisConfig) -> dict[str, DeviceHealth]:
    by_dev: dict[str, list[Interval]] = defaultdict(list)
    for o in outages:
        by_dev[o.device_id].append(o)
    faults: dict[str, int] = defaultdict(int)
    for a in alarms:
        if a.category == "fault" and a.device_id and start <= a.start_ts < end:
            faults[a.device_id] += 1
    out = {}
    for d in devices:
        t0 = max(start, d.created_at or start)
        exposure = max(0.0, end - t0)
        spans = sorted((max(o.start, t0), min(o.end if o.end is not None else end, end)) for o in by_dev.get(d.id, []))
        offline = 0.0
        longest = 0.0
        cur_s = cur_e = None
        for s, e in spans:  # union of overlapping outages
            if e <= s:
                continue
            if cur_e is None or s > cur_e:
                if cur_e is not None:
                    offline += cur_e - cur_s
                    longest = max(longest, cur_e - cur_s)
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_e is not None:
            offline += cur_e - cur_s
            longest = max(longest, cur_e - cur_s)
        started = sum(1 for o in by_dev.get(d.id, []) if start <= o.start < end)
        rate = 1.0 - offline / exposure if exposure > 0 else 1.0
        flaky = exposure > 0 and (started >= ac.flaky_min_outages or rate < ac.flaky_online_below)
        out[d.id] = DeviceHealth(d.id, exposure, round(offline, 1), round(rate, 6), started, round(longest, 1),
                                 faults.get(d.id, 0), flaky)
    return out
