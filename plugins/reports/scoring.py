"""The health-check score: element → item → total, with A-class direct criteria.

Structure after the Chinese assessment schemes (T/JFPA 0005-2021: 检查要素 →
子项 → 单项 → 总体得分, direct judgement before the overall rating; DB13/T
5336-2021: A direct-judgement items, B key items, C general items): each
*element* turns one measured input into a deduction, each *item* loses at most
its points, the total is 100 minus the items' deductions, and any A-class
criterion makes the grade D.  The inputs, weights and bands are firebus's own
(docs/reports.md says which part comes from where).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import msgspec
import numpy as np

from . import i18n
from .analysis import DeviceHealth
from .collect import Evidence
from .config import Each, Grade, Ramp, Rate, ScoringConfig
from .model import AlarmRecord
from .names import Names
from .stats import nearest_rank

MAX_LINES = 8


class Line(msgspec.Struct, frozen=True, omit_defaults=True):
    """One piece of evidence: what, where, when, in both languages."""

    zh: str
    en: str
    device_id: str | None = None
    point_id: str | None = None
    value: float | None = None
    ts: float | None = None


class Element(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    name_zh: str
    name_en: str
    deducted: float
    input_zh: str
    input_en: str
    input: float | None = None
    assessed: bool = True
    evidence: list[Line] = []
    more: int = 0  # evidence lines left out


class Item(msgspec.Struct, frozen=True):
    key: str
    name_zh: str
    name_en: str
    points: float
    deducted: float
    elements: list[Element]

    @property
    def kept(self) -> float:
        return round(self.points - self.deducted, 2)


class Direct(msgspec.Struct, frozen=True, omit_defaults=True):
    key: str
    zh: str
    en: str
    device_id: str | None = None
    point_id: str | None = None
    ts: float | None = None


class Score(msgspec.Struct, frozen=True):
    scope: str  # unit | place | circuit
    scope_id: str
    total: float
    raw_total: float  # before the direct-criterion cap
    grade: Grade
    device_months: float
    items: list[Item]
    direct: list[Direct]


def _r(x: float) -> float:
    return round(float(x) + 0.0, 2)


def rate_deduction(rule: Rate, rate: float) -> float:
    return _r(rule.weight * min(1.0, rate / rule.full)) if rule.full > 0 else 0.0


def each_deduction(rule: Each, total_severity: float) -> float:
    return _r(min(rule.cap, rule.per * total_severity))


def ramp_deduction(rule: Ramp, x: float) -> float:
    if rule.bad == rule.good:
        return 0.0
    return _r(rule.weight * float(np.clip((x - rule.good) / (rule.bad - rule.good), 0.0, 1.0)))


def grade_of(total: float, cfg: ScoringConfig) -> Grade:
    for band in sorted(cfg.bands, key=lambda b: -b.min_score):
        if total >= band.min_score:
            return band.grade
    return Grade.D


class ScoringContext:
    """The evidence, the names and the devices in scope, for one score."""

    def __init__(self, ev: Evidence, names: Names, devices: set[str]) -> None:
        self.ev, self.names, self.devices = ev, names, devices
        self.tz = ev.period.tz
        self.start, self.end = ev.period.start, ev.period.end

    def when(self, ts: float | None) -> str:
        return i18n.when(ts, self.tz)

    def cat(self, category: str, lang: str) -> str:
        key = f"cat_{category}"
        return i18n.t(key, lang) if key in i18n.TEXT else category

    def line(self, key: str, *, device_id: str | None = None, point_id: str | None = None, num: float | None = None,
             ts: float | None = None, **fields: object) -> Line:
        texts = []
        for lang in ("zh", "en"):
            f = {k: (v(lang) if callable(v) else v) for k, v in fields.items()}
            f.setdefault("device", self.names.device(device_id))
            f.setdefault("point", self.names.point(point_id))
            texts.append(i18n.t(key, lang, **f))
        return Line(texts[0], texts[1], device_id, point_id, num, ts)


def _element(key: str, deducted: float, inp: tuple[str, str], value: float | None, lines: Sequence[Line],
             assessed: bool = True) -> Element:
    return Element(key, i18n.t(f"el_{key}", "zh"), i18n.t(f"el_{key}", "en"), deducted, inp[0], inp[1], value,
                   assessed, list(lines[:MAX_LINES]), max(0, len(lines) - MAX_LINES))


def _inp(key: str, **fields: object) -> tuple[str, str]:
    return i18n.t(key, "zh", **fields), i18n.t(key, "en", **fields)


def _not_assessed() -> tuple[str, str]:
    return i18n.t("not_assessed", "zh"), i18n.t("not_assessed", "en")


def _item(key: str, points: float, elements: list[Element]) -> Item:
    deducted = _r(min(points, sum(e.deducted for e in elements)))
    return Item(key, i18n.t(f"item_{key}", "zh"), i18n.t(f"item_{key}", "en"), points, deducted, elements)


def _in_period(a: AlarmRecord, c: ScoringContext) -> bool:
    return c.start <= a.start_ts < c.end and (a.device_id in c.devices)


def _counted(a: AlarmRecord) -> bool:
    """A false alarm or a test is not an alarm of the circuit (it is scored as a false alarm)."""
    return a.verdict not in ("false_alarm", "test")


def device_months(health: Iterable[DeviceHealth], cfg: ScoringConfig) -> float:
    return sum(h.exposure_s for h in health) / (cfg.month_days * 86400)


def score(ev: Evidence, cfg: ScoringConfig, device_ids: Iterable[str] | None = None, scope: str = "unit",
          scope_id: str | None = None, names: Names | None = None) -> Score:
    names = names or Names(ev.places, ev.devices, ev.points)
    devices = set(device_ids) if device_ids is not None else {d.id for d in ev.devices}
    c = ScoringContext(ev, names, devices)
    health = [h for d, h in ev.health.items() if d in devices]
    dm = device_months(health, cfg)
    alarms = [a for a in ev.alarms if _in_period(a, c)]
    items = [
        _alarms_item(c, cfg, alarms, dm),
        _margin_item(c, cfg),
        _trends_item(c, cfg),
        _system_item(c, cfg, health, alarms, dm),
    ]
    if scope == "unit":
        items += [_response_item(c, cfg), _hazards_item(c, cfg)]
    direct = _direct(c, cfg, health, unit=scope == "unit")
    points = sum(i.points for i in items)
    kept = points - sum(i.deducted for i in items)
    raw = _r(100.0 * kept / points) if points else 100.0
    total = min(raw, cfg.direct.score_cap) if direct else raw
    grade = Grade.D if direct else grade_of(total, cfg)
    return Score(scope, scope_id or ev.unit.id, total, raw, grade, round(dm, 4), items, direct)


# -- I1 alarms -----------------------------------------------------------------------------------


def _alarm_line(c: ScoringContext, a: AlarmRecord) -> Line:
    unit = c.names.unit_of(a.point_id)
    value = a.peak_value if a.peak_value is not None else a.first_value
    shown = f"{i18n.num(value)}{(' ' + unit) if unit else ''}" if value is not None else (a.message or a.category)
    return c.line("ev_alarm", device_id=a.device_id, point_id=a.point_id, num=value, ts=a.start_ts,
                  value=shown, time=c.when(a.start_ts))


def _alarms_item(c: ScoringContext, cfg: ScoringConfig, alarms: list[AlarmRecord], dm: float) -> Item:
    elements = []
    for key, category, rule in (("electrical_alarms", "electrical_alarm", cfg.electrical_alarms),
                                ("pre_alarms", "electrical_pre_alarm", cfg.pre_alarms)):
        found = [a for a in alarms if a.category == category and _counted(a) and a.rule_type != "leakage.jump"]
        rate = len(found) / dm if dm > 0 else 0.0
        elements.append(_element(
            key, rate_deduction(rule, rate), _inp("in_rate", count=len(found), dm=i18n.num(dm, 2), rate=i18n.num(rate, 3)),
            round(rate, 4), [_alarm_line(c, a) for a in found]))
    groups = [g for g in c.ev.recurring if g.device_id in c.devices]
    lines = [c.line("ev_recurring", device_id=g.device_id, point_id=g.point_id, category=lambda l, g=g: c.cat(g.category, l),
                    days=len(g.dates), hour=f"{g.hour:02d}", dates=", ".join(d[5:] for d in g.dates)) for g in groups]
    elements.append(_element("recurring", each_deduction(cfg.recurring, len(groups)), _inp("in_count", count=len(groups)),
                             float(len(groups)), lines))
    return _item("alarms", cfg.cap_alarms, elements)


# -- I2 margin ------------------------------------------------------------------------------------


def _margin_item(c: ScoringContext, cfg: ScoringConfig) -> Item:
    elements = []
    for key, cls, rule in (("residual_margin", "residual_current", cfg.residual_margin),
                           ("temperature_margin", "temperature", cfg.temperature_margin)):
        stats = sorted((s for s in c.ev.stats if s.point_class == cls and s.device_id in c.devices and s.severity > 0),
                       key=lambda s: -s.severity)
        total = sum(s.severity for s in stats)
        lines = [c.line("ev_margin", device_id=s.device_id, point_id=s.point_id, num=s.q_value, ts=s.max_ts,
                        q=i18n.num(s.q_value), unit=c.names.unit_of(s.point_id), setting=i18n.num(s.setting),
                        ratio=i18n.num((s.q_ratio or 0) * 100), sev=i18n.num(s.severity, 2)) for s in stats]
        elements.append(_element(key, each_deduction(rule, total), _inp("in_severity", count=len(stats), sum=i18n.num(total, 2)),
                                 round(total, 4), lines))
    return _item("margin", cfg.cap_margin, elements)


# -- I3 trends and events ----------------------------------------------------------------------------


def _trends_item(c: ScoringContext, cfg: ScoringConfig) -> Item:
    tz = c.tz
    rising = sorted((t for t in c.ev.trends if t.device_id in c.devices and t.severity > 0), key=lambda t: t.days_to_cross or 0)
    total = sum(t.severity for t in rising)
    lines = [c.line("ev_trend", device_id=t.device_id, point_id=t.point_id, num=t.slope_per_day, ts=t.cross_ts,
                    slope=i18n.num(t.slope_per_day, 2), unit=c.names.unit_of(t.point_id), days=i18n.num(t.days_to_cross, 0),
                    date=i18n.day(t.cross_ts, tz), setting=i18n.num(t.setting)) for t in rising]
    elements = [_element("trends", each_deduction(cfg.trends, total), _inp("in_severity", count=len(rising), sum=i18n.num(total, 2)),
                         round(total, 4), lines)]
    sudden = [s for s in c.ev.sudden if s.device_id in c.devices]
    lines = [c.line("ev_sudden", device_id=s.device_id, point_id=s.point_id, num=s.delta, ts=s.ts,
                    before=i18n.num(s.before), after=i18n.num(s.after), unit=c.names.unit_of(s.point_id), time=c.when(s.ts))
             for s in sudden]
    elements.append(_element("sudden", each_deduction(cfg.sudden, len(sudden)), _inp("in_count", count=len(sudden)),
                             float(len(sudden)), lines))
    eps = [e for e in c.ev.episodes if e.device_id in c.devices]
    lines = [c.line("ev_episode", device_id=e.device_id, point_id=e.point_id, num=e.value, ts=e.start,
                    start=c.when(e.start), end=c.when(e.end), value=i18n.num(e.value), unit=c.names.unit_of(e.point_id),
                    baseline=i18n.num(e.baseline), z=i18n.num(e.peak_z)) for e in eps]
    elements.append(_element("out_of_pattern", each_deduction(cfg.out_of_pattern, len(eps)), _inp("in_count", count=len(eps)),
                             float(len(eps)), lines))
    return _item("trends", cfg.cap_trends, elements)


# -- I4 monitoring system --------------------------------------------------------------------------------


def online_rate(health: Sequence[DeviceHealth]) -> float:
    exposure = sum(h.exposure_s for h in health)
    return 1.0 - sum(h.offline_s for h in health) / exposure if exposure > 0 else 1.0


def _system_item(c: ScoringContext, cfg: ScoringConfig, health: list[DeviceHealth], alarms: list[AlarmRecord], dm: float) -> Item:
    rate = online_rate(health)
    worst = sorted((h for h in health if h.offline_s > 0), key=lambda h: h.online_rate)
    lines = [c.line("ev_flaky", device_id=h.device_id, num=h.online_rate, outages=h.outages,
                    rate=i18n.num(h.online_rate * 100, 2), longest=lambda l, h=h: i18n.duration(h.longest_s, l)) for h in worst]
    elements = [_element("online", ramp_deduction(cfg.online, rate), _inp("in_online", rate=i18n.num(rate * 100, 2)),
                         round(rate, 6), lines)]
    flaky = [h for h in health if h.flaky]
    elements.append(_element("flaky", each_deduction(cfg.flaky, len(flaky)), _inp("in_count", count=len(flaky)),
                             float(len(flaky)), [ln for ln in lines if any(ln.device_id == h.device_id for h in flaky)]))
    faults = [a for a in alarms if a.category == "fault"]
    frate = len(faults) / dm if dm > 0 else 0.0
    elements.append(_element("faults", rate_deduction(cfg.faults, frate),
                             _inp("in_rate", count=len(faults), dm=i18n.num(dm, 2), rate=i18n.num(frate, 3)), round(frate, 4),
                             [_alarm_line(c, a) for a in faults]))
    return _item("system", cfg.cap_system, elements)


# -- I5 response ---------------------------------------------------------------------------------------------


def response_times(c: ScoringContext) -> tuple[list[tuple[AlarmRecord, float]], list[tuple[AlarmRecord, float]]]:
    """(alarm, seconds to acknowledge) and (alarm, seconds to clear) for alarms started in the period.

    An alarm not yet acknowledged (cleared) at the period end counts with the time up to
    the end: leaving alarms alone must not look fast.
    """
    acks, clears = [], []
    for a in c.ev.alarms:
        if not _in_period(a, c):
            continue
        ack = a.ack_ts if a.ack_ts is not None and a.ack_ts < c.end else c.end
        acks.append((a, max(0.0, ack - a.start_ts)))
        clear = a.clear_ts if a.clear_ts is not None and a.clear_ts < c.end else c.end
        clears.append((a, max(0.0, clear - a.start_ts)))
    return acks, clears


def _response_item(c: ScoringContext, cfg: ScoringConfig) -> Item:
    acks, clears = response_times(c)
    elements = []
    for key, rule, pairs in (("ack_p90", cfg.ack_p90, acks), ("clear_p90", cfg.clear_p90, clears)):
        if not pairs:
            elements.append(_element(key, 0.0, _inp("in_none"), None, [], assessed=False))
            continue
        p90 = nearest_rank(np.array([s for _, s in pairs]), 0.9)
        slow = sorted(pairs, key=lambda p: -p[1])[:3]
        lines = [c.line("ev_slowest", device_id=a.device_id, point_id=a.point_id, num=s, ts=a.start_ts,
                        category=lambda l, a=a: c.cat(a.category, l), time=c.when(a.start_ts),
                        value=lambda l, s=s: i18n.duration(s, l)) for a, s in slow]
        elements.append(_element(key, ramp_deduction(rule, p90),
                                 (i18n.t("in_duration", "zh", value=i18n.duration(p90, "zh"), n=len(pairs)),
                                  i18n.t("in_duration", "en", value=i18n.duration(p90, "en"), n=len(pairs))),
                                 round(p90, 1), lines))
    # not acknowledged by the period end (an alarm acknowledged without a recorded time counts as acknowledged)
    open_ = [a for a in c.ev.alarms if a.device_id in c.devices and a.start_ts < c.end
             and (a.ack_ts >= c.end if a.ack_ts is not None else not a.acknowledged)]
    lines = [c.line("ev_unack", device_id=a.device_id, point_id=a.point_id, ts=a.start_ts,
                    category=lambda l, a=a: c.cat(a.category, l), time=c.when(a.start_ts)) for a in open_]
    elements.append(_element("unacknowledged", each_deduction(cfg.unacknowledged, len(open_)),
                             _inp("in_count", count=len(open_)), float(len(open_)), lines))
    judged = [a for a in c.ev.alarms if _in_period(a, c) and a.verdict]
    false = [a for a in judged if a.verdict == "false_alarm"]
    if judged:
        share = len(false) / len(judged)
        lines = [c.line("ev_verdict", device_id=a.device_id, point_id=a.point_id, ts=a.start_ts, time=c.when(a.start_ts))
                 for a in false]
        elements.append(_element("false_alarms", rate_deduction(cfg.false_alarms, share),
                                 _inp("in_share", count=len(false), total=len(judged), rate=i18n.num(share * 100)),
                                 round(share, 4), lines))
    else:
        elements.append(_element("false_alarms", 0.0, _inp("in_none"), None, [], assessed=False))
    return _item("response", cfg.cap_response, elements)


# -- I6 hazards and inspection --------------------------------------------------------------------------------


def _hazards_item(c: ScoringContext, cfg: ScoringConfig) -> Item:
    hz = c.ev.hazards
    elements = []
    if hz is None:
        elements.append(_element("open_hazards", 0.0, _not_assessed(), None, [], assessed=False))
        elements.append(_element("overdue", 0.0, _not_assessed(), None, [], assessed=False))
    else:
        open_ = [h for h in hz if h.found_ts < c.end and (h.closed_ts is None or h.closed_ts >= c.end)]
        lines = [c.line("ev_hazard", device_id=h.device_id, ts=h.found_ts, title=h.title, time=c.when(h.found_ts)) for h in open_]
        elements.append(_element("open_hazards", each_deduction(cfg.open_hazards, len(open_)), _inp("in_count", count=len(open_)),
                                 float(len(open_)), lines))
        overdue = [h for h in hz if h.due_ts is not None and h.due_ts < c.end and h.found_ts < c.end
                   and (h.closed_ts is None or h.closed_ts > h.due_ts) and (h.closed_ts is None or h.closed_ts >= c.start)]
        lines = [c.line("ev_overdue", device_id=h.device_id, ts=h.due_ts, title=h.title, due=i18n.day(h.due_ts, c.tz))
                 for h in overdue]
        elements.append(_element("overdue", each_deduction(cfg.overdue, len(overdue)), _inp("in_count", count=len(overdue)),
                                 float(len(overdue)), lines))
    ins = c.ev.inspections
    if ins is None or ins.due == 0:
        elements.append(_element("inspection", 0.0, _not_assessed() if ins is None else _inp("in_none"), None, [],
                                 assessed=False))
    else:
        elements.append(_element("inspection", ramp_deduction(cfg.inspection, ins.completion),
                                 _inp("in_completion", done=ins.done, due=ins.due, rate=i18n.num(ins.completion * 100)),
                                 round(ins.completion, 4), []))
    return _item("hazards", cfg.cap_hazards, elements)


# -- A-class ---------------------------------------------------------------------------------------------------


def _direct(c: ScoringContext, cfg: ScoringConfig, health: list[DeviceHealth], unit: bool) -> list[Direct]:
    d = cfg.direct
    out: list[Direct] = []
    rate = online_rate(health)
    if health and rate < d.online_below:
        out.append(_dc(c, "online", rate=i18n.num(rate * 100, 1), limit=i18n.num(d.online_below * 100)))
    for a in c.ev.alarms:
        if a.category != "electrical_alarm" or a.device_id not in c.devices or not _counted(a):
            continue
        until = min(a.ack_ts if a.ack_ts is not None else c.end, c.end)
        hours = (until - max(a.start_ts, c.start)) / 3600
        if hours > d.unhandled_hours:
            out.append(_dc(c, "unhandled", device_id=a.device_id, point_id=a.point_id, ts=a.start_ts,
                           hours=i18n.num(hours, 0), time=c.when(a.start_ts)))
    for s in c.ev.stats:
        if s.device_id in c.devices and s.share_alarm >= d.persistent_share and s.setting is not None:
            out.append(_dc(c, "persistent", device_id=s.device_id, point_id=s.point_id, share=i18n.num(s.share_alarm * 100)))
    if unit and d.major_hazard and c.ev.hazards:
        for h in c.ev.hazards:
            if h.major and h.found_ts < c.end and (h.closed_ts is None or h.closed_ts >= c.end):
                out.append(_dc(c, "major", device_id=h.device_id, ts=h.found_ts, title=h.title))
    return out


def _dc(c: ScoringContext, key: str, device_id: str | None = None, point_id: str | None = None, ts: float | None = None,
        **fields: object) -> Direct:
    line = c.line(f"dc_{key}", device_id=device_id, point_id=point_id, ts=ts, **fields)
    return Direct(key, line.zh, line.en, device_id, point_id, ts)
