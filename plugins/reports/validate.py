"""``firebus_validate_site``: the ``reports:`` section, checked before anything starts.

Field errors come from msgspec (``reports.schedule[0].every: Invalid enum value 'daily'``);
cross-references are checked here: schedule times, languages, unit keys, and that
recipients name roles and channels the ``notify:`` section has.  The core turns each
problem into ``site.yaml:LINE: path: message``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from firebus.sdk import SiteProblem

from .config import ReportsConfig, load_config

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
ROLES = ("duty_officer", "unit_manager", "supervisor", "maintenance")  # notify's Role values
_AT = re.compile(r"- at `\$([^`]*)`$")


def parse_hhmm(text: str) -> tuple[int, int]:
    m = _HHMM.match(text.strip())
    if not m:
        raise ValueError(f"expected HH:MM (00:00–23:59), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _field_problem(exc: msgspec.ValidationError) -> SiteProblem:
    message = str(exc)
    m = _AT.search(message)
    if m:
        return SiteProblem("reports" + m.group(1), message[: m.start()].strip(" -"))
    return SiteProblem("reports", message)


def check(site: dict[str, Any]) -> tuple[ReportsConfig | None, list[SiteProblem]]:
    section = site.get("reports")
    if section is None:
        return ReportsConfig(), []
    if not isinstance(section, dict):
        return None, [SiteProblem("reports", "expected a mapping")]
    try:
        cfg = load_config(section)
    except msgspec.ValidationError as exc:
        return None, [_field_problem(exc)]
    problems: list[SiteProblem] = []
    if cfg.language not in ("", "zh", "en"):
        problems.append(SiteProblem("reports.language", f"unknown language {cfg.language!r} (zh or en)"))
    notify = site.get("notify") if isinstance(site.get("notify"), dict) else {}
    channels = {c.get("key") for c in notify.get("channels") or [] if isinstance(c, dict)}
    units = {u.get("key") for u in site.get("units") or [] if isinstance(u, dict)}
    for i, s in enumerate(cfg.schedule):
        where = f"reports.schedule[{i}]"
        try:
            parse_hhmm(s.at)
        except ValueError as exc:
            problems.append(SiteProblem(f"{where}.at", str(exc)))
        for j, key in enumerate(s.units):
            if key not in units:
                problems.append(SiteProblem(f"{where}.units[{j}]", f"no unit {key!r} in units: (known: {sorted(k for k in units if k)})"))
        for j, lang in enumerate(s.languages):
            if lang not in ("zh", "en"):
                problems.append(SiteProblem(f"{where}.languages[{j}]", f"unknown language {lang!r} (zh or en)"))
        if not s.formats:
            problems.append(SiteProblem(f"{where}.formats", "name at least one format (pdf, html, json)"))
        for j, r in enumerate(s.recipients):
            for k, role in enumerate(r.roles):
                if role not in ROLES:
                    problems.append(SiteProblem(f"{where}.recipients[{j}].roles[{k}]",
                                                f"unknown role {role!r} (one of {', '.join(ROLES)})"))
            for k, ch in enumerate(r.channels):
                if ch not in channels:
                    problems.append(SiteProblem(f"{where}.recipients[{j}].channels[{k}]",
                                                f"no channel {ch!r} in notify.channels (known: {sorted(c for c in channels if c)})"))
    if cfg.live.window_days < 1 or cfg.live.refresh_s < 0:
        problems.append(SiteProblem("reports.live", "window_days must be ≥ 1 and refresh_s ≥ 0"))
    return (None if problems else cfg), problems
