"""A synthetic unit with known, injected effects (tests, the bench and the docs' example).

Rows are produced for the core's own tables (places, devices, points,
readings_5m, readings_1h, alarms, alarm_history); writing them is left to the
caller (tests and the bench create the database through the core's
migrations).  Values are constant within an hour except for seeded noise on the
5-minute buckets of ordinary circuits, and hourly rows are aggregated from the
5-minute ones as the core's rollup does (n summed, mean weighted, min, max, last).

Injected effects (the school, period 2026-11, Asia/Shanghai):

* ``AL-1-03`` residual current rises 5 mA/day from 80 mA (hourly staircase, ±10 mA);
* ``AL-1-02`` residual current steps from 60 to 140 mA on 2026-11-12 10:00;
* ``AL-2-01`` load current 15 A from 23:00 to 04:00 on the nights of 16–22 November;
* ``AL-1-05`` T1 reaches 88 °C for 20 minutes from 14:10 on 3, 10, 17 and 24 November
  (four electrical alarms, acknowledged after 4 minutes, cleared after 20);
* ``AL-2-04`` goes offline five times for three hours (offline alarms);
* ``AL-1-06`` one electrical alarm judged a false alarm; ``AL-1-03`` one pre-alarm on
  2026-11-26 14:00, acknowledged after 30 minutes and still active at the end.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Iterator
from zoneinfo import ZoneInfo

import numpy as np

TZ = "Asia/Shanghai"
SQL_PLACE = "INSERT INTO places (id, kind, key, parent_id, name, level, attrs) VALUES (?, ?, ?, ?, ?, ?, '{}')"
SQL_DEVICE = ("INSERT INTO devices (id, config_key, driver, transport, location_id, unit_id, manufacturer, model, serial,"
              " original_name, overrides, discovered, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)")
SQL_POINT = ("INSERT INTO points (id, device_id, key, point_class, unit, original_name, overrides, writable, created_at)"
             " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)")
SQL_5M = "INSERT INTO readings_5m (point_id, bucket, n, mean, min, max, last) VALUES (?, ?, ?, ?, ?, ?, ?)"
SQL_1H = "INSERT INTO readings_1h (point_id, bucket, n, mean, min, max, last) VALUES (?, ?, ?, ?, ?, ?, ?)"
SQL_ALARM = ("INSERT INTO alarms (id, dedup_key, category, severity, active, acknowledged, unit_id, device_id, point_id,"
             " location_id, start_ts, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
SQL_HISTORY = ("INSERT INTO alarm_history (alarm_id, ts, transition, actor_kind, actor, detail, context_id, parent_id)"
               " VALUES (?, ?, ?, ?, ?, '{}', ?, NULL)")


def local(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> float:
    return dt.datetime(y, m, d, h, mi, tzinfo=ZoneInfo(TZ)).timestamp()


@dataclass
class PointPlan:
    id: str
    device_id: str
    key: str
    point_class: str
    unit: str
    hourly: np.ndarray  # value per hour of the grid (NaN: no rows, e.g. offline)
    spread: float  # min/max = value ∓/± spread within each 5-minute bucket
    noise: float  # σ of the 5-minute means around the hourly value
    #: (hour index, bucket 0–11, mean, min, max): 5-minute buckets that differ from the hour's value
    patches: list[tuple[int, int, float, float, float]] = field(default_factory=list)


@dataclass
class Site:
    start: float  # first hour of data (lookback included)
    end: float
    places: list[tuple] = field(default_factory=list)
    devices: list[tuple] = field(default_factory=list)
    points: list[tuple] = field(default_factory=list)
    plans: list[PointPlan] = field(default_factory=list)
    alarms: list[tuple] = field(default_factory=list)
    history: list[tuple] = field(default_factory=list)
    seed: int = 7
    samples_per_5m: int = 5  # 1-minute data

    @property
    def hours(self) -> int:
        return int((self.end - self.start) // 3600)

    def rollups(self, plans: list[PointPlan] | None = None, five_classes: set[str] | None = None,
                five_from: float | None = None) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(5-minute rows, hourly rows) per point; 5-minute rows only for ``five_classes`` from ``five_from``."""
        rng = np.random.default_rng(self.seed)
        n5 = self.samples_per_5m
        for plan in plans if plans is not None else self.plans:
            h = plan.hourly
            ok = ~np.isnan(h)
            means = np.repeat(h[:, None], 12, axis=1)
            if plan.noise:
                means = means + rng.normal(0.0, plan.noise, means.shape)
            lo = means - plan.spread
            hi = means + plan.spread
            for hh, j, pm, pl, ph in plan.patches:
                means[hh, j], lo[hh, j], hi[hh, j] = pm, pl, ph
            buckets = self.start + 3600 * np.arange(h.shape[0])[:, None] + 300 * np.arange(12)[None, :]
            idx = np.flatnonzero(ok)
            m, l_, u, b = means[idx], lo[idx], hi[idx], buckets[idx]
            five = list(zip([plan.id] * m.size, b.ravel().tolist(), [n5] * m.size, np.round(m, 3).ravel().tolist(),
                            np.round(l_, 3).ravel().tolist(), np.round(u, 3).ravel().tolist(),
                            np.round(m, 3).ravel().tolist()))
            if (five_classes is not None and plan.point_class not in five_classes) or five_from is not None:
                keep = np.ones(b.shape, dtype=bool) if five_from is None else (b >= five_from)
                if five_classes is not None and plan.point_class not in five_classes:
                    keep[:] = False
                five = [row for row, k in zip(five, keep.ravel().tolist()) if k]
            hour = list(zip([plan.id] * idx.size, (self.start + 3600 * idx).tolist(), [12 * n5] * idx.size,
                            np.round(m.mean(axis=1), 3).tolist(), np.round(l_.min(axis=1), 3).tolist(),
                            np.round(u.max(axis=1), 3).tolist(), np.round(m[:, -1], 3).tolist()))
            yield five, hour


def _alarm(site: Site, aid: str, category: str, severity: int, device: str, point: str | None, location: str,
           start: float, ack: float | None, clear: float | None, *, rule: str = "threshold", rule_type: str = "threshold",
           value: float | None = None, verdict: str | None = None, unit: str = "u-school") -> None:
    active = clear is None
    data = {
        "id": aid, "dedup_key": f"{point or device}|{rule}|{category}", "subject": point or f"device:{device}",
        "rule": rule, "rule_type": rule_type, "category": category, "severity": severity, "peak_severity": severity,
        "point_id": point, "device_id": device, "location_id": location, "unit_id": unit,
        "first_value": value, "last_value": value, "peak_value": value, "active": active,
        "acknowledged": ack is not None, "start_ts": start, "last_ts": clear or start,
        "ack_ts": ack, "ack_by": "duty" if ack else None, "clear_ts": clear, "verdict": verdict,
        "verdict_ts": (ack or start) if verdict else None,
    }
    site.alarms.append((aid, data["dedup_key"], category, severity, int(active), int(ack is not None), unit, device,
                        point, location, start, json.dumps({k: v for k, v in data.items() if v is not None})))
    site.history.append((aid, start, "new", "rule", rule, f"ctx-{aid}-new"))
    if ack is not None:
        site.history.append((aid, ack, "acknowledged", "user", "duty", f"ctx-{aid}-ack"))
    if clear is not None:
        site.history.append((aid, clear, "cleared", "rule", rule, f"ctx-{aid}-clr"))


def school(circuits: int = 12, year: int = 2026, month: int = 11, lookback_days: int = 28, seed: int = 7) -> Site:
    """The school of the tests and the docs' hand-computed example (``circuits`` ≥ 8)."""
    assert circuits >= 8
    period_start = local(year, month, 1)
    start = period_start - lookback_days * 86400
    end = local(year + (month == 12), month % 12 + 1, 1)
    site = Site(start, end, seed=seed)
    H = site.hours
    hours = start + 3600 * np.arange(H)
    zone = ZoneInfo(TZ)
    loc_hour = np.array([dt.datetime.fromtimestamp(t, zone).hour for t in hours.tolist()])
    weekday = np.array([dt.datetime.fromtimestamp(t, zone).weekday() for t in hours.tolist()])
    created = start - 86400
    site.places += [
        ("u-school", "unit", "school", None, "实验学校", None),
        ("b-teach", "building", "teaching", "u-school", "教学楼", None),
        ("f-1", "floor", "teaching-1f", "b-teach", "1F", 1),
        ("f-2", "floor", "teaching-2f", "b-teach", "2F", 2),
        ("l-1", "location", "switch-room-1", "f-1", "配电间", None),
        ("l-2", "location", "lab-2", "f-2", "实验室", None),
    ]
    diurnal = np.sin((loc_hour - 8) / 24 * 2 * np.pi)
    school_day = (weekday < 5) & (loc_hour >= 8) & (loc_hour < 17)
    for i in range(1, circuits + 1):
        floor = 1 if i <= circuits // 2 else 2
        n = i if floor == 1 else i - circuits // 2
        key = f"AL-{floor}-{n:02d}"
        dev = f"d-{key}"
        loc = f"l-{floor}"
        site.devices.append((dev, key, "leakage.modbus", loc, "u-school", "Acrel", "ARCM300 (modelled)", f"SN{i:04d}",
                             f"ARCM {key}", "{}", created, created))
        base_rc = 40 + 4 * i + 5 * diurnal
        temp = 34 + 4 * diurnal + 0.3 * i
        load = np.where(school_day, 20.0, 2.0) + 0.2 * i
        rc_noise = t_noise = 1.0
        if key == "AL-1-03":  # rising circuit
            base_rc = np.where(hours < period_start, 80.0, np.floor((hours - period_start) / 3600) * 5 / 24 + 80)
            rc_noise = 0.0
        if key == "AL-1-02":  # a step
            base_rc = np.where(hours >= local(year, month, 12, 10), 140.0, 60.0)
            rc_noise = 0.0
        if key == "AL-2-01":  # night load
            night = np.zeros(H, dtype=bool)
            for d in range(16, 23):
                s = local(year, month, d, 23)
                night |= (hours >= s) & (hours < s + 5 * 3600)
            load = np.where(night, 15.0, load)
        if key == "AL-1-05":  # recurring afternoon overheating (the hour's 5-minute buckets)
            t_noise = 0.0
            temp = 34 + 4 * diurnal + 0.3 * i
        plans = [
            PointPlan(f"p-{key}-rc", dev, "residual_current", "residual_current", "mA", np.asarray(base_rc, float) + 0.0,
                      10.0 if rc_noise == 0 else 3.0, rc_noise),
            PointPlan(f"p-{key}-t1", dev, "temperature_1", "temperature", "°C", np.asarray(temp, float) + 0.0, 0.5, t_noise),
            PointPlan(f"p-{key}-i", dev, "current", "current", "A", np.asarray(load, float) + 0.0, 0.5, 0.2),
        ]
        for p in plans:
            site.points.append((p.id, dev, p.key, p.point_class, p.unit, {"residual_current": "residual current",
                                "temperature_1": "T1", "current": "load current"}[p.key], "{}", created))
        site.plans += plans
        if key == "AL-1-05":
            t1 = plans[1]
            for d in (3, 10, 17, 24):
                s = local(year, month, d, 14, 10)
                h = int((local(year, month, d, 14) - start) // 3600)
                # 14:10–14:30 (buckets 2–5) at 88 °C: hourly mean (8·base + 4·88)/12, max 88
                t1.patches += [(h, j, 88.0, 88.0, 88.0) for j in (2, 3, 4, 5)]
                _alarm(site, f"a-rec-{d}", "electrical_alarm", 50, dev, t1.id, loc, s, s + 240, s + 1200, value=88.0)
        if key == "AL-2-04":  # flaky: five 3-hour outages
            for k, d in enumerate((4, 9, 15, 21, 27)):
                s = local(year, month, d, 2)
                for p in plans:
                    h0 = int((s - start) // 3600)
                    p.hourly[h0:h0 + 3] = np.nan
                _alarm(site, f"a-off-{k}", "offline", 30, dev, None, loc, s, s + 1200, s + 3 * 3600,
                       rule="heartbeat", rule_type="heartbeat")
        if key == "AL-1-06":
            s = local(year, month, 8, 9)
            _alarm(site, "a-false", "electrical_alarm", 50, dev, plans[0].id, loc, s, s + 600, s + 900, value=310.0,
                   verdict="false_alarm")
        if key == "AL-1-03":
            s = local(year, month, 26, 14)
            _alarm(site, "a-pre", "electrical_pre_alarm", 40, dev, plans[0].id, loc, s, s + 1800, None, value=201.0)
    return site


def large(devices: int = 200, year: int = 2026, month: int = 11, lookback_days: int = 28, seed: int = 11) -> Site:
    """The bench's unit: ``devices`` detectors × 5 points (residual current, T1–T3, load) at 1-minute data."""
    period_start = local(year, month, 1)
    start = period_start - lookback_days * 86400
    end = local(year + (month == 12), month % 12 + 1, 1)
    site = Site(start, end, seed=seed)
    H = site.hours
    hours = start + 3600 * np.arange(H)
    zone = ZoneInfo(TZ)
    loc_hour = np.array([dt.datetime.fromtimestamp(t, zone).hour for t in hours.tolist()])
    diurnal = np.sin((loc_hour - 8) / 24 * 2 * np.pi)
    created = start - 86400
    site.places.append(("u-big", "unit", "plant", None, "大型工厂", None))
    site.places.append(("b-big", "building", "plant-a", "u-big", "A栋", None))
    floors = max(1, devices // 25)
    for f in range(floors):
        site.places.append((f"f-big-{f}", "floor", f"plant-a-{f + 1}f", "b-big", f"{f + 1}F", f + 1))
        site.places.append((f"l-big-{f}", "location", f"plant-a-{f + 1}f-board", f"f-big-{f}", f"{f + 1}F 配电箱", None))
    rng = np.random.default_rng(seed)
    for i in range(devices):
        key = f"D{i:04d}"
        dev = f"d-{key}"
        loc = f"l-big-{i % floors}"
        site.devices.append((dev, key, "leakage.modbus", loc, "u-big", "Acrel", "ARCM300 (modelled)", f"SN{i:05d}",
                             key, "{}", created, created))
        level = rng.uniform(30, 150)
        slope = rng.uniform(-0.5, 2.0) if i % 10 == 0 else 0.0
        rc = level + 8 * diurnal + slope * (hours - period_start) / 86400
        plans = [PointPlan(f"p-{key}-rc", dev, "residual_current", "residual_current", "mA", rc, 4.0, 2.0)]
        for k in (1, 2, 3):
            plans.append(PointPlan(f"p-{key}-t{k}", dev, f"temperature_{k}", "temperature", "°C",
                                   rng.uniform(30, 50) + 5 * diurnal, 0.6, 0.4))
        plans.append(PointPlan(f"p-{key}-i", dev, "current", "current", "A", rng.uniform(5, 60) * (1 + 0.5 * diurnal), 1.0, 0.5))
        for p in plans:
            site.points.append((p.id, dev, p.key, p.point_class, p.unit, p.key, "{}", created))
        site.plans += plans
        if i % 40 == 7:
            s = local(year, month, 5 + i % 20, 14)
            _alarm(site, f"a-big-{i}", "electrical_alarm", 50, dev, plans[0].id, loc, s, s + 300, s + 1800, value=320.0,
                   unit="u-big")
    return site
