"""Durations as people write them in a site file: ``30m``, ``12h``, ``7d``, ``2w``, ``45s`` or seconds.

One parser for every section that takes a duration (``backup.every``, ``notify.links.ttl``,
retention periods), so the same text means the same time everywhere and errors read alike.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_duration(value: str | float | int) -> float:
    """``24h``, ``7d``, ``30m``, ``45s``, ``2w`` or a number of seconds → seconds (> 0).

    Raises ``ValueError`` naming the value for anything else, zero or negative.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (e.g. 24h, 7d, 30m, 45s or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be more than 0")
    return seconds


__all__ = ["parse_duration"]
