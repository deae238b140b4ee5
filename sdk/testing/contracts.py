"""Contract test suites a vendor subclasses, and the quality level they earn.

Subclass one per declaration your plugin ships, name the subclass ``Test…``
so pytest collects it, and set the class attributes::

    from firebus.sdk.testing.contracts import ModbusDriverContract

    class TestAcmeRcm(ModbusDriverContract):
        driver_class = AcmeRcmDriver
        options = {"unit": 1}

Each test is tagged bronze, silver or gold.  A suite's level is the highest
one whose tests (and every lower level's) all passed; the pytest plugin prints
it at the end of the run (``firebus quality: TestAcmeRcm: gold (11/11)``).

* bronze — it works: options round-trip, identity from hardware (never an IP),
  points of known classes, a poll returns what was declared.
* silver — it survives the field: identity stable across restarts, an
  unreachable device is "unavailable" (an exception from ``poll``, ``NotReady``
  from ``setup``), never a crash or a hang, recovery afterwards, one log line
  per outage.
* gold — it is a good neighbour: no blocking call in the event loop (asyncio
  slow-callback detection), ``close`` releases what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any, AsyncIterator, Callable, ClassVar, Iterable

import anyio
import msgspec
import pytest

from firebus.sdk.detector import VideoDetector
from firebus.sdk.driver import DeviceInfo, NotReady, PolledDriver, PushDriver, Reading
from firebus.sdk.extension import Notifier
from firebus.sdk.manifest import API_VERSION, Manifest, sdk_compatible
from firebus.sdk.vocab import Availability, PointClass
import anyio.lowlevel


class Level(StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


LEVELS = (Level.BRONZE, Level.SILVER, Level.GOLD)


def level(lvl: Level | str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a contract test with the quality level it belongs to."""
    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func._firebus_level = Level(lvl)  # type: ignore[attr-defined]
        return func
    return mark


def quality_level(results: Iterable[tuple[Level | str, bool]]) -> Level | None:
    """The highest level whose tests, and all lower levels' tests, passed (None: not even bronze)."""
    by_level: dict[Level, list[bool]] = {lv: [] for lv in LEVELS}
    for lvl, passed in results:
        by_level[Level(lvl)].append(passed)
    earned: Level | None = None
    for lvl in LEVELS:
        if not by_level[lvl] or not all(by_level[lvl]):
            break
        earned = lvl
    return earned


# --------------------------------------------------------------------------- shared checks


class BlockingWatch(logging.Handler):
    """Counts asyncio's "Executing <handle> took N seconds" warnings (debug mode).

    That warning means one callback held the event loop for longer than
    ``slow_callback_duration``: a blocking call (``time.sleep``, sync socket or
    file I/O, a CPU-heavy decode) that stalls every other device on the site.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing ") and " took " in message:
            self.slow.append(message)


@asynccontextmanager
async def watch_blocking(threshold: float = 0.15) -> AsyncIterator[BlockingWatch]:
    loop = asyncio.get_running_loop()
    watch = BlockingWatch()
    logger = logging.getLogger("asyncio")
    was_debug, was_threshold = loop.get_debug(), loop.slow_callback_duration
    logger.addHandler(watch)
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    # asyncio times a callback only if debug was on when it started: end this step first,
    # and end the last step under watch before switching debug off again.
    await asyncio.sleep(0)
    try:
        yield watch
    finally:
        await asyncio.sleep(0)
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_threshold
        logger.removeHandler(watch)


def _own_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()}


def known_point_classes(extra: Iterable[str] = (), manifest: Manifest | None = None, plugin: Any = None) -> set[str]:
    """The SDK's point classes plus what the plugin declares (manifest, ``firebus_register_point_classes``)."""
    known = {str(c) for c in PointClass} | set(extra)
    if manifest is not None:
        known |= set(manifest.point_classes)
    hook = getattr(plugin, "firebus_register_point_classes", None)
    if hook is not None:
        known |= set(hook(None) or [])
    return known


# --------------------------------------------------------------------------- drivers


class ContractDriverContext:
    """The ``DriverContext`` a driver gets under contract test: records what it is told."""

    def __init__(self, transport: Any, logger: logging.Logger) -> None:
        self.device_id: str | None = "contract-device"
        self.transport = transport
        self.logger = logger
        self.availability: list[tuple[Availability, str]] = []
        self.reported: list[Reading] = []
        self.quarantined: list[tuple[str, bytes, str]] = []

    def set_availability(self, availability: Availability, reason: str = "") -> None:
        self.availability.append((availability, reason))

    async def report(self, readings: list[Reading]) -> None:
        self.reported.extend(readings)

    def quarantine(self, source: str, raw: bytes, reason: str) -> None:
        self.quarantined.append((source, raw, reason))


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
            with anyio.fail_after(self.unreachable_within), pytest.raises(Exception):
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
                    with anyio.fail_after(self.unreachable_within), pytest.raises(Exception):
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
        before = _own_tasks()
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
        leaked = [t.get_name() for t in _own_tasks() - before if t is not asyncio.current_task()]
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


# --------------------------------------------------------------------------- push drivers


def valid_topic_filter(pattern: str) -> bool:
    """An MQTT subscription filter: ``+`` a whole level, ``#`` only as the last level."""
    levels = pattern.split("/")
    if not pattern:
        return False
    for i, lvl in enumerate(levels):
        if "#" in lvl and (lvl != "#" or i != len(levels) - 1):
            return False
        if "+" in lvl and lvl != "+":
            return False
    return True


def mutations(sample: bytes, rounds: int, seed: int = 1) -> list[bytes]:
    """Deterministic damaged copies of a payload: truncations, flipped bytes, swapped values."""
    import random

    rnd = random.Random(seed)
    out: list[bytes] = []
    for i in range(rounds):
        data = bytearray(sample)
        kind = i % 4
        if kind == 0 and data:
            del data[rnd.randrange(len(data)):]
        elif kind == 1 and data:
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif kind == 2:
            for old, new in ((b"true", b"\"yes\""), (b"false", b"null"), (b": ", b": [")):
                if old in data and rnd.random() < 0.7:
                    data = bytearray(bytes(data).replace(old, new, 1))
            digits = [j for j, c in enumerate(data) if 48 <= c <= 57]
            if digits:
                data[rnd.choice(digits)] = ord(rnd.choice('"-.e{'))
        else:
            data = bytearray(rnd.randbytes(rnd.randint(0, 64)))
        out.append(bytes(data))
    return out


@pytest.mark.anyio
class PushDriverContract:
    """Contract for ``PushDriver`` classes (JSON over MQTT, LoRaWAN uplinks …).

    Set ``driver_class`` and ``samples``: real messages as ``(topic, payload)``.
    A push driver sees whatever anyone publishes on its topics, so most of this
    suite is about bad input: it must raise ``ValueError`` with a reason (the
    core quarantines the payload) and never anything else.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    driver_class: ClassVar[type[PushDriver]]
    options: ClassVar[dict[str, Any]] = {}
    samples: ClassVar[list[tuple[str, bytes]]] = []
    bad_samples: ClassVar[list[tuple[str, bytes]]] = []
    manifest: ClassVar[Manifest | None] = None
    plugin: ClassVar[Any] = None
    extra_point_classes: ClassVar[tuple[str, ...]] = ()
    fuzz_rounds: ClassVar[int] = 400

    def make(self) -> Any:
        ctx = ContractDriverContext(None, logging.getLogger(f"firebus.contract.{self.driver_class.type_key}"))
        return self.driver_class(msgspec.convert(self.options, self.driver_class.Options), ctx)

    def decode_checked(self, driver: Any, topic: str, payload: bytes) -> list[Any]:
        """Decode; a ``ValueError`` is the accepted way to refuse, anything else fails the test."""
        from firebus.sdk.driver import DeviceReport

        try:
            reports = driver.decode(topic, payload)
        except ValueError:
            return []
        except Exception as exc:  # noqa: BLE001 — the point of the check
            raise AssertionError(f"decode({topic!r}, {payload[:80]!r}) raised {type(exc).__name__}: {exc} "
                                 "(refuse bad input with ValueError)") from exc
        assert isinstance(reports, list) and all(isinstance(r, DeviceReport) for r in reports), reports
        return reports

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.driver_class
        assert isinstance(getattr(cls, "type_key", None), str) and "." in cls.type_key, (
            "type_key must be namespaced (plugin.model)")
        subs = self.make().subscriptions()
        assert subs, "no subscriptions"
        bad = [s for s in subs if not valid_topic_filter(s)]
        assert not bad, f"invalid MQTT topic filters: {bad}"
        if self.manifest is not None:
            assert sdk_compatible(self.manifest.requires_sdk, API_VERSION)

    @level(Level.BRONZE)
    def test_samples_decode_to_declared_points(self) -> None:
        assert self.samples, "give at least one real message in samples"
        driver = self.make()
        known = known_point_classes(self.extra_point_classes, self.manifest, self.plugin)
        for topic, payload in self.samples:
            reports = driver.decode(topic, payload)
            assert reports, f"sample on {topic} decoded to nothing"
            for report in reports:
                assert report.identifiers and all(report.identifiers.values()), "empty identity"
                specs = {p.key: p for p in driver.points_for(report)}
                stray = sorted({r.point_key for r in report.readings} - set(specs))
                assert not stray, f"readings for undeclared points: {stray}"
                unknown = sorted({p.point_class for p in specs.values()} - known)
                assert not unknown, f"unknown point classes {unknown}: use firebus.sdk.PointClass or declare them"

    @level(Level.SILVER)
    def test_identity_is_stable_and_not_an_address(self) -> None:
        driver = self.make()
        for topic, payload in self.samples:
            first = [r.identifiers for r in driver.decode(topic, payload)]
            again = [r.identifiers for r in self.make().decode(topic, payload)]
            assert first == again, f"identity differs between decodes: {first} → {again}"
            for ids in first:
                for key, value in ids.items():
                    assert not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}(:\d+)?", value), (
                        f"identifier {key}={value!r} is an address")

    @level(Level.SILVER)
    def test_malformed_payloads_are_refused_with_value_error(self) -> None:
        driver = self.make()
        topic = self.samples[0][0] if self.samples else "x"
        garbage = [b"", b"{", b"null", b"[]", b"42", b'"text"', b"\xff\xfe\x00", b'{"unrelated": 1}',
                   b'{"a": ' * 200 + b"1" + b"}" * 200]
        for payload in garbage:
            self.decode_checked(driver, topic, payload)
        for t, payload in self.bad_samples:
            self.decode_checked(driver, t, payload)
        for t, payload in self.samples:
            self.decode_checked(driver, "not/" + t + "/theirs", payload)

    @level(Level.GOLD)
    def test_fuzzed_payloads_never_crash_the_decoder(self) -> None:
        driver = self.make()
        for t, payload in self.samples:
            for damaged in mutations(payload, self.fuzz_rounds):
                self.decode_checked(driver, t, damaged)


# --------------------------------------------------------------------------- notifiers


class NotifierRig:
    """A channel wired to a receiver the test controls."""

    channel: Any

    def delivered(self) -> list[Any]:
        """What the receiver got so far."""
        raise NotImplementedError

    def set_receiver_up(self, up: bool) -> None:
        raise NotImplementedError


def sample_message(n: int = 1) -> Any:
    from firebus.sdk.notify import Message

    return Message(id=f"contract-{n}", kind="new", channel="contract", recipient="duty", title="Fire alarm",
                   text="Smoke detector B1 switch room: alarm", address="duty@example.invalid",
                   alarm_id="A-1", category="fire", severity=3, ts=time.time())


@pytest.mark.anyio
class NotifierContract:
    """Contract for notification channels (``firebus.sdk.Notifier`` / ``notify.Channel``)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the core runs on asyncio (trio is not supported)

    notifier_class: ClassVar[type[Notifier]]
    options: ClassVar[dict[str, Any]] = {}
    send_within: ClassVar[float] = 20.0
    blocking_threshold: ClassVar[float] = 0.15

    def rig(self) -> Any:
        """An async context manager yielding a ``NotifierRig``."""
        raise NotImplementedError

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.notifier_class
        assert isinstance(getattr(cls, "type_key", None), str) and cls.type_key
        opts = msgspec.convert(self.options, cls.Options)
        assert msgspec.convert(msgspec.to_builtins(opts), cls.Options) == opts

    @level(Level.BRONZE)
    async def test_send_delivers(self) -> None:
        async with self.rig() as rig:
            with anyio.fail_after(self.send_within):
                await rig.channel.send(sample_message(1))
            assert len(rig.delivered()) == 1

    @level(Level.SILVER)
    async def test_failure_raises_instead_of_hanging(self) -> None:
        async with self.rig() as rig:
            rig.set_receiver_up(False)
            with anyio.fail_after(self.send_within), pytest.raises(Exception):
                await rig.channel.send(sample_message(2))
            assert not rig.delivered()

    @level(Level.SILVER)
    async def test_recovers_after_a_failure(self) -> None:
        async with self.rig() as rig:
            rig.set_receiver_up(False)
            with anyio.fail_after(self.send_within), pytest.raises(Exception):
                await rig.channel.send(sample_message(3))
            rig.set_receiver_up(True)
            with anyio.fail_after(self.send_within):
                await rig.channel.send(sample_message(4))
            assert len(rig.delivered()) == 1

    @level(Level.GOLD)
    async def test_no_blocking_calls_in_the_event_loop(self) -> None:
        async with self.rig() as rig:
            async with watch_blocking(self.blocking_threshold) as watch:
                for n in range(3):
                    await rig.channel.send(sample_message(10 + n))
            assert not watch.slow, f"the channel blocked the event loop: {watch.slow}"

    @level(Level.GOLD)
    async def test_close_releases_resources(self) -> None:
        before = _own_tasks()
        async with self.rig() as rig:
            await rig.channel.send(sample_message(20))
            close = getattr(rig.channel, "aclose", None)
            if close is not None:
                await close()
                await close()  # idempotent
        await anyio.lowlevel.checkpoint()
        leaked = [t.get_name() for t in _own_tasks() - before if t is not asyncio.current_task()]
        assert not leaked, f"tasks left running after close: {leaked}"


# --------------------------------------------------------------------------- video detectors


def detection_fields(d: Any) -> tuple[str, float, tuple[float, float, float, float]]:
    """(label, score, (x_min, y_min, x_max, y_max)) from an object, dict or tuple detection."""
    if isinstance(d, dict):
        return d["label"], float(d["score"]), tuple(d["box"])  # type: ignore[return-value]
    if isinstance(d, (tuple, list)):
        label, score, box = d
        return label, float(score), tuple(box)  # type: ignore[return-value]
    return d.label, float(d.score), tuple(d.box)


@pytest.mark.anyio
class DetectorContract:
    """Contract for ``VideoDetector`` back-ends (Frigate-style fixed output).

    Set ``detector_class``, ``options`` and ``frames``: a list of
    ``(frame, expected_labels)`` pairs; one with no fire or smoke
    (``expected_labels = set()``) is required.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the core runs on asyncio (trio is not supported)

    detector_class: ClassVar[type[VideoDetector]]
    options: ClassVar[dict[str, Any]] = {}
    frames: ClassVar[list[tuple[Any, set[str]]]] = []
    labels: ClassVar[frozenset[str]] = frozenset({"fire", "smoke"})

    def make(self) -> Any:
        cls = self.detector_class
        try:
            return cls(msgspec.convert(self.options, cls.Options))
        except TypeError:
            return cls()

    @level(Level.BRONZE)
    def test_output_contract(self) -> None:
        assert self.frames, "give at least one frame"
        det = self.make()
        for frame, _ in self.frames:
            for d in det.detect(frame):
                label, score, box = detection_fields(d)
                assert label in self.labels, f"label {label!r} not in {sorted(self.labels)}"
                assert 0.0 <= score <= 1.0, f"score {score} outside 0..1"
                assert len(box) == 4 and all(0.0 <= v <= 1.0 for v in box), f"box {box} not normalised"
                assert box[0] <= box[2] and box[1] <= box[3], f"box {box} is not (x_min, y_min, x_max, y_max)"

    @level(Level.BRONZE)
    def test_expected_labels(self) -> None:
        det = self.make()
        assert any(not want for _, want in self.frames), "add a frame with nothing in it"
        for i, (frame, want) in enumerate(self.frames):
            got = {detection_fields(d)[0] for d in det.detect(frame)}
            assert got == set(want), f"frame {i}: detected {sorted(got)}, expected {sorted(want)}"

    @level(Level.SILVER)
    def test_deterministic(self) -> None:
        det = self.make()
        for frame, _ in self.frames:
            assert [detection_fields(d) for d in det.detect(frame)] == [detection_fields(d) for d in det.detect(frame)]

    @level(Level.GOLD)
    async def test_runs_off_the_event_loop(self) -> None:
        """``detect`` is synchronous: the core runs it in a worker thread; two at once must agree."""
        det = self.make()
        frame = self.frames[0][0]
        expected = [detection_fields(d) for d in det.detect(frame)]
        results: list[Any] = []

        async def one() -> None:
            out = await anyio.to_thread.run_sync(det.detect, frame)
            results.append([detection_fields(d) for d in out])

        async with watch_blocking() as watch:
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
        assert results == [expected] * 4
        assert not watch.slow, watch.slow


__all__ = [
    "ContractDriverContext", "DetectorContract", "DriverRig", "Level", "ModbusDriverContract", "ModbusRig",
    "NotifierContract", "NotifierRig", "PolledDriverContract", "PushDriverContract", "level", "quality_level", "sample_message",
    "watch_blocking",
]
