"""Channel conventions for profile-driven detectors (electrical-fire, gas, …).

A multi-channel detector (one residual current and four cable temperatures; a
gas controller with eight heads) reports, per channel, a measurement plus
flags and settings *about* that measurement.  The register map (a
``firebus.sdk.modbus`` profile) stays plain data; these key conventions tie the
points of one channel together so a vendor adds a model without code:

==========================  ==========================================================
``<channel>``               the measurement (``residual_current``, ``temperature_2``)
``<channel>_wiring_fault``  sensor wiring fault: the measurement becomes a *fault*
``<channel>_sensor_fault``  sensor fault flag: the same
``<channel>_status``        an enum status; a fault state (``fault``, ``sensor_fault``,
                            ``wiring_fault``, ``open_circuit``) makes the measurement a fault
``<channel>_alarm``         the detector's own alarm flag for the channel
``<channel>_setting``       the detector's alarm setting (writable, read back)
``<channel>_at_alarm``      the value the detector latched when it alarmed
==========================  ==========================================================

``circuits`` in a device's options names what each channel watches ("WL3
lighting, N line"); every point of the channel carries it in its name, so an
alarm says which circuit on which board (准确定位故障点).

Rules for such points usually belong to one plugin's devices only: ``ForDrivers``
restricts a rule to drivers whose type key starts with given prefixes, so two
plugins can both use a core point class (``valve_state``) without each other's
defaults.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Mapping

import msgspec

from .core_api import PointInfo
from .driver import PointSpec, Reading
from .modbus import ModbusDeviceOptions, ModbusProfile, ModbusProfileDriver, ProfileError, load_profile, parse_profile
from .rule import AlarmRule, Condition, Evaluation, RuleInput, ValueInput
from .vocab import AlarmCategory, Severity

#: longest first, so ``temperature_1_wiring_fault`` is not read as ``…_wiring`` + ``_fault``
CHANNEL_SUFFIXES = ("_wiring_fault", "_sensor_fault", "_at_alarm", "_setting", "_status", "_alarm")
WIRING_FAULT = "wiring_fault"
#: flag suffix -> the fault reason the channel's reading gets while the flag is set
FAULT_FLAGS = {"_wiring_fault": WIRING_FAULT, "_sensor_fault": "sensor_fault"}
#: states of a ``<channel>_status`` enum that mean "no valid measurement"
FAULT_STATES = frozenset({"fault", "sensor_fault", "wiring_fault", "open_circuit"})


def channel_of(key: str, keys: set[str] | frozenset[str]) -> str:
    """The measurement a point belongs to (``temperature_2_alarm`` → ``temperature_2``), else itself."""
    for suffix in CHANNEL_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in keys:
            return key[: -len(suffix)]
    return key


# -- profiles shipped as package data ----------------------------------------------------------


def shipped_profiles(package: str) -> list[str]:
    """Names of the ``*.yaml``/``*.toml`` profiles in ``package`` (without extension)."""
    names = []
    for entry in resources.files(package).iterdir():
        for ext in (".yaml", ".yml", ".toml"):
            if entry.name.endswith(ext) and not entry.name.endswith(".scenario.yaml"):
                names.append(entry.name[: -len(ext)])
    return sorted(names)


@functools.lru_cache(maxsize=None)
def _shipped(package: str, name: str) -> ModbusProfile:
    for ext in (".yaml", ".yml", ".toml"):
        ref = resources.files(package).joinpath(name + ext)
        if ref.is_file():
            return parse_profile(ref.read_text(encoding="utf-8"), name + ext, f"{package}/{name}{ext}")
    raise KeyError(name)


def resolve_profile(package: str, name_or_path: str) -> ModbusProfile:
    """A profile shipped in ``package`` by name (``acrel_arcm``), or a profile file path."""
    if "/" not in name_or_path and "\\" not in name_or_path and not name_or_path.endswith((".yaml", ".yml", ".toml")):
        try:
            return _shipped(package, name_or_path)
        except KeyError:
            raise ProfileError(
                f"unknown profile {name_or_path!r} (shipped: {', '.join(shipped_profiles(package))}; "
                "or give the path of a profile file)"
            ) from None
    path = Path(name_or_path)
    if not path.is_file():
        raise ProfileError(f"profile file {name_or_path!r} not found")
    return load_profile(path)


def profile_path(package: str, name: str) -> Path:
    """Filesystem path of a shipped profile (for simulators and tools that take a path)."""
    for ext in (".yaml", ".yml", ".toml"):
        ref = resources.files(package).joinpath(name + ext)
        if ref.is_file():
            return Path(str(ref))
    raise KeyError(name)


# -- driver ------------------------------------------------------------------------------------


class ChannelDeviceOptions(ModbusDeviceOptions, forbid_unknown_fields=True, omit_defaults=True):
    """Options of a channel detector: Modbus unit, profile (shipped name or path), circuit names.

    Subclasses set ``profile_package`` (where shipped profiles live) and the default
    ``profile``.  The profile is loaded while the site file is validated, so a typo
    in a name or a broken vendor file is reported at file:line before start-up.
    """

    circuits: dict[str, str] = {}  # channel (or any point key) -> what it watches
    profile_package: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        profile = self.load_profile()
        keys = {p.point_key for p in profile.points}
        unknown = sorted(set(self.circuits) - keys)
        if unknown:
            raise ValueError(f"circuits name points not in profile {profile.name!r}: {unknown}")

    def load_profile(self) -> ModbusProfile:
        if not self.profile:
            raise ValueError("profile must name a shipped profile or a profile file")
        return resolve_profile(self.profile_package, self.profile)


class ChannelProfileDriver(ModbusProfileDriver):
    """``ModbusProfileDriver`` plus the channel conventions above.

    * a set ``<channel>_wiring_fault`` flag turns that channel's reading into a fault
      (``Reading.fault = "wiring_fault"``): a broken probe is never a temperature;
    * points are named with their channel's circuit.
    """

    Options: ClassVar[type[msgspec.Struct]] = ChannelDeviceOptions

    def __init__(self, options: msgspec.Struct, ctx: Any) -> None:
        opts: ChannelDeviceOptions = options  # type: ignore[assignment]
        self.profile = opts.load_profile()  # type: ignore[misc]  # this device's own map overrides the class's
        base = ModbusDeviceOptions(unit=opts.unit, name=opts.name, poll_interval=opts.poll_interval)
        super().__init__(base, ctx)
        self.options = options
        self.keys = frozenset(p.point_key for p in self.device_profile.points)
        self.channels = {k: channel_of(k, self.keys) for k in self.keys}

    def circuit(self, key: str) -> str:
        circuits: Mapping[str, str] = self.options.circuits  # type: ignore[attr-defined]
        return circuits.get(key) or circuits.get(self.channels.get(key, key), "")

    def points(self) -> list[PointSpec]:
        out = []
        for spec in self.device_profile.point_specs():
            circuit = self.circuit(spec.key)
            if circuit:
                spec = msgspec.structs.replace(spec, name=f"{spec.name or spec.key} · {circuit}")
            out.append(spec)
        return out

    async def poll(self) -> list[Reading]:
        return link_wiring_faults(await super().poll(), self.keys)


def link_wiring_faults(readings: list[Reading], keys: frozenset[str] | set[str]) -> list[Reading]:
    """Replace the reading of every channel a fault flag or fault state covers by a fault."""
    broken: dict[str, str] = {}
    for r in readings:
        for suffix, reason in FAULT_FLAGS.items():
            if r.point_key.endswith(suffix) and r.value is True:
                broken.setdefault(channel_of(r.point_key, keys), reason)
        if r.point_key.endswith("_status") and isinstance(r.value, str) and r.value in FAULT_STATES:
            broken.setdefault(channel_of(r.point_key, keys), r.value)
    if not broken:
        return readings
    return [
        Reading(point_key=r.point_key, value=None, ts=r.ts, fault=broken[r.point_key])
        if r.point_key in broken and r.fault is None
        else r
        for r in readings
    ]


# -- rules -------------------------------------------------------------------------------------


class ForDrivers:
    """Mixin for ``AlarmRule``: apply only to points of drivers whose type key starts with ``drivers``."""

    drivers: ClassVar[tuple[str, ...]] = ()

    def applies_to(self, point: PointInfo) -> bool:
        if self.drivers and not point.driver.startswith(self.drivers):
            return False
        return super().applies_to(point)  # type: ignore[misc]


def where(point: PointInfo) -> str:
    """"Switch room B1 / AL1 board: T2 · WL3 N line" — place, device, point."""
    head = " / ".join(x for x in (point.location_name, point.device_name or point.device_id) if x)
    return f"{head}: {point.name or point.key}" if head else point.name or point.key


_ON = ["true", "1", "on", "yes", "alarm", "active"]


class FlagOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    category: AlarmCategory
    severity: Severity
    message: str
    on: list[str] = msgspec.field(default_factory=lambda: list(_ON))  # values meaning "set" (lower case)


class FlagRule(ForDrivers, AlarmRule):
    """A flag the device itself raised (its own alarm, a wiring fault): one alarm while set.

    Unlike ``DeviceStatusRule`` the message names the place, the device and the
    flag's point (which carries the circuit), so the alarm locates the fault.
    """

    Options = FlagOptions

    def evaluate(self, point: PointInfo, opts: FlagOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key or inp.fault is not None:
            return Evaluation(state=dict(state))  # an unreadable flag is not "all clear"
        value = inp.value
        text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip().lower()
        on = text in {v.lower() for v in opts.on}
        return Evaluation(
            state={"on": on},
            conditions=[
                Condition(
                    category=opts.category,
                    severity=opts.severity,
                    active=on,
                    value=value,
                    message=f"{where(point)}: {opts.message}" if on else "",
                )
            ],
        )


__all__ = [
    "CHANNEL_SUFFIXES",
    "FAULT_FLAGS",
    "FAULT_STATES",
    "WIRING_FAULT",
    "ChannelDeviceOptions",
    "ChannelProfileDriver",
    "FlagOptions",
    "FlagRule",
    "ForDrivers",
    "channel_of",
    "link_wiring_faults",
    "profile_path",
    "resolve_profile",
    "shipped_profiles",
    "where",
]
