"""Pure logic of the water plugin: tank geometry, the misuse rule, option validation, shipped data."""

from __future__ import annotations

import math

import msgspec
import pytest

import firebus.plugins.water as water
from firebus.plugins.water.rules import HydrantMisuseRule, WaterStatusRule, WaterThresholdRule
from firebus.plugins.water.tank import TankOptions, tank_state, volume_below
from firebus.sdk import PointInfo
from firebus.sdk.rule import ValueInput


def tank(**kw) -> TankOptions:
    return msgspec.convert({"unit": 1, **kw}, TankOptions)


def test_box_and_cylinders() -> None:
    box = tank(length_m=10, width_m=5, full_level_m=3, dead_level_m=0.5, rated_flow_l_s=30)
    s = tank_state(box, 3.0)
    assert (s.usable_m3, s.percent) == (125.0, 100.0)
    assert s.endurance_min == pytest.approx(125_000 / 30 / 60, abs=0.1)
    assert tank_state(box, 0.3).usable_m3 == 0.0  # below the suction: nothing usable
    vert = tank(shape="vertical_cylinder", diameter_m=2, full_level_m=4)
    assert volume_below(vert, 1.0) == pytest.approx(math.pi)
    horiz = tank(shape="horizontal_cylinder", diameter_m=2, length_m=3, full_level_m=2)
    assert volume_below(horiz, 1.0) == pytest.approx(math.pi * 3 / 2)  # half full
    assert volume_below(horiz, 2.0) == pytest.approx(math.pi * 3)
    assert tank_state(tank(area_m2=10, full_level_m=2, sensor_offset_m=0.1), 0.9).level_m == 1.0


@pytest.mark.parametrize("kw, msg", [
    ({"area_m2": 10, "full_level_m": 1, "dead_level_m": 2}, "dead_level_m"),
    ({"full_level_m": 2}, "area_m2"),
    ({"shape": "vertical_cylinder", "full_level_m": 2}, "diameter_m"),
    ({"shape": "horizontal_cylinder", "diameter_m": 2, "full_level_m": 1}, "length_m"),
    ({"shape": "horizontal_cylinder", "diameter_m": 2, "length_m": 3, "full_level_m": 3}, "exceed"),
    ({"area_m2": 10, "full_level_m": 2, "rated_flow_l_s": 0}, "rated_flow"),
])
def test_bad_tank_options_say_what_is_wrong(kw, msg) -> None:
    with pytest.raises(msgspec.ValidationError, match=msg):
        tank(**kw)


def pt(pid: str, cls: str, unit: str | None = "u1", key: str | None = None) -> PointInfo:
    return PointInfo(point_id=pid, device_id=f"d-{pid}", key=key or cls, point_class=cls, unit_id=unit,
                     device_name=f"dev {pid}")


def run(rule, point, value, ts, state):
    opts = rule.options_for(point)
    ev = rule.evaluate(point, opts, ValueInput(ts=ts, key=point.key, value=value), state)
    return ev


def test_misuse_needs_no_fire_in_the_unit_within_the_grace_period() -> None:
    rule = HydrantMisuseRule()
    hyd, smoke = pt("h", "hydrant_open"), pt("s", "smoke")
    assert rule.applies_to(hyd) and rule.applies_to(smoke) and not rule.applies_to(pt("x", "pressure"))
    assert rule.scope_of(hyd) == rule.scope_of(smoke) == "unit:u1"
    assert rule.scope_of(pt("y", "hydrant_open", unit=None)) == "unit:site"
    state: dict = {}
    ev = run(rule, hyd, True, 0, state)
    assert [c.active for c in ev.conditions] == [True]
    ev = run(rule, hyd, False, 10, ev.state)
    assert [c.active for c in ev.conditions] == [False]
    ev = run(rule, smoke, True, 20, ev.state)
    ev = run(rule, smoke, False, 30, ev.state)  # the detector restored at t=30
    ev2 = run(rule, hyd, True, 30 + 3600, ev.state)  # within the hour: firefighting, overhaul
    assert ev2.conditions == []
    ev3 = run(rule, hyd, True, 30 + 3601, ev.state)
    assert [c.active for c in ev3.conditions] == [True]


def test_rule_defaults_cover_the_plugin_point_classes() -> None:
    assert WaterThresholdRule().applies_to(pt("l", "water_level_percent"))
    assert WaterThresholdRule().applies_to(pt("p", "hydrant_pressure"))
    assert not WaterThresholdRule().applies_to(pt("p", "pressure"))  # the generic threshold owns it
    status = WaterStatusRule()
    ev = status.evaluate(pt("m", "pump_mode"), status.options_for(pt("m", "pump_mode")),
                         ValueInput(ts=0, key="pump_mode", value="off"), {})
    assert [(c.group, c.active) for c in ev.conditions] == [("not_auto", True)]


def test_pump_profile_matches_the_core_simulator_layout() -> None:
    """Demo units 3 and 4 of `firebus sim modbus` (transmitter, pump controller): our maps read them."""
    from firebus.sdk.modbus import load_profile_resource

    ours = load_profile_resource("firebus.plugins.water.profiles", "pump_controller.yaml")
    core_sim = load_profile_resource("firebus.core.sim.profiles", "pump_controller.yaml")
    for p in core_sim.points:
        q = ours.point(p.point_key)
        assert (q.table, q.address, q.dtype) == (p.table, p.address, p.dtype), p.point_key
    ours = load_profile_resource("firebus.plugins.water.profiles", "pressure_transmitter.yaml")
    core_sim = load_profile_resource("firebus.core.sim.profiles", "water_transmitter.yaml")
    for key in ("pressure_decimals", "pressure"):
        p, q = core_sim.point(key), ours.point(key)
        assert (q.table, q.address, q.dtype, q.decimals_from) == (p.table, p.address, p.dtype, p.decimals_from)
    assert {d.type_key for d in water.DRIVERS} == {"water.level", "water.pressure", "water.pump", "water.hydrant"}
