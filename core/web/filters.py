"""Jinja filters: times in the site's zone, values with their unit."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment


def install(env: Environment, tz: ZoneInfo | None) -> None:
    def when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        if not ts:
            return "—"
        return dt.datetime.fromtimestamp(float(ts), tz or dt.timezone.utc).strftime(fmt)

    def value(v: Any, unit: str = "") -> str:
        if v is None:
            return "—"
        if isinstance(v, bool):
            text = "true" if v else "false"  # as JSON (and panel.js) shows it
        elif isinstance(v, float):
            text = f"{v:.3f}".rstrip("0").rstrip(".")
        else:
            text = str(v)
        return f"{text} {unit}".strip()

    env.filters["when"] = when
    env.filters["value"] = value
