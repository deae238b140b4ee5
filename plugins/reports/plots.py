"""The report's plots (matplotlib, object API: no pyplot state, safe in threads), as PNG bytes.

Each function takes the report data and a language and returns one PNG.  Text
uses a CJK font found on the system (fonts-wqy-microhei or fonts-noto-cjk,
scripts/deps/reports.list).
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from . import i18n  # noqa: E402
from .report import UnitReport  # noqa: E402

CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "SimHei")
DPI = 110
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first CJK family matplotlib can find (None: Chinese would show as boxes)."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in names:
            return name
    return None


def _figure(w: float, h: float) -> Figure:
    font = cjk_font()
    matplotlib.rcParams["font.sans-serif"] = ([font] if font else []) + ["DejaVu Sans"]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False
    # constrained layout: one draw per figure (bbox_inches="tight" draws twice)
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    return fig


def _hbox(ax, data, **kw) -> None:
    """A horizontal boxplot (``vert`` became ``orientation`` in matplotlib 3.10)."""
    try:
        ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:
        ax.boxplot(data, vert=False, **kw)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _names(r: UnitReport) -> dict[str, tuple[str, str, float | None, float | None]]:
    return {s.point_id: (s.device, s.point, s.setting, s.pre_setting) for s in r.settings}


def trend_chart(r: UnitReport, cls: str, lang: str) -> bytes | None:
    """Daily peaks of the circuits nearest their setting, with the pre-alarm and alarm bands."""
    names = _names(r)
    pts = [d for d in r.charts.daily if any(s.point_id == d.point_id and s.point_class == cls for s in r.settings)]
    if not pts:
        return None
    fig = _figure(7.2, 3.2)
    ax = fig.add_subplot()
    settings, pres = [], []
    for i, d in enumerate(pts):
        device, point, setting, pre = names[d.point_id]
        x = list(range(len(d.days)))
        ax.plot(x, [math.nan if v is None else v for v in d.peak], color=COLORS[i % len(COLORS)], lw=1.4,
                label=f"{device} {point}")
        if setting is not None:
            settings.append(setting)
        if pre is not None:
            pres.append(pre)
    top = max([v for d in pts for v in d.peak if v is not None] + settings + [1.0])
    if settings:
        s = min(settings)
        ax.axhspan(s, max(top * 1.08, s * 1.05), color="#d62728", alpha=0.10, lw=0)
        ax.axhline(s, color="#d62728", lw=1.2, ls="--", label=i18n.t("ch_alarm_setting", lang) + f" {i18n.num(s)}")
    if pres:
        p = min(pres)
        ax.axhspan(p, min(settings) if settings else p * 1.2, color="#ff7f0e", alpha=0.10, lw=0)
        ax.axhline(p, color="#ff7f0e", lw=1.0, ls=":", label=i18n.t("ch_pre_setting", lang) + f" {i18n.num(p)}")
    days = pts[0].days
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    cls_name = i18n.t(f"class_{cls}", lang) if f"class_{cls}" in i18n.TEXT else cls
    unit = next((s.unit for s in r.settings if s.point_class == cls), "")
    ax.set_title(i18n.t("ch_trend", lang, cls=cls_name, n=len(pts)), fontsize=10)
    ax.set_ylabel(unit)
    ax.set_ylim(0, max(top * 1.08, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return _png(fig)


def alarms_chart(r: UnitReport, lang: str) -> bytes:
    fig = _figure(7.2, 2.6)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    cats = sorted(r.totals.alarms_by_category.items(), key=lambda kv: -kv[1])
    if cats:
        labels = [i18n.t(f"cat_{c}", lang) if f"cat_{c}" in i18n.TEXT else c for c, _ in cats]
        ax1.barh(labels, [n for _, n in cats], color=COLORS[0])
        ax1.invert_yaxis()
    else:
        ax1.text(0.5, 0.5, i18n.t("ch_no_data", lang), ha="center", va="center", transform=ax1.transAxes)
    ax1.set_title(i18n.t("ch_by_category", lang), fontsize=10)
    ax2.bar(range(24), r.totals.alarms_by_hour, color=COLORS[1])
    ax2.set_xticks(range(0, 24, 3))
    ax2.set_title(i18n.t("ch_by_hour", lang), fontsize=10)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="x" if ax is ax1 else "y")
    return _png(fig)


def online_chart(r: UnitReport, lang: str) -> bytes:
    fig = _figure(7.2, 2.3)
    ax = fig.add_subplot()
    rates = [v * 100 for v in r.charts.online_rate]
    ax.plot(range(len(rates)), rates, color=COLORS[2], marker="o", ms=2.5, lw=1.2)
    cfg = r.config.scoring.online
    ax.axhline(cfg.good * 100, color="#2ca02c", ls=":", lw=1)
    ax.axhline(cfg.bad * 100, color="#d62728", ls="--", lw=1)
    low = min(rates + [cfg.bad * 100]) - 1
    ax.set_ylim(max(0, low), 100.5)
    days = r.charts.online_days
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    ax.set_ylabel("%")
    ax.set_title(i18n.t("ch_online", lang), fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def response_chart(r: UnitReport, lang: str) -> bytes:
    fig = _figure(7.2, 2.3)
    ax = fig.add_subplot()
    data = [[max(v, 0.1) for v in r.totals.ack_minutes] or [math.nan], [max(v, 0.1) for v in r.totals.clear_minutes] or [math.nan]]
    labels = [i18n.t("ch_ack", lang), i18n.t("ch_clear", lang)]
    if r.totals.ack_minutes:
        _hbox(ax, data, widths=0.5, showfliers=True)
        ax.set_yticks([1, 2], labels)
        for i, d in enumerate(data):
            ax.scatter(d, [i + 1] * len(d), s=8, color=COLORS[i], alpha=0.6, zorder=3)
        ax.set_xscale("log")
        ax.axvline(r.config.scoring.ack_p90.good / 60, color="#2ca02c", ls=":", lw=1)
        ax.axvline(r.config.scoring.ack_p90.bad / 60, color="#d62728", ls="--", lw=1)
    else:
        ax.text(0.5, 0.5, i18n.t("ch_no_data", lang), ha="center", va="center", transform=ax.transAxes)
    ax.set_title(i18n.t("ch_response", lang), fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def score_chart(r: UnitReport, lang: str) -> bytes:
    fig = _figure(7.2, 2.4)
    ax = fig.add_subplot()
    items = r.score.items
    labels = [i.name_zh if lang == "zh" else i.name_en for i in items]
    ax.barh(labels, [i.points for i in items], color="#e0e0e0")
    colors = ["#bdbdbd" if not any(e.assessed for e in i.elements) else COLORS[2] if i.deducted == 0 else COLORS[3]
              for i in items]  # grey: nothing of the item could be assessed
    ax.barh(labels, [i.kept for i in items], color=colors)
    for k, i in enumerate(items):
        ax.text(i.points + 0.3, k, f"{i18n.num(i.kept, 2)}/{i18n.num(i.points)}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(i.points for i in items) * 1.25)
    ax.set_title(i18n.t("ch_score", lang), fontsize=10)
    return _png(fig)


def margin_chart(r: UnitReport, lang: str) -> bytes:
    """Per class: each point's P95 of hourly maxima over its setting (the distribution over circuits)."""
    fig = _figure(7.2, 2.4)
    ax = fig.add_subplot()
    groups, labels = [], []
    for cls in r.config.analysis.circuit_classes:
        vals = [s.q_ratio * 100 for s in r.evidence.stats if s.point_class == cls and s.q_ratio is not None]
        if vals:
            groups.append(vals)
            labels.append(i18n.t(f"class_{cls}", lang) if f"class_{cls}" in i18n.TEXT else cls)
    if groups:
        _hbox(ax, groups, widths=0.5)
        ax.set_yticks(range(1, len(groups) + 1), labels)
        for i, g in enumerate(groups):
            ax.scatter(g, [i + 1] * len(g), s=8, alpha=0.5, color=COLORS[i], zorder=3)
    sc = r.config.scoring
    ax.axvspan(sc.margin_low * 100, sc.margin_high * 100, color="#ff7f0e", alpha=0.10, lw=0)
    ax.axvspan(sc.margin_high * 100, 130, color="#d62728", alpha=0.10, lw=0)
    ax.axvline(100, color="#d62728", ls="--", lw=1)
    ax.set_xlim(0, 130)
    ax.set_xlabel("%")
    ax.set_title(i18n.t("ch_margin", lang), fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def pattern_chart(r: UnitReport, lang: str) -> bytes | None:
    if not r.charts.hourly:
        return None
    h = r.charts.hourly[0]
    names = _names(r)
    device, point, _s, _p = names.get(h.point_id, (h.point_id, "", None, None))
    fig = _figure(7.2, 2.5)
    ax = fig.add_subplot()
    x = [i / 24 for i in range(len(h.values))]
    ax.plot(x, [math.nan if v is None else v for v in h.values], color=COLORS[1], lw=0.9, label=i18n.t("ch_value", lang))
    ax.plot(x, [math.nan if v is None else v for v in h.baseline], color="black", lw=1.0, ls="--", alpha=0.8,
            label=i18n.t("ch_usual", lang))
    for e in r.evidence.episodes:
        if e.point_id == h.point_id:
            ax.axvspan((e.start - h.start) / 86400, (e.end - h.start) / 86400, color="#d62728", alpha=0.15, lw=0)
    ax.set_xlabel("d")
    ax.set_ylabel(next((s.unit for s in r.settings if s.point_id == h.point_id), ""))
    ax.set_title(i18n.t("ch_pattern", lang, device=device, point=point), fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    return _png(fig)


def all_charts(r: UnitReport, lang: str) -> dict[str, bytes]:
    out: dict[str, bytes | None] = {
        "score": score_chart(r, lang),
        "trend_residual_current": trend_chart(r, "residual_current", lang),
        "trend_temperature": trend_chart(r, "temperature", lang),
        "margin": margin_chart(r, lang),
        "pattern": pattern_chart(r, lang),
        "alarms": alarms_chart(r, lang),
        "online": online_chart(r, lang),
        "response": response_chart(r, lang),
    }
    return {k: v for k, v in out.items() if v is not None}


def summary_chart(s, lang: str) -> bytes | None:
    """Scores of the units of a summary, with the grade bands."""
    if not s.units:
        return None
    fig = _figure(7.2, max(1.6, 0.35 * len(s.units) + 0.8))
    ax = fig.add_subplot()
    bands = sorted(s.config.scoring.bands, key=lambda b: b.min_score)
    shades = {"A": "#2e7d32", "B": "#7cb342", "C": "#ef6c00", "D": "#c62828"}
    for i, b in enumerate(bands):
        hi = bands[i + 1].min_score if i + 1 < len(bands) else 100
        ax.axvspan(b.min_score, hi, color=shades.get(str(b.grade), "#999"), alpha=0.08, lw=0)
    labels = [u.unit.name or u.unit.key for u in s.units]
    ax.barh(labels, [u.total for u in s.units], color=[shades.get(str(u.grade), "#999") for u in s.units])
    for k, u in enumerate(s.units):
        ax.text(u.total + 0.5, k, i18n.num(u.total, 1), va="center", fontsize=8)
    ax.set_xlim(0, 105)
    ax.invert_yaxis()
    ax.set_title(i18n.t("h_units", lang), fontsize=10)
    return _png(fig)
