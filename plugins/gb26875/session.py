"""The application-level exchange of GB/T 26875.3 over one connection (§6.5), for both roles.

A ``Session`` owns one TCP connection (asyncio streams) and runs:

* **sending** — submissions from an ``Outbox`` (fire alarms first), each an exchange
  with its own serial (one counter per direction, from 0 when the connection is made):
  write, wait for confirm/response or deny, resend after ``timeout`` or a deny up to
  ``resends`` times, then report a link fault.  ``window`` exchanges may be open at
  once (1 = stop-and-wait, what centres expect); fire alarms have ``fire_window``
  slots of their own, so a fire alarm never waits behind an unanswered state upload.
* **receiving** — the stream framer, the codec (tolerant by default, so a wrong
  version byte never loses an alarm), replies matched to open exchanges by serial;
  controls, uploads and requests handed to the ``SessionHandler`` in arrival order,
  fire alarms in a lane of their own (so ``on_frame`` may run for a fire alarm while
  it is still busy with another frame), and answered with confirm / response / deny, serial echoed and
  addresses swapped.  Frames that fail their checks are denied and quarantined.
  A frame the peer resends (same serial and content) gets the same answer again
  without reaching the handler a second time.
* **link supervision** — heartbeat (UITD: empty cmd 2 when idle, every ``heartbeat``
  s, every ``heartbeat_abnormal`` s after a resend), patrol (centre: read-UITD-state
  request every ``patrol`` s), ``idle_timeout`` on silence, inbound rate limit.

Everything observable is reported to ``SessionHandler.on_event`` as a typed event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any, Callable, Hashable, Protocol

import msgspec

from .codec import DecodeOptions, Decoded, Mode, check_reply, decode, deny_for, encode, reply_frame
from .errors import CodecError, CodecWarning, Problem, error
from .framer import Framer, Rejected
from .model import (
    CST,
    MAX_FRAME,
    Adu,
    AnyAdu,
    Frame,
    Header,
    ReadUitdState,
    TimeTag,
    fire_in,
)
from .outbox import Outbox, Outcome, OutcomeStatus, Priority, Submission
from .tables import Command

log = logging.getLogger("firebus.gb26875")


class Role(StrEnum):
    UITD = "uitd"  # 用户信息传输装置: uploads, answers the centre
    CENTRE = "centre"  # 监控中心: confirms uploads, sends queries and controls


class SessionConfig(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    local_address: bytes
    #: the peer's 6-byte address; None (centre role): learnt from the first frame
    peer_address: bytes | None = None
    timeout: float = 10.0  # §6.5.4: ≤ 10 s
    resends: int = 3  # §6.5.5
    window: int = 1
    fire_window: int = 4
    heartbeat: float = 30.0  # UITD; 0 = off (field practice 20–30 s, pitfall 5)
    heartbeat_abnormal: float = 5.0
    #: UITD: send a heartbeat as soon as the connection is up, so the centre learns the address
    announce: bool = True
    patrol: float = 0.0  # centre; 0 = off (GB 50440: ≤ 2 h)
    idle_timeout: float = 0.0  # close after this long without a byte; 0 = off
    version: tuple[int, int] = (1, 1)
    echo_version: bool = True  # answer with the peer's version bytes (pitfall 1)
    mode: Mode = Mode.TOLERANT
    tz: tzinfo = CST
    max_clock_skew: float = 300.0
    max_event_age: float = 7 * 86400.0
    max_buffer: int = 8 * MAX_FRAME
    close_on_failure: bool = True
    rate: float = 0.0  # inbound frames per second (token bucket); 0 = unlimited
    burst: int = 100
    #: pitfalls that are denied and quarantined even in tolerant mode (checklist item 7: an ADU
    #: with more objects than its type allows); the others are accepted with their warnings
    deny_warnings: frozenset[Problem] = frozenset({Problem.COUNT_OVER_MAX})


class Received(msgspec.Struct, frozen=True, kw_only=True):
    frame: Frame
    raw: bytes
    warnings: tuple[CodecWarning, ...] = ()
    received_at: float  # epoch seconds, this host's clock
    fire: bool = False
    peer: str = ""


class ReplyKind(StrEnum):
    CONFIRM = "confirm"
    DENY = "deny"
    RESPOND = "respond"
    NONE = "none"


class Reply(msgspec.Struct, frozen=True):
    kind: ReplyKind
    adu: AnyAdu | None = None


CONFIRM = Reply(ReplyKind.CONFIRM)
DENY = Reply(ReplyKind.DENY)
NO_REPLY = Reply(ReplyKind.NONE)


def respond(adu: AnyAdu) -> Reply:
    return Reply(ReplyKind.RESPOND, adu)


# ----------------------------------------------------------------------- events

class SessionEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event"):
    at: float = msgspec.field(default_factory=time.time)


class Connected(SessionEvent, tag="connected"):
    peer: str


class Sent(SessionEvent, tag="sent"):
    serial: int
    command: int
    type: int | None = None
    priority: str = ""
    key: str | None = None
    attempt: int = 1
    hex: str = ""


class Answered(SessionEvent, tag="answered"):
    status: OutcomeStatus
    serial: int | None = None
    command: int = 0
    type: int | None = None
    key: str | None = None
    attempts: int = 0
    latency_ms: float | None = None


class Got(SessionEvent, tag="received"):
    serial: int
    command: int
    source: int
    type: int | None = None
    fire: bool = False
    duplicate: bool = False
    hex: str = ""
    warnings: list[str] = msgspec.field(default_factory=list)


class Replied(SessionEvent, tag="replied"):
    serial: int
    command: int
    hex: str = ""


class LinkFault(SessionEvent, tag="link_fault"):
    reason: str
    reason_zh: str = ""
    serial: int | None = None
    key: str | None = None


class Quarantine(SessionEvent, tag="quarantined"):
    code: str
    field: str
    offset: int | None
    en: str
    zh: str
    hex: str
    denied: bool


class Closed(SessionEvent, tag="closed"):
    reason: str


AnyEvent = Connected | Sent | Answered | Got | Replied | LinkFault | Quarantine | Closed


class SessionHandler(Protocol):
    """What a role plugs into a session."""

    async def on_frame(self, session: Session, received: Received) -> Reply:
        """A control (cmd 1), upload (cmd 2), request (cmd 4) or user command from the peer."""
        ...

    def on_peer(self, session: Session, address: bytes) -> bool:
        """A frame from a source address not seen on this connection: admit it?"""
        ...

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        """Everything observable (sent, answered, received, link fault, quarantine …);
        ``session`` is None for events of a client between connections."""
        ...


class BaseHandler:
    """Confirms controls and uploads, denies requests (no data to answer with)."""

    async def on_frame(self, session: Session, received: Received) -> Reply:
        cmd = received.frame.header.command
        if cmd in (Command.CONTROL, Command.SEND_DATA):
            return CONFIRM
        if cmd == Command.REQUEST:
            return DENY
        return NO_REPLY

    def on_peer(self, session: Session, address: bytes) -> bool:
        return True

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        return None


class SessionStats(msgspec.Struct):
    frames_in: int = 0
    frames_out: int = 0
    confirmed: int = 0
    responded: int = 0
    denies_received: int = 0
    denies_sent: int = 0
    timeouts: int = 0
    resends: int = 0
    failed: int = 0
    quarantined: int = 0
    duplicates: int = 0
    unsolicited: int = 0
    rate_limited: int = 0
    warnings: int = 0
    heartbeats: int = 0


class _Lane:
    def __init__(self) -> None:
        self.items: deque[tuple[Decoded, tuple[int, int, bytes], float]] = deque()
        self.event = asyncio.Event()


def validate(adu: AnyAdu | None, command: int, mode: Mode) -> None:
    """Raise ``EncodeError`` now, at submission, rather than when the frame is sent."""
    dummy = Header(serial=0, time=TimeTag(0, 0, 0, 1, 1, 0), source=bytes(6), destination=bytes(6), command=command)
    encode(Frame(dummy, adu), mode)


def _key_text(key: Hashable) -> str | None:
    return None if key is None else str(key)


def _type_of(adu: AnyAdu | None) -> int | None:
    return getattr(adu, "type", None)


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: SessionConfig,
                 handler: SessionHandler | None = None, *, outbox: Outbox | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self.config = config
        self.handler: SessionHandler = handler or BaseHandler()
        self.outbox = outbox if outbox is not None else Outbox()  # an empty Outbox is falsy
        self._now = now or (lambda: datetime.now(config.tz))
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        self.peer_address = config.peer_address
        self.peers: set[bytes] = set() if config.peer_address is None else {config.peer_address}
        self.stats = SessionStats()
        self.framer = Framer(config.max_buffer)
        self.abnormal = False
        self.close_reason = ""
        self._serial = 0
        self._waiting: dict[int, tuple[asyncio.Future[Frame], Header, int]] = {}
        self._open: dict[asyncio.Task[None], Submission] = {}
        self._fire_open = 0
        self._normal_open = 0
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        # received frames waiting for the handler: fire alarms in a lane of their own, so a
        # slow answer to a state upload never holds a fire alarm back (checklist item 9)
        self._inbound = {True: _Lane(), False: _Lane()}
        self._recent: OrderedDict[tuple[int, int, bytes], bytes | None] = OrderedDict()
        self._echo_later: dict[tuple[int, int, bytes], int] = {}
        loop = asyncio.get_running_loop()
        self._last_rx = loop.time()
        self._last_dispatch = loop.time()
        self._tokens = float(config.burst)
        self._token_time = loop.time()
        self._tasks: list[asyncio.Task[None]] = []
        self.outbox.subscribe(self._wake)

    # ------------------------------------------------------------------ public

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def submit(self, adu: AnyAdu | None, *, command: int = Command.SEND_DATA, priority: Priority | None = None,
               key: Hashable = None) -> Submission:
        validate(adu, command, self.config.mode)
        return self.outbox.put(Submission(adu, command=command, priority=priority, key=key))

    async def send(self, adu: AnyAdu | None, *, command: int = Command.SEND_DATA, priority: Priority | None = None,
                   key: Hashable = None) -> Outcome:
        return await self.submit(adu, command=command, priority=priority, key=key).outcome()

    async def request(self, adu: Adu, *, key: Hashable = None) -> Outcome:
        return await self.send(adu, command=Command.REQUEST, priority=Priority.ROUTINE, key=key)

    async def control(self, adu: Adu, *, key: Hashable = None) -> Outcome:
        return await self.send(adu, command=Command.CONTROL, priority=Priority.ROUTINE, key=key)

    def time_tag(self) -> TimeTag:
        return TimeTag.from_datetime(self._now(), self.config.tz)

    async def run(self) -> str:
        """Run until the connection closes; returns the reason."""
        self._emit(Connected(peer=self.peer))
        if self.config.role == Role.UITD and self.config.announce:
            self.outbox.put(Submission(None, command=Command.SEND_DATA, priority=Priority.ROUTINE, key="heartbeat",
                                       transient=True))
        self._tasks = [asyncio.create_task(self._guard(c)) for c in (
            self._read_loop(), self._dispatch_loop(), self._inbound_loop(self._inbound[True]),
            self._inbound_loop(self._inbound[False]), self._supervise_loop())]
        try:
            await self._closed.wait()
        finally:
            await self._shutdown()
        return self.close_reason

    def close(self, reason: str) -> None:
        if not self._closed.is_set():
            self.close_reason = reason
            self._closed.set()

    # ------------------------------------------------------------ internals

    def _emit(self, event: SessionEvent) -> None:
        try:
            self.handler.on_event(self, event)
        except Exception:  # an observer must not break the link
            log.exception("gb26875 event handler failed on %s", type(event).__name__)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("gb26875 session task failed")
            self.close(f"internal error: {exc!r}")

    async def _shutdown(self) -> None:
        self.outbox.unsubscribe(self._wake)
        tasks = self._tasks + list(self._open)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
        except (OSError, asyncio.TimeoutError):
            pass
        self._emit(Closed(reason=self.close_reason))

    async def _write(self, raw: bytes) -> None:
        if self.closed:
            raise ConnectionError("session closed")
        try:
            self.writer.write(raw)
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {exc}")
            raise ConnectionError(str(exc)) from exc
        self.stats.frames_out += 1

    def _next_serial(self) -> int:
        # unique while its exchange lives (§6.5), wrapping after 65535 [PRACTICE]
        for _ in range(0x10000):
            serial = self._serial
            self._serial = (self._serial + 1) & 0xFFFF
            if serial not in self._waiting:
                return serial
        raise RuntimeError("every serial number is in use")

    # --------------------------------------------------------------- sending

    async def _dispatch_loop(self) -> None:
        while True:
            sub = None
            if self._fire_open < self.config.fire_window:
                sub = self.outbox.pop(Priority.FIRE)
                if sub is not None:
                    self._fire_open += 1
                    self._start(sub, fire_slot=True)
                    continue
            if self._normal_open < self.config.window:
                sub = self.outbox.pop()
                if sub is not None:
                    self._normal_open += 1
                    self._start(sub, fire_slot=False)
                    continue
            self._wake.clear()
            await self._wake.wait()

    def _start(self, sub: Submission, *, fire_slot: bool) -> None:
        self._last_dispatch = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._exchange(sub, fire_slot))
        self._open[task] = sub
        task.add_done_callback(self._exchange_done)

    def _exchange_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # a bug, not a link problem: say so and end the connection rather than hang the slot
        log.error("gb26875 exchange failed", exc_info=task.exception())
        sub = self._open.pop(task, None)
        if sub is not None:
            sub.resolve(Outcome(status=OutcomeStatus.FAILED, key=sub.key, attempts=sub.attempts))
        self.close(f"internal error: {task.exception()!r}")

    def _slot_freed(self, task: asyncio.Task[None] | None, fire_slot: bool) -> None:
        if fire_slot:
            self._fire_open -= 1
        else:
            self._normal_open -= 1
        if task is not None:
            self._open.pop(task, None)
        self._wake.set()

    async def _exchange(self, sub: Submission, fire_slot: bool) -> None:
        task = asyncio.current_task()
        cfg = self.config
        serial = self._next_serial()
        main, user = cfg.version
        peer = self.peer_address or bytes(6)
        frame = Frame(Header(serial=serial, version_main=main, version_user=user, time=self.time_tag(),
                             source=cfg.local_address, destination=peer, command=sub.command), sub.adu)
        raw = encode(frame, Mode.TOLERANT)  # validated at submission
        expect = Command.RESPONSE if sub.command == Command.REQUEST else Command.CONFIRM
        sub.exchanges += 1
        loop = asyncio.get_running_loop()
        status: OutcomeStatus | None = None
        reply: Frame | None = None
        last_denied = False
        attempt = 0
        try:
            for attempt in range(1 + cfg.resends):
                fut: asyncio.Future[Frame] = loop.create_future()
                self._waiting[serial] = (fut, frame.header, expect)
                sub.attempts += 1
                if attempt:
                    self.stats.resends += 1
                await self._write(raw)
                if sub.adu is None and sub.command == Command.SEND_DATA:
                    self.stats.heartbeats += 1
                self._emit(Sent(serial=serial, command=sub.command, type=_type_of(sub.adu),
                                priority=sub.priority.name.lower(), key=_key_text(sub.key), attempt=attempt + 1,
                                hex=raw.hex().upper()))
                try:
                    answer = await asyncio.wait_for(fut, cfg.timeout)
                except asyncio.TimeoutError:
                    self.stats.timeouts += 1
                    self.abnormal = True
                    last_denied = False
                    continue
                if answer.header.command == Command.DENY:
                    self.stats.denies_received += 1
                    sub.denies += 1
                    self.abnormal = True
                    last_denied = True
                    continue
                reply = answer
                status = OutcomeStatus.RESPONDED if expect == Command.RESPONSE else OutcomeStatus.CONFIRMED
                break
        except asyncio.CancelledError:
            self._unfinished(sub, serial, task, fire_slot)
            raise
        except ConnectionError:
            self._unfinished(sub, serial, task, fire_slot)
            return
        self._waiting.pop(serial, None)
        latency = time.monotonic() - sub.submitted
        if status is not None:
            if attempt == 0:
                self.abnormal = False
            if status == OutcomeStatus.CONFIRMED:
                self.stats.confirmed += 1
            else:
                self.stats.responded += 1
            outcome = Outcome(status=status, key=sub.key, serial=serial, attempts=sub.attempts, denies=sub.denies,
                              latency=latency, reply=reply)
            sub.resolve(outcome)
            self._answered(sub, outcome)
            self._slot_freed(task, fire_slot)
            return
        final = OutcomeStatus.DENIED if last_denied else OutcomeStatus.FAILED
        self.stats.failed += 1
        if final == OutcomeStatus.DENIED:
            reason, reason_zh = f"denied {sub.denies} times", f"被否认 {sub.denies} 次"
        else:
            reason = f"no answer after {1 + cfg.resends} attempts of {cfg.timeout:g} s"
            reason_zh = f"发送 {1 + cfg.resends} 次（每次等待 {cfg.timeout:g} 秒）均无应答"
        self._emit(LinkFault(reason=reason, reason_zh=reason_zh, serial=serial, key=_key_text(sub.key)))
        outcome = Outcome(status=final, key=sub.key, serial=serial, attempts=sub.attempts, denies=sub.denies,
                          latency=latency)
        closing = final == OutcomeStatus.FAILED and cfg.close_on_failure
        if closing and self.outbox.persistent and not sub.transient:
            self.outbox.requeue(sub)  # sent again on the next connection
        else:
            sub.resolve(outcome)
            self._answered(sub, outcome)
        self._slot_freed(task, fire_slot)
        if closing:
            self.close(f"link fault: {reason}")

    def _unfinished(self, sub: Submission, serial: int, task: asyncio.Task[None] | None, fire_slot: bool) -> None:
        """The connection went away mid-exchange: back to a persistent outbox, or closed."""
        self._waiting.pop(serial, None)
        self._slot_freed(task, fire_slot)
        if self.outbox.persistent and not sub.transient:
            self.outbox.requeue(sub)
        else:
            sub.resolve(Outcome(status=OutcomeStatus.CLOSED, key=sub.key, serial=serial, attempts=sub.attempts,
                                denies=sub.denies))

    def _answered(self, sub: Submission, outcome: Outcome) -> None:
        self._emit(Answered(status=outcome.status, serial=outcome.serial, command=sub.command,
                            type=_type_of(sub.adu), key=_key_text(sub.key), attempts=outcome.attempts,
                            latency_ms=None if outcome.latency is None else round(outcome.latency * 1000, 3)))

    # ------------------------------------------------------------- receiving

    async def _read_loop(self) -> None:
        while True:
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError) as exc:
                self.close(f"read failed: {exc}")
                return
            if not data:
                for item in self.framer.close():
                    await self._on_chunk(item)
                self.close("peer closed the connection")
                return
            self._last_rx = asyncio.get_running_loop().time()
            for item in self.framer.feed(data):
                await self._on_chunk(item)

    async def _on_chunk(self, item: bytes | Rejected) -> None:
        now = time.time()
        if isinstance(item, Rejected):
            await self._quarantine(item.raw, item.error, deny=item.header and not item.garbage)
            return
        cfg = self.config
        opts = DecodeOptions(mode=cfg.mode, tz=cfg.tz, received_at=datetime.fromtimestamp(now, cfg.tz),
                             max_clock_skew=cfg.max_clock_skew, max_event_age=cfg.max_event_age)
        try:
            decoded = decode(item, options=opts)
        except CodecError as exc:
            await self._quarantine(item, exc, deny=True)
            return
        refused = next((w for w in decoded.warnings if w.code in cfg.deny_warnings), None)
        if refused is not None:
            await self._quarantine(item, error(refused.code, refused.field, refused.offset, refused.en, refused.zh),
                                   deny=True)
            return
        self.stats.frames_in += 1
        self.stats.warnings += len(decoded.warnings)
        h = decoded.frame.header
        if h.source not in self.peers:
            if not self.handler.on_peer(self, h.source):
                exc = error(Problem.VALUE, "source", 12, f"source address {h.source.hex().upper()} is not allowed",
                            f"源地址 {h.source.hex().upper()} 不在允许列表中")
                await self._quarantine(item, exc, deny=True)
                self.close(f"source address {h.source.hex().upper()} not allowed")
                return
            self.peers.add(h.source)
            if self.peer_address is None:
                self.peer_address = h.source
        if h.command in (Command.CONFIRM, Command.RESPONSE, Command.DENY):
            self._on_reply(decoded)
            return
        if not self._take_token():
            self.stats.rate_limited += 1
            await self._send_reply(decoded.frame.header, Command.DENY, None, key=None)
            return
        key = (h.command, h.serial, decoded.raw[27:-3])
        if key in self._recent:
            self.stats.duplicates += 1
            cached = self._recent[key]
            self._emit(self._got(decoded, duplicate=True))
            if cached is not None:
                await self._write_quiet(cached)
            else:  # the original is still with the handler: answer both when it is done
                self._echo_later[key] = self._echo_later.get(key, 0) + 1
            return
        self._recent[key] = None
        while len(self._recent) > 256:
            self._recent.popitem(last=False)
        fire = decoded.fire
        lane = self._inbound[fire]
        lane.items.append((decoded, key, now))
        lane.event.set()

    def _got(self, decoded: Decoded, *, duplicate: bool = False) -> Got:
        h = decoded.frame.header
        return Got(serial=h.serial, command=h.command, source=int.from_bytes(h.source, "little"),
                   type=_type_of(decoded.frame.adu), fire=decoded.fire, duplicate=duplicate,
                   hex=decoded.raw.hex().upper(), warnings=[f"{w.code}:{w.field}" for w in decoded.warnings])

    def _take_token(self) -> bool:
        if self.config.rate <= 0:
            return True
        now = asyncio.get_running_loop().time()
        self._tokens = min(float(self.config.burst), self._tokens + (now - self._token_time) * self.config.rate)
        self._token_time = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _on_reply(self, decoded: Decoded) -> None:
        h = decoded.frame.header
        entry = self._waiting.get(h.serial)
        self._emit(self._got(decoded))
        if entry is None:
            self.stats.unsolicited += 1
            return
        fut, request, expect = entry
        warnings = check_reply(request, h, Mode.TOLERANT)
        self.stats.warnings += len(warnings)
        if h.command not in (Command.DENY, expect):
            self.stats.unsolicited += 1
            return
        if not fut.done():
            fut.set_result(decoded.frame)

    @property
    def waiting(self) -> int:
        """Received frames not yet handed to the handler."""
        return sum(len(lane.items) for lane in self._inbound.values())

    async def _inbound_loop(self, lane: _Lane) -> None:
        while True:
            if not lane.items:
                lane.event.clear()
                await lane.event.wait()
                continue
            decoded, key, received_at = lane.items.popleft()
            self._emit(self._got(decoded))
            received = Received(frame=decoded.frame, raw=decoded.raw, warnings=decoded.warnings,
                                received_at=received_at, fire=decoded.fire, peer=self.peer)
            try:
                reply = await self.handler.on_frame(self, received)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gb26875 handler failed on serial %d", decoded.frame.header.serial)
                reply = DENY  # not taken in: the peer resends
            h = decoded.frame.header
            if reply.kind == ReplyKind.CONFIRM:
                await self._send_reply(h, Command.CONFIRM, None, key=key)
            elif reply.kind == ReplyKind.RESPOND:
                await self._send_reply(h, Command.RESPONSE, reply.adu, key=key)
            elif reply.kind == ReplyKind.DENY:
                await self._send_reply(h, Command.DENY, None, key=key)
            else:
                self._recent.pop(key, None)
                self._echo_later.pop(key, None)

    async def _send_reply(self, request: Header, command: int, adu: AnyAdu | None,
                          key: tuple[int, int, bytes] | None) -> None:
        version = None if self.config.echo_version else self.config.version
        source = self.config.local_address
        frame = reply_frame(request, command, time=self.time_tag(), adu=adu, version=version, source=source)
        try:
            raw = encode(frame, Mode.TOLERANT)
        except CodecError as exc:
            log.error("gb26875: cannot encode the reply to serial %d: %s", request.serial, exc)
            frame = reply_frame(request, Command.DENY, time=self.time_tag(), version=version, source=source)
            raw = encode(frame, Mode.TOLERANT)
            command = Command.DENY
        if key is not None:
            if command == Command.DENY:
                # a deny means "discarded": the peer's resend must be processed afresh
                self._recent.pop(key, None)
            else:
                self._recent[key] = raw
        if command == Command.DENY:
            self.stats.denies_sent += 1
        for _ in range(1 + (self._echo_later.pop(key, 0) if key is not None else 0)):
            await self._write_quiet(raw)
        self._emit(Replied(serial=request.serial, command=int(command), hex=raw.hex().upper()))

    async def _write_quiet(self, raw: bytes) -> None:
        try:
            await self._write(raw)
        except ConnectionError:
            pass

    async def _quarantine(self, raw: bytes, exc: CodecError, *, deny: bool) -> None:
        self.stats.quarantined += 1
        denied = False
        if deny:
            version = None if self.config.echo_version else self.config.version
            answer = deny_for(raw, time=self.time_tag(), version=version, source=self.config.local_address)
            if answer is not None:
                self.stats.denies_sent += 1
                await self._write_quiet(answer)
                denied = True
        self._emit(Quarantine(code=str(exc.code), field=exc.field, offset=exc.offset, en=exc.en, zh=exc.zh,
                              hex=bytes(raw).hex().upper(), denied=denied))

    # ------------------------------------------------------------ supervision

    async def _supervise_loop(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        last_patrol = loop.time()
        while True:
            now = loop.time()
            waits: list[float] = []
            if cfg.role == Role.UITD and cfg.heartbeat > 0:
                period = cfg.heartbeat_abnormal if self.abnormal else cfg.heartbeat
                due = self._last_dispatch + period
                if now >= due:
                    if not self._open and not self.outbox.has(lambda s: True):
                        self.outbox.put(Submission(None, command=Command.SEND_DATA, priority=Priority.ROUTINE,
                                                   key="heartbeat", transient=True))
                    self._last_dispatch = now
                    due = now + period
                waits.append(due - now)
            if cfg.role == Role.CENTRE and cfg.patrol > 0:
                due = last_patrol + cfg.patrol
                if now >= due:
                    self.outbox.put(Submission(Adu(81, (ReadUitdState(),)), command=Command.REQUEST,
                                               priority=Priority.ROUTINE, key="patrol", transient=True))
                    last_patrol = now
                    due = now + cfg.patrol
                waits.append(due - now)
            if cfg.idle_timeout > 0:
                silent = now - self._last_rx
                if silent >= cfg.idle_timeout:
                    self._emit(LinkFault(reason=f"nothing received for {silent:.0f} s",
                                         reason_zh=f"{silent:.0f} 秒内未收到任何数据"))
                    self.close(f"idle for {silent:.0f} s")
                    return
                waits.append(cfg.idle_timeout - silent)
            if not waits:
                return
            await asyncio.sleep(max(0.01, min(waits)))


__all__ = [
    "AnyEvent", "Answered", "BaseHandler", "CONFIRM", "Closed", "Connected", "DENY", "Got", "LinkFault", "NO_REPLY",
    "Quarantine", "Received", "Replied", "Reply", "ReplyKind", "Role", "Sent", "Session", "SessionConfig",
    "SessionEvent", "SessionHandler", "SessionStats", "fire_in", "respond", "validate",
]
