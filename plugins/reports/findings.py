"""Findings: what the analysis saw, per device and place, with the suggested rectification (zh, en)."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from . import i18n
from .collect import Evidence
from .names import Names


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str  # trend | night_load | out_of_pattern | recurring | sudden | flaky | margin
    level: Level
    device_id: str | None
    device: str
    place: str
    title_zh: str
    title_en: str
    seen_zh: str
    seen_en: str
    action_zh: str
    action_en: str
    point_id: str | None = None
    point: str = ""
    ts: float | None = None


_ORDER = {Level.HIGH: 0, Level.MEDIUM: 1, Level.LOW: 2}


def _both(key: str, **fields: object) -> tuple[str, str]:
    out = []
    for lang in ("zh", "en"):
        out.append(i18n.t(key, lang, **{k: (v(lang) if callable(v) else v) for k, v in fields.items()}))
    return out[0], out[1]


def findings(ev: Evidence, names: Names) -> list[Finding]:
    tz = ev.period.tz
    out: list[Finding] = []

    def add(kind: str, level: Level, device_id: str | None, point_id: str | None, title: str, seen: tuple[str, str],
            action: str, ts: float | None) -> None:
        t_zh, t_en = i18n.TEXT[title]
        a_zh, a_en = i18n.TEXT[action]
        out.append(Finding(kind, level, device_id, names.device(device_id), names.device_place(device_id), t_zh, t_en,
                           seen[0], seen[1], a_zh, a_en, point_id, names.point(point_id), ts))

    points = {p.id: p for p in ev.points}
    for tr in ev.trends:
        if tr.days_to_cross is None:
            continue
        level = Level.HIGH if tr.days_to_cross <= 30 else Level.MEDIUM if tr.days_to_cross <= 90 else Level.LOW
        p = points[tr.point_id]
        seen = _both("f_trend_seen", point=p.label, slope=i18n.num(tr.slope_per_day, 2), unit=p.unit, z=i18n.num(tr.mk_z, 2),
                     days=i18n.num(tr.days_to_cross, 0), date=i18n.day(tr.cross_ts, tz), setting=i18n.num(tr.setting))
        action = f"f_trend_do_{p.point_class}" if f"f_trend_do_{p.point_class}" in i18n.TEXT else "f_trend_do_residual_current"
        add("trend", level, tr.device_id, tr.point_id, "f_trend", seen, action, tr.cross_ts)
    by_point: dict[tuple[str, bool], list] = {}
    for e in ev.episodes:  # one finding per point and kind, listing its episodes
        by_point.setdefault((e.point_id, e.night), []).append(e)
    for (pid, night), eps in by_point.items():
        p = points[pid]
        spans = ", ".join(f"{i18n.when(e.start, tz)[5:]}–{i18n.when(e.end, tz)[11:]}" for e in eps[:6])
        if len(eps) > 6:
            spans += " …"
        value = sum(e.value * e.hours for e in eps) / sum(e.hours for e in eps)
        base = sum(e.baseline * e.hours for e in eps) / sum(e.hours for e in eps)
        seen = _both("f_pattern_seen", n=len(eps), spans=spans, point=p.label, value=i18n.num(value), unit=p.unit,
                     baseline=i18n.num(base), z=i18n.num(max(e.peak_z for e in eps)))
        add("night_load" if night else "out_of_pattern", Level.MEDIUM, eps[0].device_id, pid,
            "f_night" if night else "f_pattern", seen, "f_pattern_do", eps[0].start)
    for g in ev.recurring:
        cat_key = f"cat_{g.category}"
        seen = _both("f_recurring_seen", point=names.point(g.point_id) or names.device(g.device_id),
                     category=lambda l, cat_key=cat_key, g=g: i18n.t(cat_key, l) if cat_key in i18n.TEXT else g.category,
                     days=len(g.dates), hour=f"{g.hour:02d}", dates=", ".join(d[5:] for d in g.dates))
        add("recurring", Level.MEDIUM, g.device_id, g.point_id, "f_recurring", seen, "f_recurring_do", None)
    for s in ev.sudden:
        p = points.get(s.point_id)
        unit = p.unit if p else ""
        seen = _both("f_sudden_seen", time=i18n.when(s.ts, tz), point=p.label if p else s.point_id,
                     before=i18n.num(s.before), after=i18n.num(s.after), unit=unit, delta=f"{s.delta:+.0f}")
        high = p is not None and p.pre_setting is not None and (s.after or 0) >= p.pre_setting
        add("sudden", Level.HIGH if high else Level.MEDIUM, s.device_id, s.point_id, "f_sudden", seen, "f_sudden_do", s.ts)
    for h in ev.health.values():
        if not h.flaky:
            continue
        seen = _both("f_flaky_seen", outages=h.outages, offline=lambda l, h=h: i18n.duration(h.offline_s, l),
                     rate=i18n.num(h.online_rate * 100, 2), faults=h.faults)
        add("flaky", Level.HIGH if h.online_rate < 0.9 else Level.MEDIUM, h.device_id, None, "f_flaky", seen, "f_flaky_do", None)
    for s in ev.stats:
        if s.severity < 0.5 or s.q_ratio is None:
            continue
        p = points[s.point_id]
        seen = _both("f_margin_seen", point=p.label, q=i18n.num(s.q_value), unit=p.unit, setting=i18n.num(s.setting),
                     ratio=i18n.num(s.q_ratio * 100), share=i18n.num(s.share_80 * 100))
        action = f"f_margin_do_{p.point_class}" if f"f_margin_do_{p.point_class}" in i18n.TEXT else "f_margin_do_temperature"
        add("margin", Level.HIGH if s.severity >= 1 else Level.MEDIUM, s.device_id, s.point_id, "f_margin", seen, action,
            s.max_ts)
    out.sort(key=lambda f: (_ORDER[f.level], f.kind, f.device, f.point, f.ts or 0))
    return out
