"""The uplink: firebus as the site's user information transmission device (用户信息传输装置).

A durable journal consumer (``ack="manual"``) feeding a ``UitdClient``: each entry
becomes zero, one or two upload ADUs (``outbound.Translator``) submitted with
``key=seq``; the entry is acknowledged to the journal only once the centre has
confirmed every frame of it (a deny after every resend is the centre's answer too:
acknowledged, counted and logged).  So a centre outage keeps the entries in the
client's persistent outbox (fire alarms first) and a restart delivers every
unconfirmed entry again — at least once, in order within a priority.

The centre's requests are answered from what the uplink last sent (component states
and analog values) and from the UITD's own state; clock sync is confirmed and its
offset recorded (the host clock is not set: NTP owns it); a duty check (查岗) is
journalled as ``DutyCheckRequested`` and answered with a type 24 record (bit 5) when
someone publishes ``DutyCheckAnswered`` (``Uplink.answer_duty_check``).

Link faults: when the link cannot be kept (connect failures, resends exhausted) a
``LinkChanged(transport="gb26875.uplink", up=False)`` is published; the alarm engine
raises the communication fault (通讯故障) after ``alarms.link_fault_after`` seconds and
clears it when a frame is confirmed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any, ClassVar

import msgspec

from firebus.sdk import (
    ActorKind,
    AlarmEvent,
    AvailabilityChanged,
    ConditionReported,
    Context,
    Event,
    Lane,
    LinkChanged,
    Payload,
    StateChanged,
    new_id,
)

from firebus.sdk.events import AlarmTransition

from .client import ClientConfig, Endpoint, UitdClient
from .model import (
    Adu,
    ComponentAnalog,
    ComponentConfiguration,
    ComponentState,
    DutyCheck,
    SyncClock,
    SystemConfiguration,
    SystemSoftwareVersion,
    SystemState,
    SystemTime,
    UitdConfiguration,
    UitdOperation,
    UitdSoftwareVersion,
    UitdState,
    UitdTime,
    MAX_COUNT,
    TimeTag,
)
from .outbound import FAULT, FIRE, NORMAL, SUPERVISORY, Translator
from .outbox import Outcome, OutcomeStatus, Submission
from .session import (
    CONFIRM,
    DENY,
    Answered,
    Connected,
    LinkFault,
    Received,
    Reply,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    respond,
)
from .siteconfig import UplinkConfig, parse_address, parse_tz
from .tables import Command, response_type

log = logging.getLogger("firebus.gb26875.uplink")

LINK = "gb26875.uplink"  # the name the uplink's link faults carry (LinkChanged.transport)
CONSUMER = "gb26875.uplink"
OP_DUTY_ANSWERED = 0b100000
DUTY_RULE = "gb26875.duty_check"  # ConditionReported source.key → the alarm's rule
DUTY_TIMEOUT_S = 600.0  # the prompt stays on the board for 10 minutes (GB 26875.1 practice)


class DutyCheckRequested(Payload):
    """The centre asked the duty officer to answer (查岗, type 91)."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "request_id"
    request_id: str
    parameter: int = 10
    centre: str = ""
    ts: float = msgspec.field(default_factory=time.time)


class DutyCheckAnswered(Payload):
    """The duty officer answered a duty check (the uplink sends the type 24 record)."""

    lane: ClassVar[Lane] = Lane.ALARM
    persist: ClassVar[bool] = True
    journal_key: ClassVar[str] = "request_id"
    request_id: str
    operator: int = 1
    by: str = ""


MIGRATIONS_SQL = """
CREATE TABLE IF NOT EXISTS gb26875_numbers (
  device_id TEXT NOT NULL,
  point_id TEXT NOT NULL,          -- '' for the device itself
  device_number INTEGER NOT NULL,
  point_number INTEGER NOT NULL,
  PRIMARY KEY (device_id, point_id)
);
"""


def _firebus_version() -> tuple[int, int]:
    try:
        parts = metadata.version("firebus").split(".")
        return int(parts[0]) & 0xFF, int(parts[1]) & 0xFF
    except Exception:
        return 0, 0


class Uplink:
    def __init__(self, core: Any, cfg: UplinkConfig) -> None:
        self.core = core
        self.cfg = cfg
        self.tz = parse_tz(cfg.tz)
        self.log = log
        session = SessionConfig(
            role=Role.UITD, local_address=parse_address(cfg.address), peer_address=parse_address(cfg.centre_address),
            timeout=cfg.timeout, resends=cfg.resends, window=cfg.window, fire_window=cfg.fire_window,
            heartbeat=cfg.heartbeat, tz=self.tz,
        )
        self.client_config = ClientConfig(centres=tuple(Endpoint(c.host, c.port) for c in cfg.centres),
                                          session=session, connect_timeout=cfg.connect_timeout,
                                          reconnect_max=cfg.reconnect_max)
        self.client: UitdClient | None = None
        self.consumer: Any = None
        self._numbers: dict[tuple[str, str], tuple[int, int]] = {}
        self._next_device = 1
        self._next_point: dict[str, int] = {}
        self._dirty: list[tuple[str, str, int, int]] = []
        self.translator = Translator(
            send=set(cfg.send), tz=self.tz, system_address=cfg.system_address, operator=cfg.operator,
            overrides=dict(cfg.devices), point_info=core.registry.point_info,
            points_of_device=core.registry.points_of_device, numbers=self._number, device_key=self._device_key,
            describe=cfg.describe,
        )
        self._pending: dict[int, int] = {}  # seq → frames not yet answered
        self.link_up: bool | None = None
        self.components: dict[tuple[int, int, int], ComponentState] = {}
        self.analogs: dict[tuple[int, int, int], dict[int, ComponentAnalog]] = {}
        self.systems: dict[tuple[int, int], int] = {}
        self.operations: list[UitdOperation] = []
        self.duty_requests: dict[str, float] = {}
        self.clock_offset = 0.0
        self.stats = {"entries": 0, "frames": 0, "confirmed": 0, "denied": 0, "skipped": 0, "duty_checks": 0,
                      "clock_syncs": 0, "queries": 0}
        self.stopped = asyncio.Event()
        self._unsubscribe: Any = None

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        rows = await self.core.storage.fetchall(
            "SELECT device_id, point_id, device_number, point_number FROM gb26875_numbers")
        for device_id, point_id, dn, pn in rows:
            self._numbers[(device_id, point_id)] = (int(dn), int(pn))
            self._next_device = max(self._next_device, int(dn) + 1)
            self._next_point[device_id] = max(self._next_point.get(device_id, 1), int(pn) + 1)
        self.client = UitdClient(self.client_config, self)
        self._unsubscribe = self.core.bus.subscribe("gb26875:duty", self._on_duty_answer, [DutyCheckAnswered])
        self.consumer = self.core.journal.subscribe(
            CONSUMER, self._on_entries, [AlarmEvent, StateChanged, AvailabilityChanged], ack="manual",
            max_unacked=self.cfg.max_unacked, initial="start")
        self.core.start_task(self._run, name="gb26875:uplink")

    async def _run(self) -> None:
        assert self.client is not None
        try:
            await self.client.run()
        finally:
            self.stopped.set()

    async def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer.save()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.client is not None:
            self.client.stop()
            try:
                await asyncio.wait_for(self.stopped.wait(), 5)
            except asyncio.TimeoutError:
                log.error("gb26875 uplink: client did not stop within 5 s")

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.stats)
        out["link_up"] = self.link_up
        out["outbox"] = len(self.client.outbox) if self.client is not None else 0
        out["unacked"] = self.consumer.unacked if self.consumer is not None else 0
        out["centre"] = str(self.client.endpoint) if self.client is not None and self.client.endpoint else None
        return out

    # ------------------------------------------------------------ numbering

    def _device_key(self, device_id: str) -> str | None:
        # the site-file key of a device: not in the SDK's RegistryAPI, read if the registry has it
        device = getattr(self.core.registry, "devices", {}).get(device_id)
        return getattr(device, "config_key", None) if device is not None else None

    def _number(self, device_id: str, point_id: str | None) -> tuple[int, int]:
        """(device number, point number), assigned once and stored (never renumbered)."""
        key = (device_id, point_id or "")
        got = self._numbers.get(key)
        if got is not None:
            return got
        dev = self._numbers.get((device_id, ""))
        if dev is None:
            dn = self._next_device
            self._next_device = min(dn + 1, 0xFFFF)
            dev = (dn, 0)
            self._numbers[(device_id, "")] = dev
            self._dirty.append((device_id, "", dn, 0))
        if point_id is None:
            return dev
        pn = self._next_point.get(device_id, 1)
        self._next_point[device_id] = min(pn + 1, 0xFFFF)
        self._numbers[key] = (dev[0], pn)
        self._dirty.append((device_id, point_id, dev[0], pn))
        return dev[0], pn

    # ------------------------------------------------------------- journal

    async def _on_entries(self, events: list[Event]) -> None:
        assert self.client is not None
        planned: list[tuple[Event, list[Adu]]] = []
        for event in events:
            data = event.data
            if (isinstance(data, AlarmEvent) and data.rule == DUTY_RULE and data.transition == AlarmTransition.ACKNOWLEDGED
                    and event.context.actor == ActorKind.USER and isinstance(data.value, str)
                    and data.value not in ("answered", "expired")):
                self.answer_duty_check(str(data.value), operator=self.cfg.operator, by=event.context.actor_id or "")
            try:
                adus = self.translator.adus(event.data, event.context.actor)
            except Exception:
                log.exception("gb26875 uplink: entry %s could not be translated; skipped", event.seq)
                adus = []
            planned.append((event, adus))
        if self._dirty:  # numbers are durable before any frame carries them
            dirty, self._dirty = self._dirty, []
            await self.core.storage.executemany(
                "INSERT OR IGNORE INTO gb26875_numbers (device_id, point_id, device_number, point_number)"
                " VALUES (?, ?, ?, ?)", dirty, lane=Lane.ALARM)
        for event, adus in planned:
            self.stats["entries"] += 1
            if not adus:
                self.stats["skipped"] += 1
                self.consumer.ack(event.seq)
                continue
            self._pending[event.seq] = len(adus)
            for adu in adus:
                self._remember(adu)
                sub = self.client.submit(adu, key=event.seq)
                self.stats["frames"] += 1
                sub.add_done_callback(self._answered)

    def _answered(self, sub: Submission, outcome: Outcome) -> None:
        seq = sub.key
        if not isinstance(seq, int):
            return
        if outcome.status == OutcomeStatus.CANCELLED or outcome.status == OutcomeStatus.CLOSED:
            return  # stopping: not acknowledged, delivered again after the restart
        if outcome.ok:
            self.stats["confirmed"] += 1
        else:
            self.stats["denied"] += 1
            log.error("gb26875 uplink: the centre refused entry %s (%s after %d attempts); not sent again",
                      seq, outcome.status, outcome.attempts)
        left = self._pending.get(seq, 1) - 1
        if left > 0:
            self._pending[seq] = left
            return
        self._pending.pop(seq, None)
        if self.consumer is not None:
            self.consumer.ack(seq)

    def _remember(self, adu: Adu) -> None:
        """What the centre's read requests are answered from."""
        for obj in adu.objects:
            if isinstance(obj, ComponentState):
                self.components[(obj.system_type, obj.system_address, obj.component_address)] = obj
                key = (obj.system_type, obj.system_address)
                states = [c.state for (st, sa, _), c in self.components.items() if (st, sa) == key]
                self.systems[key] = NORMAL | _or(s & (FIRE | FAULT | SUPERVISORY) for s in states)
            elif isinstance(obj, ComponentAnalog):
                self.analogs.setdefault((obj.system_type, obj.system_address, obj.component_address),
                                        {})[obj.analog_type] = obj

    # ------------------------------------------------------------ duty check

    def answer_duty_check(self, request_id: str = "", operator: int = 1, by: str = "") -> None:
        """The duty officer answered (the panel or a test calls this): journalled, then sent."""
        self.core.bus.publish(DutyCheckAnswered(request_id=request_id, operator=operator, by=by),
                              Context(actor=ActorKind.USER if by else ActorKind.PLUGIN, actor_id=by or "gb26875"))

    def _duty_prompt(self, request_id: str, *, active: bool, value: str = "") -> None:
        """The duty check as an alarm on the panel's board (supervisory): acknowledging it answers."""
        self.core.bus.publish(ConditionReported(
            source="gb26875", subject=f"duty:{request_id}", key="duty_check", active=active,
            value=value or request_id,
            message="duty check (查岗) from the monitoring centre: acknowledge this alarm to answer",
            message_zh="监控中心查岗：请确认此报警以应答"), Context(actor=ActorKind.PLUGIN, actor_id="gb26875"))

    async def _duty_expiry(self, request_id: str) -> None:
        await self.core.clock.sleep(DUTY_TIMEOUT_S)
        if self.duty_requests.pop(request_id, None) is not None:
            log.warning("gb26875 uplink: duty check %s not answered within %.0f s", request_id, DUTY_TIMEOUT_S)
            self._duty_prompt(request_id, active=False, value="expired")

    async def _on_duty_answer(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, DutyCheckAnswered) or self.client is None:
            return
        self.duty_requests.pop(data.request_id, None)
        self._duty_prompt(data.request_id, active=False, value="answered")  # also after a restart
        op = UitdOperation(operation=OP_DUTY_ANSWERED, operator=data.operator & 0xFF, time=self._tag())
        self.operations.append(op)
        del self.operations[:-200]
        self.client.submit(Adu(24, (op,)), key=f"duty:{data.request_id}")

    # ------------------------------------------------------ SessionHandler

    def _tag(self) -> TimeTag:
        return TimeTag.from_datetime(datetime.now(self.tz) + timedelta(seconds=self.clock_offset), self.tz)

    async def on_frame(self, session: Session, received: Received) -> Reply:
        frame = received.frame
        cmd = frame.header.command
        adu = frame.adu
        if cmd == Command.CONTROL and isinstance(adu, Adu):
            obj = adu.objects[0] if adu.objects else None
            if isinstance(obj, SyncClock):
                when = obj.time.to_datetime(self.tz)
                if when is not None:
                    self.clock_offset = (when - datetime.now(self.tz)).total_seconds()
                self.stats["clock_syncs"] += 1
                return CONFIRM
            if isinstance(obj, DutyCheck):
                self.stats["duty_checks"] += 1
                request_id = new_id()
                self.duty_requests[request_id] = time.time()
                self.core.bus.publish(
                    DutyCheckRequested(request_id=request_id, parameter=obj.parameter, centre=session.peer),
                    Context(actor=ActorKind.PLUGIN, actor_id="gb26875"))
                self._duty_prompt(request_id, active=True)
                self.core.start_task(self._duty_expiry, request_id, name="gb26875:duty")
                return CONFIRM
            return CONFIRM  # initialise (89): nothing to reset in firebus; confirmed
        if cmd == Command.REQUEST and isinstance(adu, Adu):
            self.stats["queries"] += 1
            answer = self.answer(adu)
            return respond(answer) if answer is not None else DENY
        if cmd in (Command.CONTROL, Command.SEND_DATA):
            return CONFIRM
        return DENY

    def answer(self, request: Adu) -> Adu | None:
        t = request.type
        out: list[Any] = []
        tag = self._tag()
        if t == 81:
            state = NORMAL
            out = [UitdState(state=state, time=tag)]
        elif t == 84:
            n = getattr(request.objects[0], "record_count", 1) if request.objects else 1
            out = list(self.operations[-n:])
        elif t == 85:
            major, minor = _firebus_version()
            out = [UitdSoftwareVersion(major=major, minor=minor)]
        elif t == 86:
            out = [UitdConfiguration(text="firebus 智慧消防 / firebus fire-safety monitoring".encode("gb18030"))]
        elif t == 88:
            out = [UitdTime(time=tag)]
        else:
            for obj in request.objects:
                st, sa = getattr(obj, "system_type", 0), getattr(obj, "system_address", 0)
                addr = getattr(obj, "component_address", None)
                if t == 61:
                    out.append(SystemState(system_type=st, system_address=sa, state=self.systems.get((st, sa), NORMAL),
                                           time=tag))
                elif t == 62:
                    c = self.components.get((st, sa, addr or 0))
                    if c is not None:
                        out.append(c)
                elif t == 63:
                    out += list(self.analogs.get((st, sa, addr or 0), {}).values())
                elif t == 65:
                    major, minor = _firebus_version()
                    out.append(SystemSoftwareVersion(system_type=st, system_address=sa, major=major, minor=minor))
                elif t == 66:
                    n = sum(1 for (s, a, _) in self.components if (s, a) == (st, sa))
                    out.append(SystemConfiguration(system_type=st, system_address=sa,
                                                   text=f"firebus {n} components".encode("gb18030")))
                elif t == 67:
                    c = self.components.get((st, sa, addr or 0))
                    if c is not None:
                        out.append(ComponentConfiguration(system_type=st, system_address=sa,
                                                          component_type=c.component_type,
                                                          component_address=c.component_address,
                                                          description=c.description))
                elif t == 68:
                    out.append(SystemTime(system_type=st, system_address=sa, time=tag))
        if not out:
            return None
        rtype = response_type(t)
        return Adu(rtype, tuple(out[: MAX_COUNT[rtype]]))

    def on_peer(self, session: Session, address: bytes) -> bool:
        return True

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        if isinstance(event, LinkFault):
            self._link(False, event.reason)
        elif isinstance(event, Answered) and event.status in (OutcomeStatus.CONFIRMED, OutcomeStatus.RESPONDED):
            self._link(True, "")
        elif isinstance(event, Connected):
            log.info("gb26875 uplink: connected to %s", event.peer)

    def _link(self, up: bool, reason: str) -> None:
        if self.link_up is up:
            return
        self.link_up = up
        if not up:
            log.warning("gb26875 uplink: link fault: %s", reason)
        self.core.bus.publish(LinkChanged(transport=LINK, up=up, reason=reason),
                              Context(actor=ActorKind.PLUGIN, actor_id="gb26875"))


def _or(values: Any) -> int:
    out = 0
    for v in values:
        out |= v
    return out
