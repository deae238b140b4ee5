"""Checklist item 8: firebus point classes and plugins ↔ GB/T 26875.3 system, component and analog
types, with the documented user-defined code for residual current in mA."""

from __future__ import annotations

import pytest

from firebus.plugins.gb26875 import mapping, tables
from firebus.plugins.gb26875.model import Adu, ComponentAnalog, TimeTag
from firebus.plugins.gb26875.codec import decode, encode
from firebus.plugins.gb26875.model import Frame, Header, address


@pytest.mark.parametrize("codes, family", [
    ((16, 17, 18), "leakage"), ((10, 11, 12, 13, 74), "gas"), ((40, 41, 42, 43, 44), "smoke"), ((78,), "video"),
    ((91, 92, 95, 96, 97, 98, 99), "water"),
])
def test_component_types_to_plugins(codes: tuple[int, ...], family: str) -> None:
    assert {mapping.plugin_for_component(c) for c in codes} == {family}


def test_unmapped_component_types() -> None:
    assert mapping.plugin_for_component(1) is None and mapping.plugin_for_component(200) is None


@pytest.mark.parametrize("point_class, plugin, system, component", [
    ("residual_current", "leakage", 1, 17), ("temperature", "leakage", 1, 18), ("smoke", "smoke", 1, 40),
    ("gas_lel", "gas", 1, 10), ("flame", "video", 1, 78), ("smoke", "video", 1, 78),
    ("fault", "video", 1, 78), ("water_level", "water", 11, 92),
    ("pump_state", "water", 11, 91), ("valve_state", "gas", 1, 106), ("battery", "smoke", 1, 40),
    ("whatever", "acme", 0, 0),
])
def test_point_targets(point_class: str, plugin: str, system: int, component: int) -> None:
    t = mapping.target_for(point_class, plugin)
    assert (t.system_type, t.component_type) == (system, component)
    # every target round-trips into the outbound family it came from (where there is one)
    family = mapping.plugin_for_component(component)
    assert family in (None, plugin)


@pytest.mark.parametrize("point_class, unit, value, analog_type, raw", [
    ("residual_current", "mA", 312, tables.ANALOG_RESIDUAL_CURRENT_MA, 312),
    ("temperature", "°C", 80.0, 3, 800),
    ("gas_lel", "%LEL", 12.5, 6, 125),
    ("pressure", "MPa", 0.3525, 5, 3525),
    ("water_level", "m", 3.6, 2, 360),
])
def test_analog_defaults(point_class: str, unit: str, value: float, analog_type: int, raw: int) -> None:
    m = mapping.analog_for(point_class, unit)
    assert m is not None and m.analog_type == analog_type and m.to_raw(value) == raw
    spec = tables.analog_spec(analog_type)
    assert spec is not None and abs(raw * spec.resolution - (value * 1000 if unit == "MPa" else value)) < 1e-6
    # the receiving side turns it back into the same point class and value
    back = mapping.point_for_analog(analog_type, raw)
    assert back is not None and back[0] == point_class and back[1] == unit and abs(back[2] - value) < 1e-9


def test_residual_current_fallback_and_clamping() -> None:
    assert mapping.RESIDUAL_CURRENT_FALLBACK.analog_type == 9
    assert mapping.RESIDUAL_CURRENT_FALLBACK.to_raw(300) == 3  # 0.3 A: too coarse, hence code 128
    assert mapping.analog_for("temperature", "°C").to_raw(10_000) == 0x7FFF


def test_component_address_layout() -> None:
    addr = mapping.component_address(3, 2)
    assert addr.to_bytes(4, "little") == bytes.fromhex("03000200")
    assert mapping.component_address(1, 1).to_bytes(4, "little") == bytes.fromhex("01000100")  # like M1
    with pytest.raises(ValueError):
        mapping.component_address(70000)


def test_a_mapped_reading_is_a_valid_frame() -> None:
    m = mapping.analog_for("residual_current", "mA")
    t = mapping.target_for("residual_current", "leakage")
    obj = ComponentAnalog(system_type=t.system_type, system_address=1, component_type=t.component_type,
                          component_address=mapping.component_address(7, 1), analog_type=m.analog_type,
                          raw=m.to_raw(512), time=TimeTag.parse("2026-05-01 08:00:00"))
    data = encode(Frame(Header(serial=1, time=TimeTag.parse("2026-05-01 08:00:01"), source=address(889),
                               destination=address(88888), command=2), Adu(3, (obj,))))
    assert decode(data).frame.adu.objects[0] == obj
