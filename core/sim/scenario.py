"""Scripted point behaviours for simulators, reproducible from a seed.

A behaviour maps simulated time (seconds since the simulator started) to an
engineering value.  Noise is drawn from a generator seeded by
``(seed, unit, point, tick)``, so the same seed gives the same value at the same
simulated time whatever order or rate the values are read in.

Scenario file (YAML)::

    seed: 42
    devices:
      - unit: 1
        profile: rcd_temp4            # built-in name or a path to a profile file
        points:
          residual_current: {kind: drift, start: 120, rate: 2.5, noise: 3}
          temperature_1:    {kind: jump, base: 31, to: 96, at: 40}
          temperature_2:    {kind: fault, base: 30, at: 20}   # the point's first sentinel
        silent: [{start: 60, end: 90}]  # stops answering (timeouts) in this window
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import msgspec


class Behaviour(msgspec.Struct, tag_field="kind", forbid_unknown_fields=True):
    noise: float = 0.0  # ± uniform noise added to numeric values

    def base_value(self, t: float) -> Any:
        raise NotImplementedError


class Steady(Behaviour, tag="steady"):
    value: Any = 0

    def base_value(self, t: float) -> Any:
        return self.value


class Drift(Behaviour, tag="drift"):
    start: float = 0.0
    rate: float = 0.0  # units per second
    min: float | None = None
    max: float | None = None

    def base_value(self, t: float) -> Any:
        v = self.start + self.rate * t
        if self.min is not None:
            v = max(self.min, v)
        if self.max is not None:
            v = min(self.max, v)
        return v


class Jump(Behaviour, tag="jump"):
    base: Any = 0
    to: Any = 0
    at: float = 0.0
    until: float | None = None  # jump back to ``base`` at this time

    def base_value(self, t: float) -> Any:
        if t >= self.at and (self.until is None or t < self.until):
            return self.to
        return self.base


class Raw(msgspec.Struct, frozen=True):
    """A raw register value that bypasses scaling (sentinels)."""

    value: int


class Fault(Behaviour, tag="fault"):
    base: Any = 0
    at: float = 0.0
    until: float | None = None
    sentinel: int | None = None  # raw value; default: the point's first sentinel

    def base_value(self, t: float) -> Any:
        if t >= self.at and (self.until is None or t < self.until):
            return Raw(self.sentinel) if self.sentinel is not None else Raw(-1)  # -1: resolved by the device
        return self.base


class Follow(Behaviour, tag="follow"):
    """Mirror another (written) point after ``delay`` s: valve feedback, pump running."""

    source: str = ""
    delay: float = 0.0
    initial: Any = False
    invert: bool = False

    def base_value(self, t: float) -> Any:  # resolved by the device (needs its write log)
        return self.initial


AnyBehaviour = Steady | Drift | Jump | Fault | Follow


class Window(msgspec.Struct, forbid_unknown_fields=True):
    start: float = 0.0
    end: float | None = None

    def contains(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)


class DeviceScenario(msgspec.Struct, forbid_unknown_fields=True):
    unit: int
    profile: str
    points: dict[str, AnyBehaviour] = msgspec.field(default_factory=dict)
    silent: list[Window] = msgspec.field(default_factory=list)


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    seed: int = 0
    devices: list[DeviceScenario] = msgspec.field(default_factory=list)


def noise(seed: int, unit: int, key: str, tick: int, amplitude: float) -> float:
    """Deterministic uniform noise in [-amplitude, amplitude] (stable across processes)."""
    if amplitude <= 0:
        return 0.0
    rng = random.Random(zlib.crc32(f"{seed}:{unit}:{key}:{tick}".encode()))
    return rng.uniform(-amplitude, amplitude)


def load_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    try:
        return msgspec.convert(data, Scenario, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{source}: {exc}") from None
