"""firebus as a monitoring centre (监控中心): the ``gb26875.centre`` transport and the
``gb26875.gateway`` push driver.

The transport runs a ``CentreServer``.  Every upload from an admitted device (a UITD or
a fire panel's gateway) is handed to the core's push path as one message —
topic ``gb26875/<address hex>/<type>``, payload the frame's bytes — and the frame is
**confirmed only once the core has made its readings durable** (the ``ack`` of the push
path); until then the device waits, and resends if the core is too slow, so nothing it
sent is lost.  Devices whose address is not allowed (the transport's
``allow_addresses``, by default the addresses of the configured ``gb26875.gateway``
devices) are denied, quarantined and counted (``stats()``).

The driver turns a frame into one ``DeviceReport`` of the gateway device (identifier
``gb26875`` = the 12 hex digits of its address) with a point per component and
quantity, so the gateway's components live under the gateway's place:

* type 2 component state → ``c<sys type>_<sys addr>_<component address>_fire`` (class
  ``gb26875_fire``: a fire alarm of the panel, raised by the ``gb26875.fire`` rule),
  ``…_fault`` (class ``fault``: ``device_status`` raises the fault) and ``…_state``
  (the raw 16-bit word, class ``gb26875_state``);
* type 1 system state → ``s<sys type>_<sys addr>_fire`` / ``_fault`` / ``_state``;
* type 21 UITD state → ``uitd_fire`` / ``uitd_fault`` / ``uitd_state``;
* type 3 analog value → ``c…_<point class>`` (``mapping.point_for_analog``: residual
  current mA, °C, %LEL, MPa, m, V, A), so threshold rules apply as to any sensor;
* the connection itself → ``link_fault`` (class ``fault``): true while the device is not
  connected (closed, idle timeout, link fault), false once it is admitted again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import msgspec

from firebus.sdk import DeviceReport, PointSpec, PushDriver, Reading, Transport
from firebus.sdk.rules import DeviceStatusRule
from firebus.sdk.vocab import AlarmCategory, Severity

from . import mapping
from .codec import Mode, decode
from .errors import CodecError
from .model import Adu, ComponentAnalog, ComponentState, SystemState, UitdState, address_int
from .server import CentreServer, ListenerConfig
from .session import (
    CONFIRM,
    DENY,
    NO_REPLY,
    Closed,
    Quarantine,
    Received,
    Reply,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
)
from .siteconfig import CentreOptions, parse_address, parse_tz
from .tables import Command

log = logging.getLogger("firebus.gb26875.centre")

MessageHandler = Callable[[str, bytes, Callable[[], None]], Awaitable[None]]

FIRE_BIT, FAULT_BIT = 0b10, 0b100
_SYSTEM_FAULTS = 0b11100000100  # fault, main/backup power, bus
_UITD_FAULTS = 0b1011100  # fault, main/backup power, line (not channel: the link itself is up)

#: gateway addresses per centre transport key, from the site file's gb26875.gateway devices
#: (filled by ``firebus_validate_site`` before the core starts)
GATEWAYS: dict[str, frozenset[bytes]] = {}

POINT_CLASSES = ["gb26875_fire", "gb26875_state"]


class CentreTransport(Transport):
    type_key = "gb26875.centre"
    Options = CentreOptions

    def __init__(self, key: str, options: CentreOptions, ctx: Any) -> None:
        super().__init__(key, options, ctx)
        self.options: CentreOptions = options
        self.tz = parse_tz(options.tz)
        self.server: CentreServer | None = None
        self._handlers: list[MessageHandler] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = {"uploads": 0, "confirmed": 0, "refused_unknown": 0, "quarantined": 0, "slow_core": 0}

    def subscribe(self, pattern: str, handler: MessageHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def allowed(self) -> frozenset[bytes]:
        if self.options.allow_addresses:
            return frozenset(parse_address(a) for a in self.options.allow_addresses)
        return GATEWAYS.get(self.key, frozenset())

    async def start(self) -> None:
        o = self.options
        session = SessionConfig(role=Role.CENTRE, local_address=parse_address(o.address), timeout=o.timeout,
                                resends=o.resends, idle_timeout=o.idle_timeout, rate=o.rate, burst=o.burst,
                                tz=self.tz, mode=Mode.STRICT if o.strict else Mode.TOLERANT)
        allowed = self.allowed()
        if not allowed:
            log.warning("gb26875 centre %s: no gateway configured and no allow_addresses: every device is refused",
                        self.key)
            allowed = frozenset({bytes(6)})  # nothing real matches: refuse all, never admit all
        config = ListenerConfig(host=o.host, port=o.port, session=session, allow_addresses=allowed,
                                allow_ips=tuple(o.allow_ips), max_connections=o.max_connections,
                                max_per_ip=o.max_per_ip)
        self.server = CentreServer(config, _Handler(self))
        await self.server.start()
        self.ctx.link_changed(True)
        log.info("gb26875 centre %s: listening on %s:%d", self.key, o.host, self.server.port)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counts)
        if self.server is not None:
            out.update(msgspec.structs.asdict(self.server.stats))
            out["connections"] = len(self.server.sessions)
            out["refused_unknown"] = self.server.stats.refused_address
        return out


class _Handler:
    """The centre role: uploads go to the core; confirm once durable."""

    def __init__(self, transport: CentreTransport) -> None:
        self.t = transport

    async def on_frame(self, session: Session, received: Received) -> Reply:
        frame = received.frame
        cmd = frame.header.command
        if cmd not in (Command.SEND_DATA, Command.CONTROL):
            return DENY if cmd == Command.REQUEST else NO_REPLY
        if frame.adu is None or not self.t._handlers:
            return CONFIRM
        self.t.counts["uploads"] += 1
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ack() -> None:
            loop.call_soon_threadsafe(lambda: done.done() or done.set_result(True))

        source = frame.header.source.hex().upper()
        topic = f"gb26875/{source}/{getattr(frame.adu, 'type', 'x')}"
        for handler in self.t._handlers:
            await handler(topic, received.raw, ack)
        try:
            # inside the device's resend timeout; a core slower than that gets the resend
            await asyncio.wait_for(asyncio.shield(done), max(1.0, self.t.options.timeout - 1.0))
        except asyncio.TimeoutError:
            self.t.counts["slow_core"] += 1
            return NO_REPLY  # the device resends; the duplicate gets our answer then
        self.t.counts["confirmed"] += 1
        return CONFIRM

    def on_peer(self, session: Session, address: bytes) -> bool:
        # the server checked the allow-list before this: the device is connected
        self._link(address, up=True)
        return True

    def _link(self, address: bytes, *, up: bool) -> None:
        """The device's connection as a reading of its ``link_fault`` point (a fault while down)."""
        if not self.t._handlers:
            return
        topic = f"gb26875/{address.hex().upper()}/link"
        payload = b"up" if up else b"down"

        async def push() -> None:
            for handler in self.t._handlers:
                await handler(topic, payload, lambda: None)

        task = asyncio.get_running_loop().create_task(push())
        self.t._tasks.add(task)
        task.add_done_callback(self.t._tasks.discard)

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        if isinstance(event, Closed) and session is not None and self.t.server is not None:
            for address, current in list(self.t.server.by_address.items()):
                if current is session:  # not replaced by a newer connection of the same device
                    self._link(address, up=False)
        if isinstance(event, Quarantine):
            self.t.counts["quarantined"] += 1
            log.warning("gb26875 centre %s: quarantined a frame from %s: [%s] %s", self.t.key,
                        session.peer if session else "?", event.code, event.en)


# ---------------------------------------------------------------------- driver

class GatewayOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Options of a ``gb26875.gateway`` device (its address is its ``identifiers.gb26875``)."""

    tz: str = "+08:00"
    #: honour state bit 0 (clear = test): a fire in test state then raises nothing
    honour_test_bit: bool = False


def _base(st: int, sa: int, addr: int) -> str:
    return f"c{st}_{sa}_{addr}"


class GatewayDriver(PushDriver):
    type_key = "gb26875.gateway"
    Options = GatewayOptions
    transports = ("gb26875.centre",)

    def __init__(self, options: GatewayOptions, ctx: Any) -> None:
        super().__init__(options, ctx)
        self.tz = parse_tz(options.tz)
        self.specs: dict[str, PointSpec] = {}

    def subscriptions(self) -> list[str]:
        return ["gb26875/#"]

    def _ts(self, tag: Any) -> float | None:
        when = tag.to_datetime(self.tz) if tag is not None else None
        return when.timestamp() if when is not None else None

    def _spec(self, key: str, point_class: str, unit: str = "", name: str = "", alarm: bool | None = None) -> None:
        if key not in self.specs:
            self.specs[key] = PointSpec(key=key, point_class=point_class, unit=unit, name=name, alarm=alarm)

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        if topic.endswith("/link"):  # the transport: the device's connection came or went
            self._spec("link_fault", "fault", name="与监控中心的连接中断 / connection to the centre lost", alarm=True)
            return [DeviceReport(identifiers={"gb26875": topic.split("/")[1]},
                                 readings=[Reading(point_key="link_fault", value=payload == b"down")])]
        try:
            decoded = decode(payload, Mode.TOLERANT)
        except CodecError as exc:
            raise ValueError(f"GB/T 26875.3 frame: {exc}") from None
        frame = decoded.frame
        adu = frame.adu
        if not isinstance(adu, Adu):
            return []
        readings: list[Reading] = []
        for obj in adu.objects:
            if isinstance(obj, ComponentState):
                base = _base(obj.system_type, obj.system_address, obj.component_address)
                name = obj.description_text
                readings += self._states(base, obj.state, self._ts(obj.time), name, FAULT_BIT)
            elif isinstance(obj, SystemState):
                base = f"s{obj.system_type}_{obj.system_address}"
                readings += self._states(base, obj.state, self._ts(obj.time), "", _SYSTEM_FAULTS)
            elif isinstance(obj, UitdState):
                readings += self._states("uitd", obj.state, self._ts(obj.time), "", _UITD_FAULTS)
            elif isinstance(obj, ComponentAnalog):
                got = mapping.point_for_analog(obj.analog_type, obj.raw)
                if got is None:
                    continue
                point_class, unit, value = got
                key = f"{_base(obj.system_type, obj.system_address, obj.component_address)}_{point_class}"
                self._spec(key, point_class, unit)
                readings.append(Reading(point_key=key, value=value, ts=self._ts(obj.time)))
        if not readings:
            return []
        return [DeviceReport(identifiers={"gb26875": frame.header.source.hex().upper()}, readings=readings)]

    def _states(self, base: str, state: int, ts: float | None, name: str, fault_mask: int) -> list[Reading]:
        fire = bool(state & FIRE_BIT)
        if fire and self.options.honour_test_bit and not state & 1:
            fire = False
        self._spec(f"{base}_fire", "gb26875_fire", name=name, alarm=True)
        self._spec(f"{base}_fault", "fault", name=name, alarm=True)
        self._spec(f"{base}_state", "gb26875_state", name=name, alarm=True)
        return [Reading(point_key=f"{base}_fire", value=fire, ts=ts),
                Reading(point_key=f"{base}_fault", value=bool(state & fault_mask), ts=ts),
                Reading(point_key=f"{base}_state", value=state, ts=ts)]

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return [self.specs.get(r.point_key) or PointSpec(key=r.point_key, point_class="gb26875_state")
                for r in report.readings]


class FireRule(DeviceStatusRule):
    """A fire alarm a fire panel or UITD reported: the panel already decided (confirmed fire)."""

    type_key = "gb26875.fire"
    defaults = {
        "gb26875_fire": {"on_true": {"name": "fire", "category": AlarmCategory.FIRE, "severity": Severity.FIRE,
                                     "message": "火警（GB/T 26875.3 上报）/ fire alarm reported over GB/T 26875.3"}},
    }


def gateway_addresses(site: dict[str, Any]) -> dict[str, frozenset[bytes]]:
    """Per centre transport key: the addresses of its configured gateway devices."""
    out: dict[str, set[bytes]] = {}
    for device in site.get("devices") or []:
        if not isinstance(device, dict) or device.get("driver") != GatewayDriver.type_key:
            continue
        ident = (device.get("identifiers") or {}).get("gb26875")
        if isinstance(ident, str) and len(ident) == 12:
            try:
                out.setdefault(str(device.get("transport") or ""), set()).add(bytes.fromhex(ident))
            except ValueError:
                pass
    return {k: frozenset(v) for k, v in out.items()}


def address_text(raw: bytes) -> str:
    return f"{address_int(raw)} (h:{raw.hex().upper()})"

