"""The report as data: one unit (or a set of units) for one period, both languages inside.

HTML, PDF and JSON are renderings of this one structure (``render.py``), so the
three always say the same.
"""

from __future__ import annotations

import time
from collections import defaultdict

import msgspec

from . import analysis as an
from .collect import Charts, Evidence, Progress, collect
from .config import Grade, ReportsConfig
from .findings import Finding, findings
from .model import Hazard, Place
from .names import Names
from .period import Period
from .scoring import Score, ScoringContext, online_rate, response_times, score
from .source import ReportSource

REPORT_VERSION = 1


class HotCircuit(msgspec.Struct, frozen=True, omit_defaults=True):
    rank: int
    device_id: str
    device: str
    place: str
    heat: float  # the highest margin ratio (P95 of hourly maxima / setting) of its points
    residual_q: float | None = None
    residual_ratio: float | None = None
    temperature_q: float | None = None
    temperature_ratio: float | None = None
    alarms: int = 0


class AlarmRow(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    start_ts: float
    category: str
    device_id: str | None
    device: str
    place: str
    point: str
    value: float | None = None
    unit: str = ""
    ack_s: float | None = None
    clear_s: float | None = None
    active: bool = False
    acknowledged: bool = False
    verdict: str | None = None


class PlaceScore(msgspec.Struct, frozen=True):
    place_id: str
    kind: str
    path: str
    circuits: int
    total: float
    grade: Grade


class CircuitScore(msgspec.Struct, frozen=True):
    device_id: str
    device: str
    place: str
    total: float
    grade: Grade


class PointSetting(msgspec.Struct, frozen=True, omit_defaults=True):
    point_id: str
    device_id: str
    device: str
    point: str
    point_class: str
    unit: str
    setting: float | None = None
    pre_setting: float | None = None


class Totals(msgspec.Struct, frozen=True):
    circuits: int
    points: int
    alarms: int
    alarms_by_category: dict[str, int]
    alarms_by_hour: list[int]  # local hour of day, 0–23
    online_rate: float
    ack_minutes: list[float]
    clear_minutes: list[float]


class AnalysisResults(msgspec.Struct, frozen=True):
    """The analysis results as computed (the figures behind every deduction and finding)."""

    stats: list[an.PointStats]
    trends: list[an.Trend]
    episodes: list[an.Episode]
    sudden: list[an.Sudden]
    recurring: list[an.Recurring]
    health: list[an.DeviceHealth]


class UnitReport(msgspec.Struct, frozen=True):
    kind: str  # "unit"
    version: int
    unit: Place
    period: Period
    generated_ts: float
    score: Score
    places: list[PlaceScore]
    circuits: list[CircuitScore]
    findings: list[Finding]
    hot: list[HotCircuit]
    alarms: list[AlarmRow]
    hazards: list[Hazard] | None
    totals: Totals
    settings: list[PointSetting]
    evidence: AnalysisResults
    charts: Charts
    config: ReportsConfig
    timings: dict[str, float]


class UnitLine(msgspec.Struct, frozen=True):
    unit: Place
    total: float
    grade: Grade
    direct: int
    findings_high: int
    findings: int
    alarms: int
    online_rate: float
    items: dict[str, float]  # item key → points kept


class SummaryReport(msgspec.Struct, frozen=True):
    kind: str  # "summary"
    version: int
    period: Period
    generated_ts: float
    units: list[UnitLine]
    reports: list[UnitReport]
    config: ReportsConfig


def _place_scores(ev: Evidence, names: Names, cfg: ReportsConfig) -> list[PlaceScore]:
    under: dict[str, set[str]] = defaultdict(set)
    for d in ev.devices:
        for pid in names.ancestors(d.location_id):
            under[pid].add(d.id)
    order = {"building": 0, "floor": 1, "location": 2}
    out = []
    for pid, devs in under.items():
        place = names.places[pid]
        if place.kind == "unit":
            continue
        s = score(ev, cfg.scoring, devs, scope="place", scope_id=pid, names=names)
        out.append(PlaceScore(pid, place.kind, names.place_path(pid), len(devs), s.total, s.grade))
    return sorted(out, key=lambda p: (p.path, order.get(p.kind, 3)))


def _hot(ev: Evidence, names: Names, top: int) -> list[HotCircuit]:
    per: dict[str, dict[str, an.PointStats]] = defaultdict(dict)
    for s in ev.stats:
        if s.q_ratio is None:
            continue
        best = per[s.device_id].get(s.point_class)
        if best is None or (s.q_ratio or 0) > (best.q_ratio or 0):
            per[s.device_id][s.point_class] = s
    counts: dict[str, int] = defaultdict(int)
    for a in ev.alarms:
        if a.device_id and ev.period.start <= a.start_ts < ev.period.end and a.category.startswith("electrical"):
            counts[a.device_id] += 1
    rows = []
    for dev, by_cls in per.items():
        rc, tp = by_cls.get("residual_current"), by_cls.get("temperature")
        heat = max((s.q_ratio or 0) for s in by_cls.values())
        rows.append((heat, counts.get(dev, 0), dev, rc, tp))
    rows.sort(key=lambda r: (-r[0], -r[1], names.device(r[2])))
    return [
        HotCircuit(i + 1, dev, names.device(dev), names.device_place(dev), round(heat, 4),
                   rc.q_value if rc else None, rc.q_ratio if rc else None, tp.q_value if tp else None,
                   tp.q_ratio if tp else None, n)
        for i, (heat, n, dev, rc, tp) in enumerate(rows[:top])
    ]


def _alarm_rows(ev: Evidence, names: Names) -> list[AlarmRow]:
    rows = []
    for a in ev.alarms:
        if not ev.period.start <= a.start_ts < ev.period.end:
            continue
        value = a.peak_value if a.peak_value is not None else a.first_value
        rows.append(AlarmRow(
            a.id, a.start_ts, a.category, a.device_id, names.device(a.device_id), names.device_place(a.device_id),
            names.point(a.point_id), value, names.unit_of(a.point_id),
            None if a.ack_ts is None else round(a.ack_ts - a.start_ts, 1),
            None if a.clear_ts is None else round(a.clear_ts - a.start_ts, 1),
            a.active, a.acknowledged, a.verdict,
        ))
    return rows


def _totals(ev: Evidence, sc: Score) -> Totals:
    by_cat: dict[str, int] = defaultdict(int)
    by_hour = [0] * 24
    n = 0
    for a in ev.alarms:
        if ev.period.start <= a.start_ts < ev.period.end:
            n += 1
            by_cat[a.category] += 1
            by_hour[ev.period.local(a.start_ts).hour] += 1
    ctx = ScoringContext(ev, Names(ev.places, ev.devices, ev.points), {d.id for d in ev.devices})
    acks, clears = response_times(ctx)
    return Totals(len(ev.devices), len(ev.points), n, dict(by_cat), by_hour, round(online_rate(list(ev.health.values())), 6),
                  [round(s / 60, 2) for _, s in acks], [round(s / 60, 2) for _, s in clears])


def build_unit_report(ev: Evidence, cfg: ReportsConfig, generated_ts: float | None = None) -> UnitReport:
    names = Names(ev.places, ev.devices, ev.points)
    t = time.perf_counter()
    unit_score = score(ev, cfg.scoring, names=names)
    circuits = []
    for d in ev.devices:
        s = score(ev, cfg.scoring, [d.id], scope="circuit", scope_id=d.id, names=names)
        circuits.append(CircuitScore(d.id, d.name, names.device_place(d.id), s.total, s.grade))
    circuits.sort(key=lambda c: (c.total, c.device))
    places = _place_scores(ev, names, cfg)
    found = findings(ev, names)
    settings = [PointSetting(p.id, p.device_id, names.device(p.device_id), p.label, p.point_class, p.unit, p.setting, p.pre_setting)
                for p in ev.points]
    evidence = AnalysisResults(list(ev.stats), list(ev.trends), list(ev.episodes), list(ev.sudden), list(ev.recurring),
                               list(ev.health.values()))
    timings = dict(ev.timings)
    timings["score_s"] = round(time.perf_counter() - t, 3)
    return UnitReport(
        "unit", REPORT_VERSION, ev.unit, ev.period, generated_ts or time.time(), unit_score, places, circuits, found,
        _hot(ev, names, cfg.analysis.hot_top), _alarm_rows(ev, names), ev.hazards, _totals(ev, unit_score), settings,
        evidence, ev.charts, cfg, timings,
    )


async def unit_report(source: ReportSource, unit_key: str, period: Period, cfg: ReportsConfig,
                      progress: Progress | None = None, generated_ts: float | None = None) -> UnitReport:
    ev = await collect(source, unit_key, period, cfg, progress)
    return build_unit_report(ev, cfg, generated_ts)


def summarize(reports: list[UnitReport], period: Period, cfg: ReportsConfig, generated_ts: float | None = None) -> SummaryReport:
    lines = [
        UnitLine(r.unit, r.score.total, r.score.grade, len(r.score.direct),
                 sum(1 for f in r.findings if f.level == "high"), len(r.findings), r.totals.alarms, r.totals.online_rate,
                 {i.key: i.kept for i in r.score.items})
        for r in reports
    ]
    lines.sort(key=lambda u: (u.total, u.unit.key))
    return SummaryReport("summary", REPORT_VERSION, period, generated_ts or time.time(), lines, reports, cfg)
