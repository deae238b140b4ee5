"""Display priority of alarms (GB 4717-2005 4.2.3 / 4.3: fire alarm display first).

The order the panel, the console and ``GET /api/alarms`` show alarms in:

1. alarms still on the board (active, or reset but not yet acknowledged) before closed ones;
2. by category group: fire > gas / electrical-fire (leakage) > supervisory > faults and offline;
3. within fire: unacknowledged first (an active or *reset but unacknowledged* fire is never
   below an acknowledged one), then active before reset;
   within the other groups: active first, then unacknowledged;
4. then severity, newest first.

The same key exists in SQL (``ORDER_SQL``, for paging in the database) and in Python
(``display_key``, for lists built in memory); a test checks they agree.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk.vocab import AlarmCategory

#: Category group per category: 0 fire, 1 gas / leakage, 2 supervisory, 3 fault / offline.
GROUP: dict[str, int] = {
    AlarmCategory.FIRE.value: 0,
    AlarmCategory.GAS.value: 1,
    AlarmCategory.ELECTRICAL_ALARM.value: 1,
    AlarmCategory.ELECTRICAL_PRE_ALARM.value: 1,
    AlarmCategory.SUPERVISORY.value: 2,
    AlarmCategory.FAULT.value: 3,
    AlarmCategory.OFFLINE.value: 3,
}
#: The console's sections, in display order, with the categories each holds.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fire", ("fire",)),
    ("leakage", ("gas", "electrical_alarm", "electrical_pre_alarm")),
    ("supervisory", ("supervisory",)),
    ("fault", ("fault", "offline")),
)

_group_case = " ".join(f"WHEN '{k}' THEN {v}" for k, v in GROUP.items())
ORDER_SQL = (
    "(CASE WHEN active = 1 OR acknowledged = 0 THEN 0 ELSE 1 END), "
    f"(CASE category {_group_case} ELSE 4 END), "
    "(CASE WHEN category = 'fire' THEN acknowledged ELSE 1 - active END), "
    "(CASE WHEN category = 'fire' THEN 1 - active ELSE acknowledged END), "
    "severity DESC, start_ts DESC"
)


def display_key(alarm: Any) -> tuple[Any, ...]:
    """Sort key for an ``Alarm`` (or anything with the same attributes): smaller first."""
    category = str(alarm.category)
    active, acked = bool(alarm.active), bool(alarm.acknowledged)
    fire = category == AlarmCategory.FIRE.value
    return (
        0 if (active or not acked) else 1,
        GROUP.get(category, 4),
        int(acked) if fire else 1 - int(active),
        1 - int(active) if fire else int(acked),
        -int(alarm.severity),
        -float(alarm.start_ts),
    )
