"""Device drivers: the classes a plugin returns from ``firebus_register_drivers``.

Three shapes, because field devices come in three shapes:

* ``PolledDriver`` — one instance per configured device; the core's poll
  coordinator calls ``poll()`` on a schedule (Modbus detectors, pump panels).
  A cycle still running when the next is due is skipped, never queued.
* ``PushDriver`` — one instance per (transport, driver type); the transport
  hands it every message on its topics and it decodes them into
  ``DeviceReport``s naming the device by hardware identity (MQTT detector fleets).
* ``ServiceDriver`` — one instance per configured device that runs by itself (a
  camera: its own decoding threads and detector worker); no transport, the core
  calls ``start()`` once and ``stop()`` at the end, and the driver reports through
  ``ctx.report`` and ``ctx.set_availability`` like a polled one.

Drivers never open sockets: they get a shared transport ("hub") through their
``DriverContext``.  Identity comes from hardware identifiers (serial, IMEI, Modbus
unit id on a named line), never from an IP address or a user-given name.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Protocol

import msgspec

from .core_api import CoreAPI
from .events import Lane
from .vocab import Availability


class NotReady(Exception):
    """Raised by ``setup`` when the device cannot be reached yet; the core retries with back-off."""


class PointSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """A point a driver provides.  ``key`` is stable per device (e.g. ``residual_current_1``)."""

    key: str
    point_class: str
    unit: str = ""
    name: str = ""
    writable: bool = False
    expected_interval: float | None = None  # seconds between reports, for offline detection
    #: changes travel on the alarm lane (never behind telemetry); None: by point class
    #: (``firebus.sdk.vocab.is_alarm_class``)
    alarm: bool | None = None


class DeviceInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a driver knows about a device.  ``identifiers`` must not be empty."""

    identifiers: dict[str, str]
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    sw_version: str = ""
    hw_version: str = ""
    name: str = ""


class Reading(msgspec.Struct, frozen=True, omit_defaults=True):
    """One value of one point.  ``ts`` is the device's time when it sends one.

    ``fault`` marks a value the device flagged as invalid (wiring fault, sentinel):
    it is recorded as a sensor fault, never as a measurement.
    """

    point_key: str
    value: Any
    ts: float | None = None
    fault: str | None = None
    #: ids of media (``CoreAPI.media.put``) that show this reading (a camera's still of the
    #: moment its flame point turned true): attached to the alarm the reading raises, if any.
    #: Honoured for readings passed to ``DriverContext.report``.
    media: tuple[str, ...] = ()


class DeviceReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """Readings of one device, named by its hardware identity (push drivers)."""

    identifiers: dict[str, str]
    readings: list[Reading]
    info: DeviceInfo | None = None


class DriverContext(Protocol):
    """What the core gives a driver.  Implemented by the core; drivers only use it."""

    @property
    def device_id(self) -> str | None:
        """The registry id of the device (None for a push driver's shared context)."""

    transport: Any
    logger: logging.Logger

    def set_availability(self, availability: Availability, reason: str = "") -> None: ...

    async def report(self, readings: list[Reading]) -> None:
        """Hand readings to the core (polled drivers).  Returns once queued for storage."""

    def quarantine(self, source: str, raw: bytes, reason: str) -> None:
        """Keep a payload that could not be decoded, with why; counts it."""


class ServiceContext(DriverContext, Protocol):
    """What a ``ServiceDriver`` gets: a driver's context plus the core (bus, media, tasks)."""

    core: CoreAPI


class Driver(ABC):
    """Common part of both driver shapes."""

    type_key: ClassVar[str]
    #: msgspec Struct the device's ``options`` in the site file must match.
    Options: ClassVar[type[msgspec.Struct]]
    #: transport types this driver can run on, e.g. ``("modbus",)`` or ``("mqtt",)``.
    transports: ClassVar[tuple[str, ...]]

    async def close(self) -> None:
        """Release what ``setup`` acquired.  The transport itself belongs to the core."""


class PolledDriver(Driver):
    """One instance per device.  ``poll`` reads every point in one cycle."""

    poll_interval: ClassVar[float] = 5.0

    def __init__(self, options: msgspec.Struct, ctx: DriverContext) -> None:
        self.options = options
        self.ctx = ctx

    @abstractmethod
    async def setup(self) -> DeviceInfo:
        """Identify the device.  Raise ``NotReady`` if it cannot be reached yet."""

    @abstractmethod
    def points(self) -> list[PointSpec]:
        """The device's points, known after ``setup``."""

    @abstractmethod
    async def poll(self) -> list[Reading]:
        """Read all points in as few requests as possible.  Raise on transport failure."""

    async def write(self, point_key: str, value: Any) -> None:
        """Write a writable point.  Raise ``ValueError`` for a point that is not writable."""
        raise ValueError(f"{self.type_key}: point {point_key!r} is not writable")


class PushDriver(Driver):
    """One instance per transport; decodes every message on its subscriptions."""

    def __init__(self, options: msgspec.Struct, ctx: DriverContext) -> None:
        self.options = options
        self.ctx = ctx

    @abstractmethod
    def subscriptions(self) -> list[str]:
        """Topic patterns to subscribe to (MQTT wildcards allowed)."""

    def alarm_subscriptions(self) -> list[str]:
        """Topic patterns that carry only alarm-class messages (fire, gas, leakage alarms,
        faults).  The MQTT hub gives them a session and in-flight window of their own, so
        a broker backlog of telemetry can never hold them."""
        return []

    def lane_of(self, topic: str, payload: bytes) -> Lane | None:
        """A cheap peek for topics that carry alarms *and* telemetry (most smoke detectors):
        ``Lane.ALARM`` for a message that can raise or clear an alarm or fault, else
        ``Lane.TELEMETRY`` (or None: telemetry).  Called before any queue, so it must not
        raise and must be cheap; ``decode`` still validates the message."""
        return None

    @abstractmethod
    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        """Decode one message.  Raise ``ValueError`` with a reason for a bad payload."""

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        """Point specs for a device first seen in ``report`` (defaults to its reading keys)."""
        return [PointSpec(key=r.point_key, point_class=r.point_key) for r in report.readings]

    async def write(self, identifiers: dict[str, str], point_key: str, value: Any) -> None:
        raise ValueError(f"{self.type_key}: point {point_key!r} is not writable")


class ServiceDriver(Driver):
    """One instance per configured device that runs by itself: no transport, no poll.

    The core resolves the device (its ``identifiers`` in the site file, else its key),
    declares ``points()``, then awaits ``start()`` — which must return once the service
    runs (start threads or tasks, do not loop in it); a ``start`` that raises is retried
    with a doubling back-off and the device shown unavailable meanwhile.  ``stop()`` is
    awaited when the core stops (at most 10 s).  Between the two the driver reports with
    ``self.ctx.report([...])`` (alarm-class points on the alarm lane) and says when it cannot
    see its device with ``self.ctx.set_availability``.  ``self.ctx.core`` is the
    ``CoreAPI`` (bus, media, ``start_task``).
    """

    transports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: msgspec.Struct, ctx: ServiceContext) -> None:
        self.options = options
        self.ctx = ctx

    def device_info(self) -> DeviceInfo | None:
        """What is known of the device before it runs (None: only the site file's identity)."""
        return None

    @abstractmethod
    def points(self) -> list[PointSpec]:
        """The device's points (known from the options, before ``start``)."""

    @abstractmethod
    async def start(self) -> None:
        """Start the service and return.  Raise (``NotReady`` or any error) to be retried."""

    async def stop(self) -> None:
        """Stop what ``start`` started.  Called once, also after a failed ``start``."""

    async def write(self, point_key: str, value: Any) -> None:
        raise ValueError(f"{self.type_key}: point {point_key!r} is not writable")


DurableCallback = Callable[[], None]
AsyncHandler = Callable[..., Awaitable[None]]
