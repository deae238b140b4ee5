"""Render a report as JSON, HTML or PDF (WeasyPrint), in Chinese or English.

The HTML is self-contained (plots inlined as PNG data URIs, CSS inlined), so
the same file is what a browser shows, what WeasyPrint prints and what a
notify channel could attach.  WeasyPrint embeds the subset of the CJK font the
text uses, so the PDF shows Chinese on a machine without the font.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Callable

import jinja2
import msgspec

from . import i18n
from .report import SummaryReport, UnitReport

MAX_ALARM_ROWS = 200  # in HTML/PDF; the JSON keeps every alarm


class Format(StrEnum):
    JSON = "json"
    HTML = "html"
    PDF = "pdf"


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    def load(name: str) -> str:
        return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, trim_blocks=True, lstrip_blocks=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _helpers(lang: str, tz: str) -> dict[str, Callable[..., str]]:
    def cat(c: str) -> str:
        key = f"cat_{c}"
        return i18n.t(key, lang) if key in i18n.TEXT else c

    return {
        "t": lambda key, **kw: i18n.t(key, lang, **kw),
        "when": lambda ts: i18n.when(ts, tz),
        "num": i18n.num,
        "dur": lambda s: i18n.duration(s, lang),
        "cat": cat,
    }


def to_json(report: UnitReport | SummaryReport) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=1)


def unit_html(r: UnitReport, lang: str, charts: dict[str, bytes] | None = None) -> str:
    if charts is None:
        from .plots import all_charts

        charts = all_charts(r, lang)
    css = resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")
    return _env().get_template("report.html").render(
        r=r, lang=lang, css=css, charts={k: _data_uri(v) for k, v in charts.items()}, max_alarms=MAX_ALARM_ROWS,
        **_helpers(lang, r.period.tz),
    )


def summary_html(s: SummaryReport, lang: str) -> str:
    from .plots import summary_chart

    css = resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")
    chart = summary_chart(s, lang)
    return _env().get_template("summary.html").render(
        s=s, lang=lang, css=css, chart=_data_uri(chart) if chart else None, **_helpers(lang, s.period.tz))


def pdf(html: str) -> bytes:
    import logging

    import weasyprint

    # WeasyPrint logs every CSS property it ignores at WARNING; the report's CSS is ours
    for name in ("weasyprint", "weasyprint.progress"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    return weasyprint.HTML(string=html).write_pdf()


def render(report: UnitReport | SummaryReport, fmt: Format, lang: str) -> bytes:
    if fmt is Format.JSON:
        return to_json(report)
    html = unit_html(report, lang) if isinstance(report, UnitReport) else summary_html(report, lang)
    if fmt is Format.HTML:
        return html.encode("utf-8")
    return pdf(html)
