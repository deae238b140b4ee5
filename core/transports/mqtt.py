"""MQTT hub: one paho-mqtt client per broker, shared by every driver on it.

At-least-once, end to end:

* QoS 1 subscriptions on a persistent session (fixed client id, MQTT 5
  ``clean_start=False`` with a session expiry; v3.1.1 ``clean_session=False``),
  so the broker keeps messages while firebus is down;
* ``manual_ack=True``: paho does not PUBACK when ``on_message`` returns.  Each
  message reaches its handler with an ``ack`` callable; the core calls it only
  after the reading is committed.  A crash before that leaves the message
  unacknowledged and the broker redelivers it to the same client id; storage
  absorbs the duplicate.  The hub itself acknowledges nothing a handler owns.

The paho network thread must never block (a stalled thread misses keepalives
and the broker drops us: paho issue 379), so ``on_message`` only hands the
message to the event loop with ``call_soon_threadsafe``.  The in-flight window
(MQTT 5 Receive Maximum) bounds how many unacknowledged messages the broker
sends us, and therefore how much the hand-over queue can hold.

Thread safety of ``client.ack()`` (paho 2.2, read in ``client.py``): ``ack``
builds a PUBACK and calls ``_packet_queue``, which appends to a
``collections.deque`` (atomic in CPython) and writes one byte to the loop's
socket pair to wake ``select``; with ``loop_start`` it never writes the socket
from the caller's thread.  So acking from the event-loop thread while the
network thread runs is safe.  What is *not* safe is acking a message id from an
earlier connection: after a reconnect the broker redelivers unacknowledged
messages and may reuse that id for another message once acknowledged, so a
stale ack could acknowledge the wrong message.  Each message carries the
connection generation it arrived on, and acks from an older generation are
dropped (the redelivered copy gets its own ack).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from typing import Any, Awaitable, Callable, ClassVar, Literal

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from firebus.sdk.extension import Transport, TransportContext

Ack = Callable[[], None]
MessageHandler = Callable[[str, bytes, Ack], Awaitable[None]]


class MqttError(Exception):
    """Base of MQTT hub errors."""


class MqttPublishError(MqttError):
    """A publish was refused (queue full, not accepted) or not confirmed in time."""


class MqttOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 1883
    #: fixed and unique per installation: the broker keeps the session under it.
    #: Empty → "firebus-<transport key>".
    client_id: str = ""
    protocol: Literal["v5", "v311"] = "v5"
    #: seconds the broker keeps the session (and queued messages) while we are away
    session_expiry: int = 7 * 24 * 3600
    #: keepalive seconds; a silent broker is detected within about twice this
    keepalive: int = 3
    #: in-flight window: unacknowledged QoS 1 messages the broker may send us (MQTT 5
    #: Receive Maximum). With ack-after-commit, throughput ≤ window ÷ commit latency.
    receive_maximum: int = 1000
    subscribe_qos: Literal[0, 1, 2] = 1
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False  # skip hostname check (test rigs only)
    reconnect_min: int = 1
    reconnect_max: int = 30
    #: outbound publishes not yet confirmed by the broker; publish() waits for room
    publish_queue: int = 1000
    publish_timeout: float = 30.0
    #: after start, how long a message no handler claims waits for a late subscriber
    #: before it is given to the unrouted handler (or acknowledged and logged)
    unrouted_grace: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1..65535")
        if self.keepalive < 1:
            raise ValueError("keepalive must be ≥ 1 s")
        if self.publish_queue < 1:
            raise ValueError("publish_queue must be ≥ 1")
        if self.protocol == "v5" and self.session_expiry < 1:
            raise ValueError("session_expiry must be > 0, or the broker forgets us on disconnect")
        if not 1 <= self.reconnect_min <= self.reconnect_max:
            raise ValueError("need 1 ≤ reconnect_min ≤ reconnect_max")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")


class _Inbound(msgspec.Struct):
    gen: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float
    parked: bool = False


class MqttTransport(Transport):
    type_key: ClassVar[str] = "mqtt"
    Options: ClassVar[type[msgspec.Struct]] = MqttOptions

    def __init__(self, key: str, options: MqttOptions, ctx: TransportContext) -> None:
        super().__init__(key, options, ctx)
        self.log: logging.Logger = ctx.logger
        self.client_id = options.client_id or f"firebus-{key}"
        self._handlers: dict[str, list[MessageHandler]] = {}
        self._filters: tuple[str, ...] = ()  # snapshot the paho thread reads (never the dict)
        self._unrouted: MessageHandler | None = None
        self._parked: deque[_Inbound] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Inbound] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._client: mqtt.Client | None = None
        self._gen = 0  # connection generation; bumped by the paho thread on (dis)connect
        self._connected = threading.Event()
        self._link_up: bool | None = None
        self._started_at = 0.0
        self._pub_slots: asyncio.Semaphore | None = None
        self._pub_waiting: dict[int, asyncio.Future[None]] = {}
        # counters for diagnostics and tests
        self.received = 0
        self.acked = 0
        self.stale_acks = 0
        self.handler_errors = 0
        self.connects = 0
        self.max_backlog = 0  # deepest hand-over queue seen (unacked messages held in the process)
        self._overrun_logged = False

    # ------------------------------------------------------------------ public API

    def subscribe(self, pattern: str, handler: MessageHandler) -> Callable[[], None]:
        """Route messages whose topic matches ``pattern`` to ``handler``.

        ``handler(topic, payload, ack)`` must not ack before the reading is
        durable; it may call ``ack`` later from the event loop.  Callable before
        or after ``start``.  Returns a function that removes the route.
        """
        _check_filter(pattern)
        new = pattern not in self._handlers
        self._handlers.setdefault(pattern, []).append(handler)
        self._filters = tuple(self._handlers)
        if new and self._client is not None and self._connected.is_set():
            self._client.subscribe(pattern, **self._sub_args())
        self._release_parked()

        def remove() -> None:
            handlers = self._handlers.get(pattern, [])
            if handler in handlers:
                handlers.remove(handler)
            if not handlers and pattern in self._handlers:
                del self._handlers[pattern]
                self._filters = tuple(self._handlers)
                if self._client is not None and self._connected.is_set():
                    self._client.unsubscribe(pattern)

        return remove

    def set_unrouted_handler(self, handler: MessageHandler | None) -> None:
        """Who gets messages no route claims after ``unrouted_grace`` (e.g. quarantine, then ack).

        Without one the hub logs and acknowledges them: an unclaimed message
        (a subscription left in the persistent session by a removed driver)
        would otherwise hold a slot of the in-flight window forever.
        """
        self._unrouted = handler

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                      *, timeout: float | None = None) -> None:
        """Publish and wait until the broker confirms (QoS ≥ 1) or the packet is written (QoS 0).

        At most ``publish_queue`` publishes are pending at once; more wait for
        room.  Raises ``MqttPublishError`` when not confirmed within ``timeout``
        (default ``publish_timeout``) — paho keeps retrying in memory, so a
        late confirmation is still possible; callers that need certainty retry
        idempotently.
        """
        if self._client is None or self._pub_slots is None:
            raise MqttPublishError(f"{self.key}: transport not started")
        timeout = self.options.publish_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._pub_slots.acquire(), timeout)
        except asyncio.TimeoutError:
            raise MqttPublishError(f"{self.key}: publish queue full for {timeout}s") from None
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            if info.rc == mqtt.MQTT_ERR_NO_CONN and qos == 0:
                raise MqttPublishError(f"{self.key}: not connected; QoS 0 publish to {topic!r} dropped")
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                raise MqttPublishError(f"{self.key}: publish to {topic!r} refused: {mqtt.error_string(info.rc)}")
            if info.rc == mqtt.MQTT_ERR_SUCCESS and info.is_published():
                return  # (is_published raises for NO_CONN; paho still holds QoS>0 messages then)
            # Registered before any await: on_publish reaches us through
            # call_soon_threadsafe, so it cannot run before this line.
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pub_waiting[info.mid] = fut
            try:
                await asyncio.wait_for(fut, max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise MqttPublishError(f"{self.key}: publish to {topic!r} not confirmed in {timeout}s") from None
            finally:
                self._pub_waiting.pop(info.mid, None)
        finally:
            self._pub_slots.release()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._connected.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.key}: not connected after {timeout}s")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        o: MqttOptions = self.options
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._pub_slots = asyncio.Semaphore(o.publish_queue)
        self._started_at = time.monotonic()
        v5 = o.protocol == "v5"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        client.enable_logger(self.log.getChild("paho"))
        client.reconnect_delay_set(o.reconnect_min, o.reconnect_max)
        # Outgoing QoS>0 messages paho holds (in flight + queued); the semaphore
        # above already bounds us, this keeps paho's own queue finite too.
        client.max_queued_messages_set(o.publish_queue + 10)
        client.max_inflight_messages_set(min(o.publish_queue, 1000))
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if o.tls:
            client.tls_set(ca_certs=o.ca_file, certfile=o.cert_file, keyfile=o.key_file,
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            client.tls_insecure_set(o.tls_insecure)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = o.session_expiry
            props.ReceiveMaximum = o.receive_maximum
        self._client = client
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"mqtt-{self.key}-dispatch")
        # connect_async never raises for a dead broker: the network thread keeps trying.
        client.connect_async(o.host, o.port, keepalive=o.keepalive,
                             clean_start=False if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                             properties=props)
        client.loop_start()

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # DISCONNECT keeps the session (expiry > 0): unacked messages come back next start.
            client.disable_logger()  # paho logs its own orderly shutdown at ERROR ("not connected")
            client.disconnect()
            await self._join_network_thread(client)
        self._connected.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass
            self._dispatcher = None
        for fut in self._pub_waiting.values():
            if not fut.done():
                fut.set_exception(MqttPublishError(f"{self.key}: transport stopped"))

    async def _join_network_thread(self, client: mqtt.Client, timeout: float = 10.0) -> None:
        # A daemon thread, not the default executor: should paho's thread ever hang,
        # an executor worker stuck in join() would block interpreter exit.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def join() -> None:
            try:
                client.loop_stop()
            finally:
                try:
                    loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
                except RuntimeError:
                    pass  # loop already closed

        threading.Thread(target=join, name=f"mqtt-{self.key}-stop", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            self.log.error("%s: paho network thread did not stop within %.0fs", self.key, timeout)

    # ------------------------------------------------------------------ paho thread side
    # Everything below runs on paho's network thread: no blocking, no awaiting,
    # only hand-over to the event loop.

    def _call_in_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass  # loop closing: the broker keeps the message, we get it next time

    def _sub_args(self) -> dict[str, Any]:
        if self.options.protocol == "v5":
            # Retained messages only for a new subscription, not on every reconnect.
            return {"options": SubscribeOptions(qos=self.options.subscribe_qos,
                                                retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)}
        return {"qos": self.options.subscribe_qos}

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._call_in_loop(self._set_link, False, f"broker refused connection: {reason}")
            return
        self._gen += 1
        self.connects += 1
        self._connected.set()
        # Resubscribe every time: the session may have expired or the broker lost it.
        topics = self._filters
        if topics:
            if self.options.protocol == "v5":
                client.subscribe([(t, self._sub_args()["options"]) for t in topics])
            else:
                client.subscribe([(t, self.options.subscribe_qos) for t in topics])
        present = getattr(flags, "session_present", None)
        self._call_in_loop(self._connected_in_loop, bool(present))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._gen += 1
        self._connected.clear()
        if self._client is not None:  # not our own stop()
            self._call_in_loop(self._set_link, False, f"disconnected: {reason}")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._call_in_loop(self._set_link, False,
                           f"cannot connect to {self.options.host}:{self.options.port}")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = _Inbound(self._gen, msg.mid, msg.qos, msg.topic, msg.payload, time.time())
        inbox = self._inbox
        if inbox is not None:
            self._call_in_loop(inbox.put_nowait, item)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._call_in_loop(self._published, mid, reason)

    # ------------------------------------------------------------------ event-loop side

    def _connected_in_loop(self, session_present: bool) -> None:
        if not session_present and self.connects > 1:
            self.log.warning("%s: broker had no session for %s: messages sent while we were away are lost "
                             "(broker restarted without persistence, or session expired)", self.key, self.client_id)
        self._set_link(True)

    def _set_link(self, up: bool, reason: str = "") -> None:
        if self._link_up is up:
            return
        first = self._link_up is None
        self._link_up = up
        if up:
            if not first:
                self.log.info("%s: broker %s:%s reachable again", self.key, self.options.host, self.options.port)
                self.ctx.link_changed(True, "")
        else:
            self.log.warning("%s: broker link down: %s", self.key, reason)
            self.ctx.link_changed(False, reason)

    def _published(self, mid: int, reason: Any) -> None:
        fut = self._pub_waiting.get(mid)
        if fut is None or fut.done():
            return
        if getattr(reason, "is_failure", False):
            fut.set_exception(MqttPublishError(f"{self.key}: broker refused publish: {reason}"))
        else:
            fut.set_result(None)

    def _make_ack(self, item: _Inbound, owners: int = 1) -> Ack:
        remaining = [owners]

        def ack() -> None:
            if remaining[0] <= 0:
                return  # idempotent: a second call is harmless
            remaining[0] -= 1
            if remaining[0]:
                return  # a message routed to several handlers is acked once all are done
            if item.qos == 0:
                return
            client = self._client
            if item.gen != self._gen or client is None:
                self.stale_acks += 1  # connection changed: the broker redelivers; that copy gets acked
                return
            client.ack(item.mid, item.qos)
            self.acked += 1

        return ack

    def _routes(self, topic: str) -> list[MessageHandler]:
        out: list[MessageHandler] = []
        for pattern, handlers in self._handlers.items():
            if mqtt.topic_matches_sub(pattern, topic):
                out.extend(handlers)
        return out

    async def _dispatch(self) -> None:
        assert self._inbox is not None
        while True:
            try:
                item = await asyncio.wait_for(self._inbox.get(), timeout=1.0)
            except asyncio.TimeoutError:
                await self._expire_parked()
                continue
            if not item.parked:
                self.received += 1
            self._note_backlog()
            handlers = self._routes(item.topic)
            if not handlers:
                self._parked.append(item)  # a driver may subscribe late (session delivers at once)
                await self._expire_parked()
                continue
            await self._deliver(item, handlers)

    def _note_backlog(self) -> None:
        depth = (self._inbox.qsize() if self._inbox is not None else 0) + 1 + len(self._parked)
        self.max_backlog = max(self.max_backlog, depth)
        if depth > 2 * self.options.receive_maximum and not self._overrun_logged:
            # The broker ignores our Receive Maximum (Mosquitto 2.0.x does after the
            # first acks). Nothing is lost — every message is still unacked — but
            # memory now follows the broker's queue, not the window.
            self._overrun_logged = True
            self.log.warning("%s: %d unacknowledged messages held, above 2 × receive_maximum (%d): "
                             "the broker is not honouring the in-flight window", self.key, depth,
                             self.options.receive_maximum)

    async def _deliver(self, item: _Inbound, handlers: list[MessageHandler]) -> None:
        ack = self._make_ack(item, len(handlers))
        for handler in handlers:
            try:
                await handler(item.topic, item.payload, ack)
            except Exception:
                # Not acked: it comes back after the next reconnect.  Handlers
                # should quarantine undecodable payloads and ack them instead.
                self.handler_errors += 1
                self.log.exception("%s: handler for %r failed; message left unacknowledged", self.key, item.topic)

    def _release_parked(self) -> None:
        if not self._parked or self._loop is None:
            return
        parked, self._parked = self._parked, deque()
        for item in parked:
            item.parked = True
            if self._inbox is not None:
                self._inbox.put_nowait(item)

    async def _expire_parked(self) -> None:
        if not self._parked or time.monotonic() - self._started_at < self.options.unrouted_grace:
            return
        parked, self._parked = self._parked, deque()
        for item in parked:
            if self._routes(item.topic):
                await self._deliver(item, self._routes(item.topic))
            elif self._unrouted is not None:
                await self._deliver(item, [self._unrouted])
            else:
                self.log.warning("%s: no handler for topic %r; acknowledging it so it cannot block the "
                                 "in-flight window", self.key, item.topic)
                self._make_ack(item)()


def _check_filter(pattern: str) -> None:
    if not pattern or "\x00" in pattern:
        raise ValueError(f"invalid topic filter {pattern!r}")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"invalid topic filter {pattern!r}: '#' must be a whole last level")
        if "+" in level and level != "+":
            raise ValueError(f"invalid topic filter {pattern!r}: '+' must be a whole level")
