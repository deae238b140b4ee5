"""Contract suite for polled drivers (``PolledDriver``), and its Modbus form.

``PolledDriverContract`` drives the device through a ``DriverRig`` the vendor writes for
the protocol (``rig()``); ``ModbusDriverContract`` brings its own rig: a real pymodbus TCP
simulator serving the driver's register map, reached through the core's own
``modbus_tcp`` transport, exactly as on a site.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, ClassVar

import anyio
import anyio.lowlevel
import msgspec
import pytest

from firebus.sdk.driver import DeviceInfo, NotReady, PolledDriver, Reading
from firebus.sdk.manifest import API_VERSION, Manifest, sdk_compatible

from .checks import ContractDriverContext, known_point_classes, running_tasks, watch_blocking
from .levels import Level, level


class DriverRig:
    """What a polled-driver contract needs from the device side (subclass per protocol)."""

    transport: Any
    logger: logging.Logger

    def make_driver(self) -> PolledDriver:
        raise NotImplementedError

    def set_reachable(self, reachable: bool) -> None:
        """Make the device stop (False) or resume (True) answering, like a dead unit."""
        raise NotImplementedError

    async def stop_transport(self) -> None:
        raise NotImplementedError

    def open_connections(self) -> int | None:
        """Connections the device side still holds (None: cannot tell)."""
        return None


@pytest.mark.anyio
class PolledDriverContract:
    """Contract for ``PolledDriver`` classes; subclasses provide ``rig()``."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the core runs on asyncio (trio is not supported)

    driver_class: ClassVar[type[PolledDriver]]
    #: the device's ``options`` as in the site file
    options: ClassVar[dict[str, Any]] = {}
    #: point classes the plugin adds beyond ``firebus.sdk.PointClass`` (its manifest's)
    extra_point_classes: ClassVar[tuple[str, ...]] = ()
    #: the plugin's manifest, if it has one (checked at bronze)
    manifest: ClassVar[Manifest | None] = None
    #: the plugin module: its ``firebus_register_point_classes`` counts as declared classes
    plugin: ClassVar[Any] = None
    #: seconds a poll of an unreachable device may take before it must have failed
    unreachable_within: ClassVar[float] = 10.0
    #: one event-loop step longer than this counts as a blocking call
    blocking_threshold: ClassVar[float] = 0.15

    def rig(self) -> Any:
        """An async context manager yielding a ``DriverRig``."""
        raise NotImplementedError(f"{type(self).__name__}: implement rig() or use ModbusDriverContract")

    def make_options(self) -> msgspec.Struct:
        return msgspec.convert(self.options, self.driver_class.Options)

    # -- bronze

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.driver_class
        assert isinstance(getattr(cls, "type_key", None), str) and cls.type_key, "type_key must be a non-empty string"
        assert "." in cls.type_key, f"type_key {cls.type_key!r}: prefix it with your plugin name (acme.rcm)"
        assert isinstance(cls.transports, tuple), "transports must be a tuple of transport type keys"
        if self.manifest is not None:
            assert isinstance(self.manifest, Manifest)
            assert sdk_compatible(self.manifest.requires_sdk, API_VERSION), (
                f"manifest requires_sdk {self.manifest.requires_sdk!r} excludes this SDK ({API_VERSION})")

    @level(Level.BRONZE)
    def test_options_round_trip(self) -> None:
        opts = self.make_options()
        again = msgspec.convert(msgspec.to_builtins(opts), self.driver_class.Options)
        assert again == opts, "options must survive the site file round trip unchanged"

    @level(Level.BRONZE)
    async def test_setup_identifies_the_device(self) -> None:
        async with self.rig() as rig:
            info = await rig.make_driver().setup()
            assert isinstance(info, DeviceInfo)
            assert info.identifiers, "DeviceInfo.identifiers must not be empty"
            for key, value in info.identifiers.items():
                assert value, f"identifier {key!r} is empty"
                assert "127.0.0.1" not in value and "localhost" not in value, (
                    f"identifier {key}={value!r} contains an address: identity must come from hardware "
                    "(serial, unit on a named line), not from where the device happens to be reachable")

    @level(Level.BRONZE)
    async def test_points_are_known_classes(self) -> None:
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            points = driver.points()
            assert points, "a device with no points"
            keys = [p.key for p in points]
            assert len(keys) == len(set(keys)), f"duplicate point keys: {keys}"
            known = known_point_classes(self.extra_point_classes, self.manifest, self.plugin)
            unknown = sorted({p.point_class for p in points} - known)
            assert not unknown, f"unknown point classes {unknown}: use firebus.sdk.PointClass or declare them"

    @level(Level.BRONZE)
    async def test_poll_reports_declared_points(self) -> None:
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            readings = await driver.poll()
            assert readings, "poll returned no readings"
            assert all(isinstance(r, Reading) for r in readings)
            declared = {p.key for p in driver.points()}
            stray = sorted({r.point_key for r in readings} - declared)
            assert not stray, f"readings for undeclared points: {stray}"
            await driver.close()

    # -- silver

    @level(Level.SILVER)
    async def test_identity_stable_across_restarts(self) -> None:
        async with self.rig() as rig:
            first = (await rig.make_driver().setup()).identifiers
        async with self.rig() as rig:  # a new transport, a new driver: a restarted core
            second = (await rig.make_driver().setup()).identifiers
        assert first == second, f"identity changed across a restart: {first} → {second}"

    @level(Level.SILVER)
    async def test_unreachable_device_is_unavailable_not_a_crash(self) -> None:
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            rig.set_reachable(False)
            with anyio.fail_after(self.unreachable_within):
                with pytest.raises(Exception) as failure:  # the poller marks the device unavailable
                    await driver.poll()
            assert not isinstance(failure.value, (KeyboardInterrupt, SystemExit))
            with anyio.fail_after(self.unreachable_within):
                with pytest.raises(NotReady):  # at start-up: retried with back-off, not a failed plugin
                    await rig.make_driver().setup()

    @level(Level.SILVER)
    async def test_recovers_after_an_outage(self) -> None:
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            rig.set_reachable(False)
            with anyio.fail_after(self.unreachable_within), pytest.raises(Exception):  # noqa: B017 — any error: unavailable
                await driver.poll()
            rig.set_reachable(True)
            with anyio.fail_after(self.unreachable_within + 10):
                while True:  # the line may back off before reconnecting
                    try:
                        readings = await driver.poll()
                        break
                    except Exception:
                        await anyio.sleep(0.1)
            assert readings, "no readings after the device came back"

    @level(Level.SILVER)
    async def test_one_log_line_per_outage(self) -> None:
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            seen: list[str] = []

            class Collect(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    if record.levelno >= logging.WARNING:
                        seen.append(record.getMessage())

            handler = Collect()
            rig.logger.addHandler(handler)
            try:
                rig.set_reachable(False)
                for _ in range(2):  # the second failure of the same outage must stay quiet
                    with anyio.fail_after(self.unreachable_within), pytest.raises(Exception):  # noqa: B017 — any error: unavailable
                        await driver.poll()
            finally:
                rig.logger.removeHandler(handler)
            assert len(seen) <= 1, f"{len(seen)} warnings for one outage (log it once): {seen}"

    # -- gold

    @level(Level.GOLD)
    async def test_no_blocking_calls_in_the_event_loop(self) -> None:
        async with self.rig() as rig:
            async with watch_blocking(self.blocking_threshold) as watch:
                driver = rig.make_driver()
                await driver.setup()
                for _ in range(3):
                    await driver.poll()
                await driver.close()
            assert not watch.slow, f"the driver blocked the event loop: {watch.slow}"

    @level(Level.GOLD)
    async def test_close_releases_the_transport(self) -> None:
        before = running_tasks()
        async with self.rig() as rig:
            driver = rig.make_driver()
            await driver.setup()
            await driver.poll()
            await driver.close()
            await driver.close()  # idempotent: the core may close twice on shutdown paths
            await rig.stop_transport()
            with anyio.fail_after(5):
                while rig.open_connections():
                    await anyio.sleep(0.02)
        await anyio.lowlevel.checkpoint()
        leaked = [t.get_name() for t in running_tasks() - before if t is not asyncio.current_task()]
        assert not leaked, f"tasks left running after close: {leaked}"


class _LineContext:
    """A ``TransportContext`` for a transport under test (no core around it)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.links: list[tuple[bool, str]] = []

    def link_changed(self, up: bool, reason: str = "") -> None:
        self.links.append((up, reason))

    async def run_in_background(self, func: Any, *args: Any, name: str = "") -> None:
        raise RuntimeError("contract rigs run no background tasks")


class ModbusRig(DriverRig):
    def __init__(self, contract: "ModbusDriverContract", sim: Any, transport: Any) -> None:
        self.contract = contract
        self.sim = sim
        self.transport = transport
        self.logger = logging.getLogger(f"firebus.contract.{contract.driver_class.type_key}")
        self.unit = int(contract.options.get("unit", 1))

    def make_driver(self) -> PolledDriver:
        ctx = ContractDriverContext(self.transport, self.logger)
        return self.contract.driver_class(self.contract.make_options(), ctx)

    def set_reachable(self, reachable: bool) -> None:
        self.sim.devices[self.unit].forced_silent = not reachable

    async def stop_transport(self) -> None:
        await self.transport.stop()

    def open_connections(self) -> int | None:
        from .harness import open_connections

        return open_connections(self.sim)


class ModbusDriverContract(PolledDriverContract):
    """Contract for ``ModbusProfileDriver`` subclasses, run against a real Modbus TCP simulator.

    The simulator serves ``profile`` (default: the driver's class profile) at
    ``options["unit"]`` with ``values``; the driver talks to it through the
    core's own ``modbus_tcp`` transport, exactly as on a site.
    """

    options: ClassVar[dict[str, Any]] = {"unit": 1}
    profile: ClassVar[Any] = None
    values: ClassVar[dict[str, Any]] = {}
    timeout: ClassVar[float] = 0.3

    @asynccontextmanager
    async def rig(self) -> AsyncIterator[ModbusRig]:
        from firebus.core.transports.modbus import ModbusTcpOptions, ModbusTcpTransport  # test-time only

        from .harness import modbus_simulator

        profile = self.profile or getattr(self.driver_class, "profile", None)
        if profile is None:
            opts = self.make_options()
            profile = getattr(opts, "profile", None)
        assert profile, f"{type(self).__name__}: set profile (or the driver's class profile)"
        unit = int(self.options.get("unit", 1))
        async with modbus_simulator({unit: profile}, values={unit: self.values}) as sim:
            logger = logging.getLogger(f"firebus.contract.{self.driver_class.type_key}")
            options = ModbusTcpOptions(host="127.0.0.1", port=sim.port, timeout=self.timeout, retries=0,
                                       reconnect_delay=0.05, reconnect_delay_max=0.2)
            transport = ModbusTcpTransport("contract-line", options, _LineContext(logger))
            await transport.start()
            try:
                yield ModbusRig(self, sim, transport)
            finally:
                await transport.stop()
