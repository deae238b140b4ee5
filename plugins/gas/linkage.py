"""The gas plugin's default linkage (联动): on a level-2 gas alarm close the valve, start the fan.

The alarm engine runs linkage from the site file's ``alarms.linkage``; these are
the entries to put there (``firebus.plugins.gas.default_linkage()`` returns them
as data).  Writes go to the alarm's own device (the detector or controller that
drives the valve and fan relays); name ``device_id`` for a separate valve box.
Whether the valve really closed is then the ``gas.feedback`` rule's job: no
"closed" feedback within its timeout → "valve failed to close" fault.

GB 50116-2013 §8.1 (gas detection system) and common practice: the second level
is the actionable one; a site may move the trigger to level 1 with
``min_severity: 50``.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import AlarmCategory, Severity


def default_linkage(*, valve: bool = True, fan: bool = True, min_severity: int = int(Severity.FIRE),
                    name: str = "gas_level_2") -> list[dict[str, Any]]:
    """``alarms.linkage`` entries (plain data, as in a site file)."""
    actions = []
    if valve:
        actions.append({"type": "write_point", "point_key": "valve_close", "value": True})
    if fan:
        actions.append({"type": "write_point", "point_key": "fan_start", "value": True})
    return [
        {
            "name": name,
            # NEW: the first alarm is already level 2; UPDATE: level 1 rose to level 2.
            "when": {"categories": [str(AlarmCategory.GAS)], "transitions": ["new", "update"],
                     "min_severity": min_severity},
            "actions": actions,
        }
    ]
