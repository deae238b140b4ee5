"""The facility catalogue: what a checkpoint can hold, and how often each must be checked.

Default frequencies follow GB 25201-2010 (消防设施操作和维护, duty/patrol/testing/
maintenance) and GB 50444 for extinguishers.  The reference folder had no GB 25201
text when this was written, so the clause numbers below are recalled
[UNVERIFIED]; every value is a site-file default (``inspection.items``), never a
hard rule:

* building fire facilities are patrolled (巡查) daily in a 消防安全重点单位
  (GB 25201 §6.1, recalled), every 2 h while open in a public crowded place
  (公众聚集场所, ``crowded: true``), weekly elsewhere;
* extinguishers are checked monthly (GB 50444 §5.2.1); fire pumps are started
  monthly, sprinkler valves and hydrants inspected monthly (GB 25201 annex of
  monthly checks, recalled); a full test by a qualified body is yearly.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Frequency(StrEnum):
    """How often an item must be checked: its period in the site's time zone."""

    EVERY_2H = "2h"  # crowded places while open
    DAILY = "daily"
    WEEKLY = "weekly"  # ISO week, Monday first
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class ItemKind(StrEnum):
    EXTINGUISHER = "extinguisher"
    HYDRANT = "hydrant"
    SPRINKLER_VALVE = "sprinkler_valve"
    FIRE_DOOR = "fire_door"
    EMERGENCY_LIGHTING = "emergency_lighting"
    ALARM_PANEL = "alarm_panel"
    PUMP = "pump"
    ELECTRICAL_BOX = "electrical_box"
    EVACUATION_ROUTE = "evacuation_route"


class CatalogueItem(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    name_zh: str
    name_en: str
    frequency: Frequency
    #: what to look at, shown on the patrol page under the item (zh, en)
    hint_zh: str = ""
    hint_en: str = ""


DEFAULT_CATALOGUE: dict[str, CatalogueItem] = {
    item.key: item
    for item in (
        CatalogueItem(key="extinguisher", name_zh="灭火器", name_en="Fire extinguisher",
                      frequency=Frequency.MONTHLY,  # GB 50444 §5.2.1 monthly check
                      hint_zh="压力指针在绿区、铅封完好、在有效期内、取用无遮挡",
                      hint_en="gauge in the green, seal intact, in date, reachable"),
        CatalogueItem(key="hydrant", name_zh="室内消火栓", name_en="Indoor hydrant",
                      frequency=Frequency.MONTHLY,
                      hint_zh="箱门开启灵活、水带水枪齐全、无遮挡", hint_en="door opens, hose and nozzle present, unobstructed"),
        CatalogueItem(key="sprinkler_valve", name_zh="喷淋系统阀门", name_en="Sprinkler valve",
                      frequency=Frequency.MONTHLY,
                      hint_zh="阀门处于常开状态并锁定、压力表正常", hint_en="valve open and locked, gauge normal"),
        CatalogueItem(key="fire_door", name_zh="防火门", name_en="Fire door",
                      frequency=Frequency.DAILY,
                      hint_zh="常闭门处于关闭状态、闭门器完好、无堵塞", hint_en="closed if normally closed, closer works, not blocked"),
        CatalogueItem(key="emergency_lighting", name_zh="应急照明和疏散指示", name_en="Emergency lighting and exit signs",
                      frequency=Frequency.DAILY,
                      hint_zh="灯具完好、指示方向正确、主电指示正常", hint_en="lamps intact, arrows correct, mains indicator on"),
        CatalogueItem(key="alarm_panel", name_zh="火灾报警控制器", name_en="Fire alarm control panel",
                      frequency=Frequency.DAILY,
                      hint_zh="主备电正常、无故障和屏蔽、自检正常", hint_en="mains and battery normal, no faults or disablements, self-test passes"),
        CatalogueItem(key="pump", name_zh="消防水泵", name_en="Fire pump",
                      frequency=Frequency.MONTHLY,
                      hint_zh="处于自动状态、启动运转正常、压力正常", hint_en="in automatic, starts and runs, pressure normal"),
        CatalogueItem(key="electrical_box", name_zh="配电箱", name_en="Electrical distribution box",
                      frequency=Frequency.DAILY,
                      hint_zh="无过热、无异味、箱门关闭、周围无可燃物", hint_en="no overheating or smell, door closed, no combustibles around"),
        CatalogueItem(key="evacuation_route", name_zh="疏散通道和安全出口", name_en="Escape route and exit",
                      frequency=Frequency.DAILY,
                      hint_zh="畅通无堵塞、未锁闭", hint_en="clear and not locked"),
    )
}
