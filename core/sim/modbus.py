"""A real Modbus TCP or RTU server (pymodbus) that serves profiles with scripted values.

Every register a client reads is computed from the device's profile and its
scenario at that instant, so a test, the demo or a vendor sees exactly the
bytes a field device would send: scaling, word order, status bits, sentinels.
Writes land in the device's registers (writable points only, like a real
device) and ``follow`` behaviours make feedback points track them (valve
closed after the close coil, pump running after the start coil).

A silent device does not answer at all (the client times out), like a dead
unit behind a gateway; ``stop()`` makes the whole gateway vanish.

Every request is recorded in ``requests`` so tests can prove batching
(one FC03 for a contiguous block, not one per point).

On a serial port (``serial_port=``, e.g. ``PacedSerialLine.device_port``) the
server speaks RTU like the units on an RS-485 line; ``latency`` is then the
unit's turnaround (time from the end of a request to the start of its answer,
on top of t3.5).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from firebus.sdk.modbus import (
    DType,
    ModbusProfile,
    PointMap,
    Table,
    decode_point,
    encode_value,
    load_profile,
    load_profile_resource,
    raw_to_words,
)

from .scenario import AnyBehaviour, Behaviour, DeviceScenario, Fault, Follow, Raw, Scenario, Steady, Window, noise

PROFILE_PACKAGE = "firebus.core.sim.profiles"

_FC_TABLE = {1: Table.COIL, 5: Table.COIL, 15: Table.COIL, 2: Table.DISCRETE,
             3: Table.HOLDING, 6: Table.HOLDING, 16: Table.HOLDING, 22: Table.HOLDING, 23: Table.HOLDING,
             4: Table.INPUT}


def builtin_profiles() -> list[str]:
    from importlib import resources

    return sorted(
        f.name[: -len(".yaml")]
        for f in resources.files(PROFILE_PACKAGE).iterdir()
        if f.name.endswith(".yaml") and not f.name.endswith(".scenario.yaml")
    )


def resolve_profile(name_or_path: str) -> ModbusProfile:
    """A built-in profile by name (``rcd_temp4``), a plugin's shipped profile as
    ``<plugin>:<name>`` (``leakage:acrel_arcm``, read from ``firebus.plugins.<plugin>.profiles``),
    or a profile file path."""
    if name_or_path in builtin_profiles():
        return load_profile_resource(PROFILE_PACKAGE, f"{name_or_path}.yaml")
    path = Path(name_or_path)
    if path.exists():
        return load_profile(path)
    plugin, sep, name = name_or_path.partition(":")
    if sep and plugin.isidentifier() and name:
        package = f"firebus.plugins.{plugin}.profiles"
        try:
            return load_profile_resource(package, f"{name}.yaml")
        except (ModuleNotFoundError, FileNotFoundError):
            raise ValueError(f"unknown profile {name_or_path!r}: no {name}.yaml in {package}") from None
    raise ValueError(f"unknown profile {name_or_path!r}: not a file, not <plugin>:<name>, "
                     f"and not one of {builtin_profiles()}")


class Request:
    __slots__ = ("unit", "fc", "address", "count", "t")

    def __init__(self, unit: int, fc: int, address: int, count: int, t: float) -> None:
        self.unit, self.fc, self.address, self.count, self.t = unit, fc, address, count, t

    def __repr__(self) -> str:
        return f"Request(unit={self.unit}, fc={self.fc}, address={self.address}, count={self.count})"


class SimDevice:
    """One unit: a profile, behaviours per point, written registers and a write log."""

    def __init__(self, unit: int, profile: ModbusProfile, behaviours: dict[str, AnyBehaviour] | None = None,
                 silent: Sequence[Window] = (), seed: int = 0) -> None:
        self.unit = unit
        self.profile = profile
        self.seed = seed
        self.behaviours: dict[str, AnyBehaviour] = dict(behaviours or {})
        unknown = set(self.behaviours) - {p.point_key for p in profile.points}
        if unknown:
            raise ValueError(f"unit {unit}: scenario names points not in profile {profile.name}: {sorted(unknown)}")
        self.silent_windows = list(silent)
        self.forced_silent = False
        self.written: dict[tuple[Table, int], int | bool] = {}
        self.write_log: dict[str, list[tuple[float, Any]]] = {}
        self.strict = False  # True: reading an unmapped address answers ILLEGAL ADDRESS

    # -- behaviour control (tests and the CLI use these)
    def set(self, point_key: str, behaviour: AnyBehaviour | Any) -> None:
        self.profile.point(point_key)  # KeyError for an unknown point
        if not isinstance(behaviour, Behaviour):
            behaviour = Steady(value=behaviour)
        self.behaviours[point_key] = behaviour
        # A scripted value replaces anything a client wrote.
        p = self.profile.point(point_key)
        for a in range(p.address, p.address + p.width):
            self.written.pop((p.table, a), None)

    def silent(self, t: float) -> bool:
        return self.forced_silent or any(w.contains(t) for w in self.silent_windows)

    # -- values
    def value(self, p: PointMap, t: float) -> Any:
        b = self.behaviours.get(p.point_key)
        if isinstance(b, Follow):
            v = b.initial
            for wt, wv in self.write_log.get(b.source, []):
                if wt + b.delay <= t:
                    v = wv
            return (not v) if b.invert and isinstance(v, bool) else v
        if b is None:
            if p.enum:
                return next(iter(p.enum.values()))
            if p.dtype in (DType.BOOL, DType.BIT):
                return False
            return p.min if p.min is not None else 0
        v = b.base_value(t)
        if isinstance(v, Raw) and v.value == -1 and isinstance(b, Fault):
            if not p.sentinels:
                raise ValueError(f"{p.point_key}: fault behaviour needs a sentinel (the profile defines none)")
            v = Raw(next(iter(p.sentinels)))
        if b.noise and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = v + noise(self.seed, self.unit, p.point_key, int(t), b.noise)
        return v

    def _decimals(self, p: PointMap, t: float) -> int | None:
        if p.decimals_from is None:
            return None
        src = self.profile.point(p.decimals_from)
        words = self._point_words(src, t)
        return int(words[0]) if isinstance(words, list) else None

    def _point_words(self, p: PointMap, t: float) -> list[int] | bool:
        written = [self.written.get((p.table, a)) for a in range(p.address, p.address + p.width)]
        if all(w is not None for w in written):
            return written[0] if p.table.is_bits else [int(w) for w in written]  # type: ignore[return-value]
        v = self.value(p, t)
        if isinstance(v, Raw):
            return raw_to_words(v.value, p.dtype if p.dtype is not DType.BIT else DType.UINT16,
                                *(_orders(self.profile, p)))
        if p.dtype is DType.BOOL:
            return bool(v)
        try:
            return encode_value(p, v, self.profile.defaults, self._decimals(p, t))
        except ValueError:
            if not isinstance(v, (int, float)) or p.dtype not in _INT_RANGE:
                raise
            # Out of the register's range: saturate like a real transmitter at full scale.
            lo, hi = _INT_RANGE[p.dtype]
            up = (v - p.offset) / p.scale > 0
            raw = hi if up else lo
            while raw in p.sentinels:  # full scale, not the device's "no value" codes
                raw += -1 if up else 1
            return raw_to_words(raw, p.dtype, *_orders(self.profile, p))

    def image(self, table: Table, t: float, span: tuple[int, int] | None = None) -> dict[int, int | bool]:
        """Every mapped address of ``table`` (only the points overlapping ``span`` = [start, end)
        if given: a read computes what it reads, not the whole map) → its current raw value."""
        out: dict[int, int | bool] = {}
        for p in self.profile.points:
            if p.table is not table:
                continue
            if span is not None and (p.address + p.width <= span[0] or p.address >= span[1]):
                continue
            if p.dtype is DType.BIT:
                w = self.written.get((table, p.address))
                if w is not None:
                    out[p.address] = int(w)
                    continue
                v = self.value(p, t)
                if isinstance(v, Raw):
                    out[p.address] = v.value & 0xFFFF
                    continue
                word = int(out.get(p.address, 0))
                bit = bool(v) ^ p.invert
                out[p.address] = (word | (1 << int(p.bit or 0))) if bit else (word & ~(1 << int(p.bit or 0)))
                continue
            words = self._point_words(p, t)
            if isinstance(words, bool):
                out[p.address] = words ^ p.invert
            else:
                for i, w in enumerate(words):
                    out[p.address + i] = w
        return out

    def readings(self, t: float) -> dict[str, Any]:
        """What a correct driver should decode right now (for tests and the CLI's status line)."""
        out: dict[str, Any] = {}
        for table in Table:
            img = self.image(table, t)
            for p in self.profile.points:
                if p.table is not table:
                    continue
                data = [img.get(a, 0) for a in range(p.address, p.address + p.width)]
                dec = self._decimals(p, t)
                r = decode_point(p, data, self.profile.defaults, dec)
                out[p.point_key] = r.fault and ("fault", r.fault) or r.value
        return out

    # -- writes from clients
    def write(self, table: Table, address: int, values: Sequence[int | bool], t: float) -> ExcCodes | None:
        targets: list[PointMap] = []
        for a in range(address, address + len(values)):
            owner = next((p for p in self.profile.points
                          if p.table is table and p.address <= a < p.address + p.width), None)
            if owner is None or not owner.writable:
                return ExcCodes.ILLEGAL_ADDRESS
            if owner not in targets:
                targets.append(owner)
        for i, v in enumerate(values):
            self.written[(table, address + i)] = bool(v) if table.is_bits else int(v)
        for p in targets:
            self.behaviours.pop(p.point_key, None)
            data = [self.written.get((table, a), 0) for a in range(p.address, p.address + p.width)]
            r = decode_point(p, data, self.profile.defaults, self._decimals(p, t))
            self.write_log.setdefault(p.point_key, []).append((t, r.value))
        return None


_INT_RANGE = {
    DType.INT16: (-(2**15), 2**15 - 1), DType.UINT16: (0, 2**16 - 1),
    DType.INT32: (-(2**31), 2**31 - 1), DType.UINT32: (0, 2**32 - 1),
    DType.INT64: (-(2**63), 2**63 - 1), DType.UINT64: (0, 2**64 - 1),
}


def _orders(profile: ModbusProfile, p: PointMap) -> tuple[Any, Any]:
    return (p.word_order or profile.defaults.word_order, p.byte_order or profile.defaults.byte_order)


class _SimContext(ModbusServerContext):
    """pymodbus server datastore backed by ``SimDevice``s.

    Subclassing (without the deprecated constructor) keeps pymodbus calling
    ``async_getValues``/``async_setValues`` directly; raising
    ``NoSuchIdException`` with ``ignore_missing_devices`` makes the server
    stay silent, which is how a dead RS-485 unit looks from the master.
    """

    def __init__(self, sim: "ModbusSimulator") -> None:  # noqa: D107 — deliberately no super().__init__
        self.sim = sim
        self.old_simulator = True
        self.simdevices = []
        self._devices = {}

    def _device(self, device_id: int, t: float) -> SimDevice:
        dev = self.sim.devices.get(device_id)
        if dev is None or dev.silent(t):
            raise NoSuchIdException(f"unit {device_id} silent")
        return dev

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
        t = self.sim.now()
        if func_code in (1, 2, 3, 4):  # writes read back through here too; count them once
            self.sim.requests.append(Request(device_id, func_code, address, count, t))
        dev = self._device(device_id, t)
        if self.sim.latency:
            await asyncio.sleep(self.sim.latency)
        table = _FC_TABLE[func_code]
        img = dev.image(table, t, (address, address + count))
        out = []
        for a in range(address, address + count):
            if a not in img and dev.strict:
                return ExcCodes.ILLEGAL_ADDRESS
            out.append(bool(img.get(a, False)) if table.is_bits else int(img.get(a, 0)))
        return out

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
        t = self.sim.now()
        self.sim.requests.append(Request(device_id, func_code, address, len(values), t))
        dev = self._device(device_id, t)
        return dev.write(_FC_TABLE[func_code], address, list(values), t)

    def device_ids(self) -> list[int]:
        return list(self.sim.devices)


class ModbusSimulator:
    """Serve ``SimDevice``s on a real Modbus TCP (or RTU-over-TCP) listener, or as RTU units on a serial port.

    ``port=0`` picks a free port; read it back from ``port`` after ``start``.
    ``serial_port`` (a device path, e.g. ``PacedSerialLine.device_port``) serves
    RTU there instead, with ``baudrate``/``bytesize``/``parity``/``stopbits``.
    ``clock`` returns simulated seconds (default: wall time since start ×
    ``speed``).
    """

    def __init__(self, devices: Sequence[SimDevice] = (), *, host: str = "127.0.0.1", port: int = 0,
                 framer: str = "socket", latency: float = 0.0, speed: float = 1.0,
                 clock: Callable[[], float] | None = None, serial_port: str | None = None,
                 baudrate: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> None:
        self.devices: dict[int, SimDevice] = {d.unit: d for d in devices}
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.serial = {"baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self.framer = FramerType.RTU if framer == "rtu" or serial_port else FramerType.SOCKET
        self.latency = latency
        self.speed = speed
        self._clock = clock
        self._t0 = time.monotonic()
        self.requests: list[Request] = []
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    @classmethod
    def from_scenario(cls, scenario: Scenario, **kwargs: Any) -> "ModbusSimulator":
        devs = [device_from_scenario(d, scenario.seed) for d in scenario.devices]
        return cls(devs, **kwargs)

    def add(self, device: SimDevice) -> SimDevice:
        self.devices[device.unit] = device
        return device

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return (time.monotonic() - self._t0) * self.speed

    async def start(self) -> None:
        if self.serial_port:
            self._server = ModbusSerialServer(_SimContext(self), framer=FramerType.RTU, port=self.serial_port,
                                              ignore_missing_devices=True, **self.serial)  # type: ignore[arg-type]
            await self._server.serve_forever(background=True)
            return
        self._server = ModbusTcpServer(_SimContext(self), address=(self.host, self.port),
                                       framer=self.framer, ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        if self.port == 0:
            sockets = getattr(self._server.transport, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every client connection (a gateway losing power)."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # also closes every open client connection

    def count(self, *, unit: int | None = None, fc: int | None = None) -> int:
        return sum(1 for r in self.requests if (unit is None or r.unit == unit) and (fc is None or r.fc == fc))

    async def __aenter__(self) -> "ModbusSimulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def device_from_scenario(d: DeviceScenario, seed: int = 0) -> SimDevice:
    return SimDevice(d.unit, resolve_profile(d.profile), dict(d.points), d.silent, seed)
