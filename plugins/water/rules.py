"""Alarm rules of the water plugin, with the defaults' sources.

Network pressure (class ``pressure``) needs nothing new: the generic ``threshold``
rule already alarms below 0.10 MPa and above 1.0 MPa (GB 50974-2014 5.2.2, vendor
over-pressure practice), and ``demand_feedback`` raises "fire pump failed to start"
when a start signal gets no running feedback in 120 s (GB 50974-2014 11.0.3).
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from firebus.sdk import AlarmCategory, PointInfo, Severity
from firebus.sdk.rule import AlarmRule, Condition, Evaluation, RuleInput, ValueInput, truthy
from firebus.sdk.rules import DeviceStatusRule, ThresholdRule
from firebus.sdk.rules.reported import ReportedHeartbeatRule


def _level(name: str, value: float, category: AlarmCategory, severity: Severity, direction: str = "high") -> dict:
    return {"name": name, "value": value, "category": category, "severity": severity, "direction": direction}


class WaterThresholdRule(ThresholdRule):
    """Tank level, hydrant pressure and hydrant tilt thresholds."""

    type_key = "water_threshold"
    defaults = {
        # GB 50974-2014 4.3.9 / 5.2.6: pools and roof tanks show their level in the control
        # room with highest and lowest alarm levels; the standard leaves the levels to the
        # design.  Defaults (design choice, override per tank): low when less than 90 % of
        # the usable fire reserve is there, high when the water stands 5 % above the
        # normal level (float valve failed, overflow).
        "water_level_percent": {
            "levels": [
                _level("low", 90, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY, "low"),
                _level("high", 105, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY),
            ],
            "hysteresis": 1,
        },
        # GB 50974-2014 7.2.8: municipal hydrant working pressure ≥ 0.14 MPa.  1.0 MPa
        # over-pressure is IoT-hydrant vendor practice (fire-domain.md §4), not a norm.
        "hydrant_pressure": {
            "levels": [
                _level("low", 0.14, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY, "low"),
                _level("high", 1.0, AlarmCategory.SUPERVISORY, Severity.SUPERVISORY),
            ],
            "hysteresis": 0.01,
        },
        # A hydrant leaning 15° has been hit (vendor practice [UNVERIFIED]): it may be
        # broken and spilling, so it is a fault at alarm severity.
        "tilt": {"levels": [_level("tilted", 15, AlarmCategory.FAULT, Severity.ALARM)], "hysteresis": 2},
    }


def _flag(name: str, category: AlarmCategory, severity: Severity, message: str, **kw: Any) -> dict:
    return {"name": name, "category": category, "severity": severity, "message": message, **kw}


class WaterStatusRule(DeviceStatusRule):
    type_key = "water_status"
    defaults = {
        # GB 50974-2014 11.0.x and the control-cabinet rules: fire pumps stand in automatic
        # mode; manual or off means a fire start signal would not start them (监管/supervisory).
        "pump_mode": {"flags": [_flag("not_auto", AlarmCategory.SUPERVISORY, Severity.SUPERVISORY,
                                      "fire pump not in automatic mode", values=["manual", "off"])]},
        # A fire pump without power cannot start: a fault at alarm severity.
        "power_loss": {"on_true": _flag("power_loss", AlarmCategory.FAULT, Severity.ALARM, "fire pump power supply lost")},
        # Impact sensor of a hydrant monitor: someone or something hit it.
        "knock": {"on_true": _flag("knock", AlarmCategory.SUPERVISORY, Severity.SUPERVISORY, "hydrant hit (impact)")},
    }


class WaterOfflineRule(ReportedHeartbeatRule):
    """One offline alarm per water device.

    Hydrant monitors: no message for one reported heartbeat period plus half a period.
    Modbus devices (tank, pressure, pump controller): the poller's unreachable/reachable
    verdict, so a fire-pump cabinet that stops answering is on the board.
    """

    type_key = "water_offline"
    drivers = ("water.",)


#: point classes whose truthy value means "there is a fire alarm here"
FIRE_CLASSES = ("smoke", "heat", "flame", "manual_call_point", "fire_alarm")


class MisuseOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Design choice, not a norm: firefighting (and overhaul after it) goes on after the
    # detectors restore, so a hydrant opened within an hour of a fire alarm is not misuse.
    grace: float = 3600.0
    severity: Severity = Severity.SUPERVISORY


class HydrantMisuseRule(AlarmRule):
    """A hydrant opened while no fire alarm is active in its unit (联网单位) is misuse.

    Water theft from fire hydrants (street cleaning, building sites) empties the
    network a fire will need.  The rule keeps one state per unit: every fire
    detector point of the unit (smoke, heat, flame, manual call point, panel fire
    output) says whether there is a fire, and every hydrant ``hydrant_open`` point
    is checked when it opens.  The misuse alarm clears when the hydrant closes.
    Devices outside any unit share one site-wide state.
    """

    type_key = "hydrant_misuse"
    Options = MisuseOptions
    defaults = {cls: {} for cls in (*FIRE_CLASSES, "hydrant_open")}

    def scope_of(self, point: PointInfo) -> str:
        return f"unit:{point.unit_id or 'site'}"

    def evaluate(self, point: PointInfo, opts: MisuseOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key or inp.fault is not None:
            return Evaluation(state=dict(state))
        fires: dict[str, bool] = dict(state.get("fires", {}))
        misused: dict[str, bool] = dict(state.get("misused", {}))
        opened: dict[str, bool] = dict(state.get("open", {}))
        last_fire = state.get("last_fire")
        on = truthy(inp.value)
        conditions: list[Condition] = []
        if point.point_class in FIRE_CLASSES:
            if on or fires.get(point.point_id):
                last_fire = inp.ts  # while on, and the moment it restored
            fires[point.point_id] = on
            fires = {pid: v for pid, v in fires.items() if v}
        else:
            was_open = opened.get(point.point_id, False)
            opened[point.point_id] = on
            if on and not was_open:
                fire = any(fires.values()) or (last_fire is not None and inp.ts - last_fire <= opts.grace)
                if not fire:
                    misused[point.point_id] = True
                    where = point.location_name or point.device_name or point.device_id
                    conditions.append(Condition(
                        category=AlarmCategory.SUPERVISORY, severity=opts.severity, active=True, value=True,
                        group="misuse", message=f"{point.device_name or point.device_id} at {where}: "
                        "hydrant opened with no fire alarm (misuse or water theft?)",
                        message_zh=f"{where}：{point.device_name or point.device_id} 在无火警时被打开（误用或盗水？）",
                    ))
            elif not on and misused.pop(point.point_id, False):
                conditions.append(Condition(category=AlarmCategory.SUPERVISORY, severity=opts.severity,
                                            active=False, value=False, group="misuse"))
            opened = {pid: v for pid, v in opened.items() if v}
        return Evaluation(
            state={"fires": fires, "misused": misused, "open": opened, "last_fire": last_fire},
            conditions=conditions,
        )


RULES: list[type] = [WaterThresholdRule, WaterStatusRule, WaterOfflineRule, HydrantMisuseRule]
