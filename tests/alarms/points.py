"""Points used across the alarm tests (a small two-room building)."""

from firebus.sdk import PointInfo


def rc(point_id="rc1", device_id="em1", **overrides):
    return PointInfo(
        point_id=point_id, device_id=device_id, key="residual_current", point_class="residual_current",
        unit="mA", name="L1 leakage", device_name="EM100 #1", location_id="room-101", location_name="101",
        unit_id="unit-a", overrides=overrides, writable=False,
    )


def gas(point_id="gas1", device_id="gd1", **overrides):
    return PointInfo(
        point_id=point_id, device_id=device_id, key="gas", point_class="gas_lel", unit="%LEL",
        name="kitchen gas", device_name="GS101", location_id="kitchen", unit_id="unit-a", overrides=overrides,
    )


def smoke(point_id, location_id, device_id=None, point_class="smoke", **overrides):
    return PointInfo(
        point_id=point_id, device_id=device_id or f"dev-{point_id}", key="smoke", point_class=point_class,
        name=f"detector {point_id}", location_id=location_id, location_name=location_id, unit_id="unit-a",
        overrides=overrides,
    )
