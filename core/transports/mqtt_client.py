"""One MQTT session over asyncio: connect, keep alive, reconnect, and acknowledge by hand.

An ``asyncio.Protocol`` on the event loop's own socket (no thread, no
hand-over per message).  What it promises:

* **Persistent session.** Fixed client id; v5 ``clean_start=False`` with a
  session expiry, v3.1.1 ``clean_session=False``.  Every connect resubscribes
  (the broker may have lost the session) and reports whether the session was
  present.
* **Manual acknowledgement.** Inbound QoS 1/2 messages are acknowledged only
  when the application calls ``InboundMessage.ack()`` — PUBACK for QoS 1,
  PUBREC for QoS 2 (then PUBREL → PUBCOMP; a re-sent PUBLISH whose PUBREC is
  out is not delivered twice).  An ack from an earlier *connection
  generation* is dropped and counted (``stale_acks``): the broker redelivers
  that message, and after a reconnect the same packet id may name another one.
* **Batched acks.** Acks requested during one loop iteration are joined and go
  out in one socket write (``call_soon``).
* **Backpressure.** Every message handed over holds a slot until acked (QoS 0
  too: ``ack`` only releases the slot).  At ``max_held`` slots the session
  stops parsing and pauses reading the socket; it resumes once acks bring the
  count down to ``resume_held``.  This bounds memory whatever the broker does
  with Receive Maximum (Mosquitto 2.0.11 stops honouring it once acks flow).
  Time spent paused is counted (``paused_s``).
* **Dead-link detection.** A PINGREQ goes out every ``keepalive / 2`` s; a
  link that has delivered no byte for ``keepalive`` s after a PINGREQ is
  aborted (a SIGSTOPped broker keeps the socket open, so only silence tells).
  While paused by backpressure the socket is not read, so silence then proves
  nothing and is not judged; a broker that died still shows as a failed write.
* **Reconnect** with exponential back-off between ``reconnect_min`` and
  ``reconnect_max`` (with 10 % jitter so many clients do not stampede).
* **Outbound publishes** QoS 0/1/2 with a confirmation future each, kept in
  memory across reconnects (re-sent with DUP), at most the server's Receive
  Maximum in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import OrderedDict, deque
from typing import Callable, Final, Literal

import msgspec

from .mqtt_wire import (
    PINGREQ,
    PUBACK_HEAD,
    PUBCOMP_HEAD,
    PUBREC_HEAD,
    PUBREL_HEAD,
    Ack,
    Connack,
    Decoder,
    Disconnect,
    MqttCodecError,
    PacketType,
    Pingresp,
    Prop,
    Publish,
    RetainHandling,
    Suback,
    Unsuback,
    encode_connect,
    encode_disconnect,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
    set_dup,
)

from firebus.sdk.events import Lane

log = logging.getLogger(__name__)

#: messages handed over per turn of the event loop (a burst is handed over in slices)
HANDOVER_CHUNK = 128

# v3.1.1 CONNACK return codes (§3.2.2.3); v5 reason codes are listed in §3.2.2.2.
_V3_REFUSALS: Final = {1: "unacceptable protocol version", 2: "client identifier rejected", 3: "server unavailable",
                       4: "bad user name or password", 5: "not authorised"}
_V5_REASONS: Final = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
    0x87: "not authorised", 0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
    0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
    0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
    0x93: "receive maximum exceeded", 0x94: "topic alias invalid", 0x95: "packet too large",
    0x96: "message rate too high", 0x97: "quota exceeded", 0x98: "administrative action",
    0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "QoS not supported",
    0x9C: "use another server", 0x9D: "server moved", 0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded", 0xA0: "maximum connect time", 0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


def reason_text(code: int, version: int = 5) -> str:
    if version == 4:
        return _V3_REFUSALS.get(code, f"return code {code}")
    return f"{_V5_REASONS.get(code, 'reason')} ({code:#04x})"


class MqttError(Exception):
    """Base of MQTT client and hub errors."""


class MqttPublishError(MqttError):
    """A publish was refused (queue full, not accepted, not connected) or not confirmed in time."""


class MqttConnectError(MqttError):
    """The broker refused the connection, or did not answer CONNECT in time."""


class SessionConfig(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str
    version: Literal[4, 5] = 5
    session_expiry: int = 7 * 24 * 3600  # v5; v3.1.1 sessions live as long as the broker keeps them
    keepalive: int = 3
    receive_maximum: int = 1000
    max_packet_size: int = 1 << 20
    subscribe_qos: Literal[0, 1, 2] = 1
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    reconnect_min: float = 1.0
    reconnect_max: float = 10.0
    connect_timeout: float = 10.0
    #: unacknowledged inbound messages held before reading stops (0 → 2 × receive_maximum)
    max_held: int = 0
    lane: Lane = Lane.TELEMETRY


class InboundMessage(Publish):
    """A message handed to the application: the PUBLISH packet itself plus delivery state.

    ``ack()`` may be called any time later, any number of times (only the first
    counts).  It must be called for every message, QoS 0 too: that releases the
    message's backpressure slot.  Call it on the event loop's thread (not thread-safe:
    a writer thread hands its commit result back with ``call_soon_threadsafe``).
    """

    __slots__ = ("received", "lane", "_owner", "_gen", "_acked")
    received: float  # time.time() when read from the socket
    lane: Lane

    def ack(self) -> None:
        if self._acked:
            return
        self._acked = True
        self._owner._ack(self)

    @property
    def acked(self) -> bool:
        return self._acked

    def share(self, n: int) -> list["InboundMessage"]:
        """``n`` copies for ``n`` owners; the message is acknowledged once every copy is."""
        group = _AckGroup(self, n)
        out = []
        for _ in range(n):
            c = InboundMessage(self.topic, self.payload, self.qos, self.dup, self.retain, self.packet_id,
                               self.properties)
            c.received = self.received
            c.lane = self.lane
            c._owner = group
            c._gen = self._gen
            c._acked = False
            out.append(c)
        return out


class _AckGroup:
    __slots__ = ("message", "remaining")

    def __init__(self, message: InboundMessage, n: int) -> None:
        self.message = message
        self.remaining = n

    def _ack(self, copy: InboundMessage) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.message.ack()


class _Outbound:
    __slots__ = ("packet_id", "frame", "qos", "future", "state")

    def __init__(self, packet_id: int, frame: bytes, qos: int, future: asyncio.Future[None]) -> None:
        self.packet_id = packet_id
        self.frame = frame
        self.qos = qos
        self.future = future
        self.state = 0  # 0 queued, 1 PUBLISH sent, 2 PUBREL sent (QoS 2)


MessagesCallback = Callable[["MqttSession", list[InboundMessage]], None]
LinkCallback = Callable[["MqttSession", bool, str], None]
ConnectedCallback = Callable[["MqttSession", bool], None]


class MqttSession(asyncio.Protocol):
    """One MQTT session (one client id, one socket at a time)."""

    def __init__(self, config: SessionConfig, *, on_messages: MessagesCallback, on_link: LinkCallback,
                 on_connected: ConnectedCallback | None = None, logger: logging.Logger | None = None) -> None:
        self.config = config
        self.log = logger or log
        self._on_messages = on_messages
        self._on_link = on_link
        self._on_connected = on_connected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._decoder = Decoder(config.version, max_packet_size=config.max_packet_size, publish_cls=InboundMessage)
        self._gen = 0
        self._stopping = False
        self._closing = False
        self._connected = False
        self._connected_ev = asyncio.Event()
        self._subscribed_ev = asyncio.Event()
        self._connack: asyncio.Future[Connack] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._lost_reason = ""
        self._keepalive = float(config.keepalive)
        self._ka_timer: asyncio.TimerHandle | None = None
        self._last_rx = 0.0
        self._ping_at = 0.0
        self._last_ping_tx = 0.0
        # subscriptions: filter → QoS; pending SUBSCRIBE/UNSUBSCRIBE packet ids
        self._subs: dict[str, int] = {}
        self._sub_waiting: dict[int, list[str]] = {}
        self._initial_subs: set[int] = set()
        # inbound state
        self.max_held = config.max_held or 2 * config.receive_maximum
        self.resume_held = max(0, self.max_held - max(1, config.receive_maximum // 2))
        self._held = 0
        self._paused = False
        self._paused_since = 0.0
        self._resume_scheduled = False
        self._more_scheduled = False
        self._held_off = False  # held by the core (alarms first), not by backpressure
        # read-ahead bound (bytes received, not yet parsed): room for two whole packets
        self._read_ahead = 2 * config.max_packet_size
        self._read_full = False
        self.read_pauses = 0
        self.max_read_ahead = 0  # most bytes read and not yet parsed: the bound + one socket read
        self._held_since = 0.0
        self.holds = 0
        self.held_off_s = 0.0
        self._ack_buf = bytearray()
        self._flush_scheduled = False
        self._qos2_received: set[int] = set()  # PUBREC sent, PUBREL awaited (survives reconnects)
        # outbound state
        self._out: OrderedDict[int, _Outbound] = OrderedDict()  # every unsettled QoS 1/2 publish
        self._queued: deque[_Outbound] = deque()  # not yet sent (window full or disconnected)
        self._next_pid = 0
        self._server_receive_max = 65535
        self._inflight = 0
        # counters
        self.received = 0
        self.acked = 0
        self.stale_acks = 0
        self.max_unacked_held = 0
        self.paused_total = 0.0
        self.pauses = 0
        self.connects = 0
        self.failed_attempts = 0  # connect attempts that failed (refused, timed out, no CONNACK)
        self.last_error = ""
        self.next_attempt_in = 0.0
        self._streak = 0  # failed attempts since the last working connection (numbers the log lines)
        self.protocol_errors = 0
        self.subscribe_failures = 0
        self.session_present: bool | None = None
        self.published = 0

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def held(self) -> int:
        """Inbound messages handed over and not yet acknowledged."""
        return self._held

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def paused_s(self) -> float:
        extra = time.monotonic() - self._paused_since if self._paused else 0.0
        return self.paused_total + extra

    def start(self) -> None:
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._runner = self._loop.create_task(self._run(), name=f"mqtt-{self.config.client_id}")

    async def stop(self, timeout: float = 5.0) -> None:
        """DISCONNECT (the broker keeps the session: expiry > 0) and close."""
        self._stopping = True
        t = self._transport
        if not self._connected and self._runner is not None:
            self._runner.cancel()  # connecting or backing off: nothing to say goodbye to
        if t is not None and self._connected:
            self._flush_acks()
            self._closing = True
            lost = self._lost
            try:
                t.write(encode_disconnect(version=self.config.version))
                if self._paused:
                    t.resume_reading()
                if t.can_write_eof():
                    t.write_eof()
            except Exception:
                t.close()
            # Let the broker close after DISCONNECT, reading (and discarding) what it still
            # sends: closing with unread bytes makes the kernel send RST, and a RST can make
            # the broker drop our last PUBACKs unread (seen under load).
            if lost is not None and not lost.done():
                await asyncio.wait({lost}, timeout=min(timeout, 2.0))
            if self._transport is not None:
                self._transport.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await asyncio.wait({runner}, timeout=timeout)  # never raises: the runner's fate is its own
            if not runner.done():
                runner.cancel()
                try:
                    await runner
                except BaseException:
                    pass
        if self._transport is not None:
            self._transport.abort()
        for out in self._out.values():
            if not out.future.done():
                out.future.set_exception(MqttPublishError(f"{self.config.client_id}: session stopped"))
        self._out.clear()
        self._queued.clear()
        self._inflight = 0

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected_ev.wait(), timeout)

    async def wait_subscribed(self, timeout: float) -> None:
        """Connected, and the SUBACKs of the subscriptions sent on connect are in."""
        await asyncio.wait_for(self._subscribed_ev.wait(), timeout)

    def subscribe(self, filters: list[str]) -> None:
        new = [f for f in filters if f not in self._subs]
        for f in new:
            self._subs[f] = self.config.subscribe_qos
        if new and self._connected:
            self._send_subscribe(new)

    def unsubscribe(self, filters: list[str]) -> None:
        gone = [f for f in filters if self._subs.pop(f, None) is not None]
        if gone and self._connected and self._transport is not None:
            pid = self._alloc_pid()
            self._sub_waiting[pid] = gone
            self._write(encode_unsubscribe(pid, gone, version=self.config.version))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> asyncio.Future[None]:
        """Send a PUBLISH; the future resolves on PUBACK / PUBCOMP (QoS 0: once written).

        Raises ``MqttCodecError`` for a topic that cannot be published to and
        ``MqttPublishError`` for QoS 0 while disconnected.  QoS 1/2 publishes
        are kept while disconnected and sent after reconnecting; the caller
        bounds how many it leaves pending.
        """
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if qos == 0:
            frame = encode_publish(topic, payload, qos=0, retain=retain, version=self.config.version)
            if not self._connected:
                raise MqttPublishError(f"{self.config.client_id}: not connected; QoS 0 publish to {topic!r} dropped")
            self._write(frame)
            self.published += 1
            fut.set_result(None)
            return fut
        pid = self._alloc_pid()
        frame = encode_publish(topic, payload, qos=qos, retain=retain, packet_id=pid, version=self.config.version)
        out = _Outbound(pid, frame, qos, fut)
        self._out[pid] = out
        if self._connected and self._inflight < self._server_receive_max and not self._queued:
            self._send_outbound(out)
        else:
            self._queued.append(out)
        return fut

    def stats(self) -> dict[str, object]:
        return {
            "client_id": self.config.client_id,
            "lane": str(self.config.lane),
            "connected": self._connected,
            "session_present": self.session_present,
            "received": self.received,
            "acked": self.acked,
            "unacked_held": self._held,
            "max_unacked_held": self.max_unacked_held,
            "max_held": self.max_held,
            "paused": self._paused,
            "paused_s": round(self.paused_s, 3),
            "pauses": self.pauses,
            # reading stopped because bytes not yet handed over reached the read-ahead bound
            "read_ahead_bytes": self._decoder.pending,
            "read_pauses": self.read_pauses,
            "max_read_ahead_bytes": self.max_read_ahead,
            "held_off": self._held_off,
            "held_off_s": round(self.held_off_s, 3),
            "holds": self.holds,
            "stale_acks": self.stale_acks,
            "connects": self.connects,
            "reconnects": max(0, self.connects - 1),
            "failed_attempts": self.failed_attempts,
            "last_error": self.last_error,
            "next_attempt_in_s": self.next_attempt_in,
            "protocol_errors": self.protocol_errors,
            "subscribe_failures": self.subscribe_failures,
            "publishes_pending": len(self._out),
        }

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        c = self.config
        delay = c.reconnect_min
        while not self._stopping:
            try:
                await self._connect_once()
                delay = c.reconnect_min  # had a working connection: start the back-off afresh
            except asyncio.CancelledError:
                raise
            except MqttConnectError as exc:
                self._attempt_failed(str(exc))
            except (OSError, asyncio.TimeoutError, ssl.SSLError, EOFError) as exc:
                what = "timed out" if isinstance(exc, asyncio.TimeoutError) else (str(exc) or type(exc).__name__)
                self._attempt_failed(f"cannot connect to {c.host}:{c.port}: {what}")
            if self._stopping:
                break
            pause = delay * random.uniform(0.9, 1.1)
            self.next_attempt_in = round(pause, 2)
            await asyncio.sleep(pause)
            delay = min(c.reconnect_max, delay * 2)

    def _attempt_failed(self, reason: str) -> None:
        # The link callback reports only changes (the link is already down); each failed
        # attempt is still worth a line, or a session that never comes back says nothing.
        self.failed_attempts += 1
        self._streak += 1
        self.last_error = reason
        self.log.info("%s: connect attempt %d failed: %s", self.config.client_id, self._streak, reason)
        self._link(False, reason)

    async def _connect_once(self) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        self._lost = loop.create_future()
        self._connack = loop.create_future()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self, c.host, c.port, ssl=c.ssl_context,
                                       server_hostname=(c.server_hostname or c.host) if c.ssl_context else None),
                c.connect_timeout)
            self._write(encode_connect(
                c.client_id, version=c.version, clean_start=False, keepalive=c.keepalive,
                session_expiry=c.session_expiry if c.version == 5 else 0,
                receive_maximum=c.receive_maximum if c.version == 5 else 65535,
                maximum_packet_size=c.max_packet_size if c.version == 5 else 0,
                username=c.username, password=c.password))
            done, _ = await asyncio.wait({self._connack, self._lost}, timeout=c.connect_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if self._connack.done() and not self._connack.cancelled():
                ack = self._connack.result()
            elif self._lost.done():
                raise MqttConnectError(f"broker closed the connection before CONNACK: {self._lost_reason}")
            else:
                raise MqttConnectError(f"no CONNACK from {c.host}:{c.port} within {c.connect_timeout:g}s")
            if ack.reason:
                raise MqttConnectError(f"broker refused connection: {reason_text(ack.reason, c.version)}")
            if self._lost.done():
                raise MqttConnectError(f"connection lost right after CONNACK: {self._lost_reason}")
            self._on_connack(ack)
            await self._lost
            if not self._stopping:
                self._link(False, self._lost_reason or "connection lost")
        finally:
            t = self._transport
            if t is not None and (self._lost is None or not self._lost.done()):
                t.abort()
                if self._lost is not None:
                    await asyncio.shield(self._lost)

    def _on_connack(self, ack: Connack) -> None:
        c = self.config
        self.connects += 1
        self._streak = 0
        self.session_present = ack.session_present
        props = ack.properties
        self._server_receive_max = int(props.get(Prop.RECEIVE_MAXIMUM, 65535))  # type: ignore[arg-type]
        ka = props.get(Prop.SERVER_KEEP_ALIVE)
        self._keepalive = float(ka) if isinstance(ka, int) and ka > 0 else float(c.keepalive)
        self._connected = True
        self._connected_ev.set()
        self._last_rx = time.monotonic()
        self._ping_at = 0.0
        self._last_ping_tx = 0.0
        self._schedule_keepalive()
        # Resubscribe every time: the session may have expired or the broker lost it.
        self._initial_subs.clear()
        if self._subs:
            self._initial_subs.update(self._send_subscribe(list(self._subs)))
        if not self._initial_subs:
            self._subscribed_ev.set()
        # Outbound publishes kept while away: resend in order (DUP if sent before), then the queue.
        self._inflight = 0
        queued: deque[_Outbound] = deque()
        for out in self._out.values():
            if out.state == 2 or (out.state == 1 and self._inflight < self._server_receive_max):
                self._send_outbound(out, resend=True)
            else:
                out.state = 0  # beyond the server's window now: sent afresh when there is room
                queued.append(out)
        self._queued = queued
        self._send_queued()
        if self._on_connected is not None:
            self._on_connected(self, ack.session_present)
        self._link(True, "")

    def _link(self, up: bool, reason: str) -> None:
        try:
            self._on_link(self, up, reason)
        except Exception:
            self.log.exception("%s: link callback failed", self.config.client_id)

    # ------------------------------------------------------------------ protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._closing = False
        self._gen += 1
        self._decoder.reset()
        self._read_full = False
        self._ack_buf.clear()
        self._lost_reason = ""
        if self._paused:
            # held slots still count (the application holds those messages), but the new
            # socket starts reading only once there is room.
            transport.pause_reading()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._gen += 1  # acks from here on belong to a dead connection
        self._connected = False
        self._connected_ev.clear()
        self._subscribed_ev.clear()
        self._ack_buf.clear()
        self._sub_waiting.clear()
        self._decoder.reset()
        if self._ka_timer is not None:
            self._ka_timer.cancel()
            self._ka_timer = None
        if not self._lost_reason:
            self._lost_reason = f"connection lost: {exc}" if exc else "connection closed by the broker"
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._connack is not None and not self._connack.done():
            self._connack.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # after our DISCONNECT: nothing more is handed over
        self._last_rx = time.monotonic()
        dec = self._decoder
        dec.feed(data)
        pending = dec.pending
        if pending > self.max_read_ahead:
            self.max_read_ahead = pending
        if pending > self._read_ahead:
            # Bytes read but not yet handed over are bounded too: Mosquitto 2.0.11 ignores
            # Receive Maximum, and while we hand over in slices it would fill our memory.
            # Stop reading; the broker keeps the rest (TCP backpressure) until _process drains.
            if not self._read_full:
                self._read_full = True
                self.read_pauses += 1
            t = self._transport
            if t is not None:
                t.pause_reading()
        if not self._paused and not self._held_off and not self._more_scheduled:
            self._process()

    def eof_received(self) -> bool | None:
        self._lost_reason = "broker closed the connection"
        return None

    def _abort(self, reason: str) -> None:
        self._lost_reason = reason
        t = self._transport
        if t is not None:
            t.abort()

    # ------------------------------------------------------------------ inbound

    def _process(self) -> None:
        """Parse buffered packets and hand the messages over, up to the held bound."""
        dec = self._decoder
        nxt = dec.next
        gen = self._gen
        lane = self.config.lane
        bound = self.max_held
        held = self._held
        out: list[InboundMessage] = []
        now = time.time()
        error: MqttCodecError | None = None
        budget = HANDOVER_CHUNK
        while True:
            if len(out) >= budget:
                # Yield to the event loop between chunks: a telemetry burst is handed over in
                # slices, so an alarm's next step never waits for thousands of messages.
                if not self._more_scheduled:
                    self._more_scheduled = True
                    self._loop.call_soon(self._process_more)  # type: ignore[union-attr]
                break
            if held >= bound:
                if out:
                    # Hand over what we have: a handler that acks at once makes room, and
                    # reading goes on without a pause/resume round trip.
                    self._held = held
                    self._deliver(out)
                    out = []
                    held = self._held
                    if held < bound:
                        continue
                self._pause()
                break
            try:
                pkt = nxt()
            except MqttCodecError as exc:
                error = exc
                break
            if pkt is None:
                break
            if pkt.__class__ is InboundMessage:
                if pkt.qos == 2 and pkt.packet_id in self._qos2_received:
                    # PUBREC already sent for it: a resend, not a new message (§4.3.3 method B).
                    self._queue_ack(PUBREC_HEAD, pkt.packet_id)
                    continue
                pkt.received = now
                pkt.lane = lane
                pkt._owner = self
                pkt._gen = gen
                pkt._acked = False
                held += 1
                out.append(pkt)
            else:
                self._control(pkt)  # type: ignore[arg-type]
        self._held = held
        if out:
            self._deliver(out)
        if self._read_full and dec.pending <= self._read_ahead // 2 and error is None:
            self._read_full = False
            t = self._transport
            if t is not None and not self._paused and not self._held_off and not self._closing:
                t.resume_reading()
        if error is not None:
            self.protocol_errors += 1
            self.log.error("%s: malformed packet from the broker, dropping the connection: %s",
                           self.config.client_id, error)
            self._abort(f"malformed packet from the broker: {error}")

    def _process_more(self) -> None:
        self._more_scheduled = False
        if not self._paused and not self._held_off and not self._closing:
            self._process()

    def hold(self) -> None:
        """Stop taking messages for now (alarms first: the core holds telemetry off while an
        alarm is being handled); the broker keeps them.  ``release`` resumes."""
        if self._held_off:
            return
        self._held_off = True
        self.holds += 1
        self._held_since = time.monotonic()
        t = self._transport
        if t is not None and not self._paused:
            t.pause_reading()

    def release(self) -> None:
        if not self._held_off:
            return
        self._held_off = False
        self.held_off_s += time.monotonic() - self._held_since
        self._last_rx = time.monotonic()  # silence while we were not reading proves nothing
        self._ping_at = 0.0
        if not self._paused:
            t = self._transport
            if t is not None and not self._read_full:
                t.resume_reading()
            if not self._more_scheduled and self._loop is not None:
                self._more_scheduled = True
                self._loop.call_soon(self._process_more)

    def _deliver(self, out: list[InboundMessage]) -> None:
        if self._held > self.max_unacked_held:
            self.max_unacked_held = self._held
        self.received += len(out)
        try:
            self._on_messages(self, out)
        except Exception:
            self.log.exception("%s: message callback failed", self.config.client_id)

    def _control(self, pkt: Ack | Connack | Suback | Unsuback | Pingresp | Disconnect) -> None:
        kind = pkt.type
        if kind == PacketType.PUBACK or kind == PacketType.PUBCOMP:
            out = self._out.pop(pkt.packet_id, None)  # type: ignore[union-attr]
            if out is None:
                return
            if out.state:
                self._inflight -= 1
            if not out.future.done():
                if pkt.reason >= 0x80:  # type: ignore[union-attr]
                    out.future.set_exception(MqttPublishError(
                        f"{self.config.client_id}: broker refused publish: {reason_text(pkt.reason)}"))  # type: ignore[union-attr]
                else:
                    out.future.set_result(None)
            self.published += 1
            self._send_queued()
        elif kind == PacketType.PUBREC:
            out = self._out.get(pkt.packet_id)  # type: ignore[union-attr]
            if out is None:
                self._queue_ack(PUBREL_HEAD, pkt.packet_id)  # type: ignore[union-attr]
                return
            if pkt.reason >= 0x80:  # type: ignore[union-attr]
                del self._out[out.packet_id]
                self._inflight -= 1
                if not out.future.done():
                    out.future.set_exception(MqttPublishError(
                        f"{self.config.client_id}: broker refused publish: {reason_text(pkt.reason)}"))  # type: ignore[union-attr]
                self._send_queued()
                return
            out.state = 2
            self._queue_ack(PUBREL_HEAD, out.packet_id)
        elif kind == PacketType.PUBREL:
            self._qos2_received.discard(pkt.packet_id)  # type: ignore[union-attr]
            self._queue_ack(PUBCOMP_HEAD, pkt.packet_id)  # type: ignore[union-attr]
        elif kind == PacketType.PINGRESP:
            pass  # data_received already noted the broker alive
        elif kind == PacketType.SUBACK:
            filters = self._sub_waiting.pop(pkt.packet_id, [])  # type: ignore[union-attr]
            for f, code in zip(filters, pkt.codes):  # type: ignore[union-attr]
                if code >= 0x80:
                    self.subscribe_failures += 1
                    self.log.error("%s: broker refused subscription %r: %s", self.config.client_id, f,
                                   reason_text(code) if self.config.version == 5 else "failure")
            self._initial_subs.discard(pkt.packet_id)  # type: ignore[union-attr]
            if not self._initial_subs:
                self._subscribed_ev.set()
        elif kind == PacketType.UNSUBACK:
            self._sub_waiting.pop(pkt.packet_id, None)  # type: ignore[union-attr]
        elif kind == PacketType.CONNACK:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(pkt)  # type: ignore[arg-type]
            else:
                self._abort("a second CONNACK from the broker")
        elif kind == PacketType.DISCONNECT:
            self._abort(f"broker disconnected us: {reason_text(pkt.reason)}")  # type: ignore[union-attr]

    def _ack(self, msg: InboundMessage) -> None:
        """``msg.ack()`` lands here: release the slot; PUBACK/PUBREC if the connection is the same."""
        self._held -= 1
        if self._paused and not self._resume_scheduled and self._held <= self.resume_held:
            self._resume_scheduled = True
            self._loop.call_soon(self._resume)  # type: ignore[union-attr]
        qos = msg.qos
        if not qos:
            return
        if msg._gen != self._gen or self._transport is None or self._closing:
            self.stale_acks += 1  # the broker redelivers it; that copy gets its own ack
            return
        self.acked += 1
        pid = msg.packet_id
        if qos == 1:
            self._ack_buf += PUBACK_HEAD
        else:
            self._ack_buf += PUBREC_HEAD
            self._qos2_received.add(pid)
        self._ack_buf += pid.to_bytes(2, "big")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_acks)  # type: ignore[union-attr]

    def _queue_ack(self, head: bytes, pid: int) -> None:
        if self._transport is None:
            return
        self._ack_buf += head
        self._ack_buf += pid.to_bytes(2, "big")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_acks)  # type: ignore[union-attr]

    def _flush_acks(self) -> None:
        self._flush_scheduled = False
        if self._ack_buf and self._transport is not None:
            self._write(bytes(self._ack_buf))
        self._ack_buf.clear()

    def _pause(self) -> None:
        if self._paused:
            return
        self._paused = True
        self.pauses += 1
        self._paused_since = time.monotonic()
        t = self._transport
        if t is not None:
            t.pause_reading()

    def _resume(self) -> None:
        self._resume_scheduled = False
        if not self._paused or self._held > self.resume_held:
            return
        self._paused = False
        self.paused_total += time.monotonic() - self._paused_since
        self._last_rx = time.monotonic()  # silence while we were not reading proves nothing
        self._ping_at = 0.0
        if self._held_off:
            return  # the core's hold outlasts backpressure: release() resumes
        self._process()  # what was buffered first; may pause again
        if not self._paused and not self._read_full and self._transport is not None:
            self._transport.resume_reading()

    # ------------------------------------------------------------------ outbound

    def _write(self, data: bytes) -> None:
        t = self._transport
        if t is not None and not self._closing:  # nothing after our DISCONNECT
            t.write(data)

    def _alloc_pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            pid = self._next_pid
            if pid not in self._out and pid not in self._sub_waiting:
                return pid
        raise MqttPublishError(f"{self.config.client_id}: all 65535 packet ids in use")

    def _send_outbound(self, out: _Outbound, resend: bool = False) -> None:
        if out.state == 2:
            self._write(PUBREL_HEAD + out.packet_id.to_bytes(2, "big"))
        elif out.state == 1 and resend:
            self._write(set_dup(out.frame))
        else:
            self._write(out.frame)
            out.state = 1
        self._inflight += 1

    def _send_queued(self) -> None:
        queued = self._queued
        while queued and self._connected and self._inflight < self._server_receive_max:
            out = queued.popleft()
            if self._out.get(out.packet_id) is out and out.state == 0:
                self._send_outbound(out)

    def _send_subscribe(self, filters: list[str]) -> list[int]:
        pids = []
        # Chunks keep one SUBSCRIBE well below any broker's packet limit (10 000 devices' filters).
        for i in range(0, len(filters), 500):
            chunk = filters[i:i + 500]
            pid = self._alloc_pid()
            self._sub_waiting[pid] = chunk
            self._write(encode_subscribe(pid, [(f, self._subs.get(f, self.config.subscribe_qos)) for f in chunk],
                                         version=self.config.version,
                                         retain_handling=RetainHandling.SEND_IF_NEW_SUBSCRIPTION))
            pids.append(pid)
        return pids

    # ------------------------------------------------------------------ keepalive

    def _schedule_keepalive(self) -> None:
        if self._loop is None:
            return
        self._ka_timer = self._loop.call_later(self._keepalive / 4, self._tick)

    def _tick(self) -> None:
        self._ka_timer = None
        if not self._connected or self._transport is None:
            return
        now = time.monotonic()
        ka = self._keepalive
        answered = not self._ping_at or self._last_rx > self._ping_at
        if self._paused or self._held_off:
            self._ping_at = 0.0  # not reading: silence cannot be judged
            answered = True
        elif not answered and now - self._ping_at >= ka:
            self._abort(f"no answer from the broker for {now - self._ping_at:.1f}s (keepalive {ka:g}s)")
            return
        # One PINGREQ every keepalive/2 keeps the broker from dropping us (it allows 1.5 × keepalive
        # without a packet) even while acks are withheld, and is the probe of the link above.
        if answered and now - self._last_ping_tx >= ka / 2:
            self._write(PINGREQ)
            self._last_ping_tx = now
            if not self._paused and not self._held_off:
                self._ping_at = now
        self._schedule_keepalive()
