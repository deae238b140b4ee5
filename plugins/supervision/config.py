"""What the plugin reads from the site file: its own ``supervision:`` section and the units'
kind, geo and location kinds (``units:``, through ``CoreAPI.plugin_config``)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import msgspec


class SupervisionConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    #: response times (median, p90) are taken over alarms raised in the trailing window
    window_days: float = 90.0
    #: how often devices, hazards, inspections and scores are re-read (seconds)
    refresh_s: float = 30.0
    #: months shown in the trend and counted in "where and when" by default
    months: int = 12


class ConfigError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def load_config(section: dict[str, Any] | None) -> SupervisionConfig:
    try:
        cfg = msgspec.convert(section or {}, SupervisionConfig)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = re.search(r"at `\$\.([^`]+)`", text) or re.search(r"unknown field `([^`]+)`", text)
        raise ConfigError("supervision" + (f".{at.group(1)}" if at else ""), text.split(" - at ")[0]) from None
    if not 1 <= cfg.window_days <= 3660:
        raise ConfigError("supervision.window_days", "must be 1 … 3660 days")
    if not 1 <= cfg.refresh_s <= 3600:
        raise ConfigError("supervision.refresh_s", "must be 1 … 3600 seconds")
    if not 1 <= cfg.months <= 60:
        raise ConfigError("supervision.months", "must be 1 … 60")
    return cfg


class UnitFacts(msgspec.Struct, frozen=True):
    key: str
    name: str
    kind: str = ""
    lat: float | None = None
    lon: float | None = None


class SiteFacts:
    """The place tree's parts the views group by, from the site file the core runs with."""

    def __init__(self, units_section: Any, site_section: dict[str, Any] | None) -> None:
        site = site_section or {}
        self.tz = ZoneInfo(str(site.get("timezone") or "Asia/Shanghai"))
        self.language = site.get("language") if site.get("language") in ("zh", "en") else "zh"
        self.units: dict[str, UnitFacts] = {}
        self.location_kind: dict[str, str] = {}  # location key → kind ("" when not given)
        self.unit_of_location: dict[str, str] = {}
        for unit in units_section if isinstance(units_section, list) else []:
            if not isinstance(unit, dict) or not unit.get("key"):
                continue
            geo = unit.get("geo") if isinstance(unit.get("geo"), dict) else {}
            key = str(unit["key"])
            self.units[key] = UnitFacts(key=key, name=str(unit.get("name") or key), kind=str(unit.get("kind") or ""),
                                        lat=_num(geo.get("lat")), lon=_num(geo.get("lon")))
            for building in unit.get("buildings") or []:
                for floor in (building or {}).get("floors") or []:
                    for loc in (floor or {}).get("locations") or []:
                        if isinstance(loc, dict) and loc.get("key"):
                            self.location_kind[str(loc["key"])] = str(loc.get("kind") or "")
                            self.unit_of_location[str(loc["key"])] = key

    def local(self, ts: float) -> tuple[str, int, int]:
        """(YYYY-MM, weekday 0=Monday, hour) of ``ts`` in the site's time zone."""
        t = dt.datetime.fromtimestamp(ts, self.tz)
        return f"{t.year:04d}-{t.month:02d}", t.weekday(), t.hour

    def months_back(self, now: float, n: int) -> list[str]:
        """The ``n`` months up to and including the month of ``now``, oldest first."""
        t = dt.datetime.fromtimestamp(now, self.tz)
        y, m = t.year, t.month
        out = []
        for _ in range(n):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        return out[::-1]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
