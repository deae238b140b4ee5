"""Tank geometry: a level in metres → usable volume, percent full, and how long it lasts.

Pure functions, so the arithmetic is tested without a device.  ``full_level_m`` is
the normal (design) water level, 100 %; the effective volume starts at
``dead_level_m`` (water below the pump suction / the anti-vortex plate cannot be
pumped, GB 50974 4.3.x "有效容积").  Endurance is the usable volume divided by the
rated fire flow: the figure an inspector compares with the design fire duration.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from firebus.sdk.modbus import ModbusDeviceOptions

Shape = Literal["box", "vertical_cylinder", "horizontal_cylinder"]


class TankOptions(ModbusDeviceOptions, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A level transmitter device: Modbus unit plus the tank it sits in."""

    shape: Shape = "box"
    #: box: floor area (or length × width); vertical cylinder: diameter
    area_m2: float | None = None
    length_m: float | None = None
    width_m: float | None = None
    diameter_m: float | None = None
    full_level_m: float  # normal water level = 100 %
    dead_level_m: float = 0.0  # water below this is not usable
    #: metres to add to the transmitter's reading (sensor mounted above the floor)
    sensor_offset_m: float = 0.0
    #: design fire flow the stored water must feed (L/s), for the endurance estimate
    rated_flow_l_s: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.full_level_m <= self.dead_level_m or self.dead_level_m < 0:
            raise ValueError("need 0 ≤ dead_level_m < full_level_m")
        if self.rated_flow_l_s is not None and self.rated_flow_l_s <= 0:
            raise ValueError("rated_flow_l_s must be > 0")
        if self.shape == "box":
            if self.area_m2 is None and (self.length_m is None or self.width_m is None):
                raise ValueError("a box tank needs area_m2, or length_m and width_m")
        elif self.diameter_m is None or self.diameter_m <= 0:
            raise ValueError(f"a {self.shape.replace('_', ' ')} tank needs diameter_m")
        if self.shape == "horizontal_cylinder":
            if self.length_m is None or self.length_m <= 0:
                raise ValueError("a horizontal cylinder tank needs length_m")
            if self.full_level_m > self.diameter_m:  # type: ignore[operator]
                raise ValueError("full_level_m cannot exceed diameter_m of a horizontal cylinder")


def volume_below(opts: TankOptions, level: float) -> float:
    """Water volume (m³) from the tank floor up to ``level`` metres."""
    h = max(0.0, level)
    if opts.shape == "box":
        area = opts.area_m2 if opts.area_m2 is not None else float(opts.length_m) * float(opts.width_m)  # type: ignore[arg-type]
        return area * h
    d = float(opts.diameter_m)  # type: ignore[arg-type]
    r = d / 2
    if opts.shape == "vertical_cylinder":
        return math.pi * r * r * h
    # Horizontal cylinder: circular segment area × length.
    h = min(h, d)
    segment = r * r * math.acos((r - h) / r) - (r - h) * math.sqrt(max(0.0, 2 * r * h - h * h))
    return segment * float(opts.length_m)  # type: ignore[arg-type]


class TankState(msgspec.Struct, frozen=True):
    level_m: float
    usable_m3: float
    percent: float
    endurance_min: float | None


def tank_state(opts: TankOptions, reading_m: float) -> TankState:
    """Everything the panel shows next to the level."""
    level = reading_m + opts.sensor_offset_m
    dead = volume_below(opts, opts.dead_level_m)
    usable = max(0.0, volume_below(opts, level) - dead)
    full = volume_below(opts, opts.full_level_m) - dead
    percent = 100.0 * usable / full if full > 0 else 0.0
    endurance = None
    if opts.rated_flow_l_s:
        endurance = usable * 1000.0 / opts.rated_flow_l_s / 60.0
    return TankState(
        level_m=round(level, 3),
        usable_m3=round(usable, 2),
        percent=round(percent, 1),
        endurance_min=round(endurance, 1) if endurance is not None else None,
    )
