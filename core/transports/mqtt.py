"""MQTT hub: one broker connection per transport, shared by every driver on it.

At-least-once, end to end, on our own asyncio MQTT client (``mqtt_client``,
codec in ``mqtt_wire``; paho is no longer used here):

* QoS 1 subscriptions on a persistent session (fixed client id, MQTT 5
  ``clean_start=False`` with a session expiry; v3.1.1 ``clean_session=False``),
  so the broker keeps messages while firebus is down;
* manual acknowledgement: nothing is PUBACKed until the application calls the
  message's ``ack`` — the core does so only after the reading is committed.  A
  crash before that leaves the message unacknowledged and the broker
  redelivers it to the same client id; storage absorbs the duplicate.  The hub
  itself acknowledges nothing a handler owns.  Acks from an earlier connection
  are dropped (``stale_acks``): after a reconnect the same packet id may name
  another message.

Two lanes (issue 15: an alarm never waits behind telemetry):

* ``Lane.TELEMETRY`` — the main session (``client_id``).  Reading stops while
  ``max_unacked`` messages are held unacknowledged (backpressure to the broker,
  whatever it does with Receive Maximum).
* ``Lane.ALARM`` — filters subscribed with ``lane=Lane.ALARM`` go on a second
  session (``<client_id>-alarm``) with its own socket and in-flight window, so
  a broker backlog of telemetry cannot hold them, and the telemetry bound never
  pauses it.  A telemetry subscription may pass ``classify(topic, payload)``:
  messages it calls alarm-class move to the alarm lane right here, before any
  queue.  Of the messages parsed from one socket read, alarm-lane handlers are
  called first.

Routing is a topic trie plus an exact-topic map with a per-topic cache:
O(topic levels), not O(subscriptions).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from typing import Awaitable, Callable, ClassVar, Generic, Literal, TypeVar

import msgspec

from firebus.sdk.events import Lane
from firebus.sdk.extension import Transport, TransportContext

from .mqtt_client import (
    InboundMessage,
    MqttConnectError,
    MqttError,
    MqttPublishError,
    MqttSession,
    SessionConfig,
)
from .mqtt_wire import MqttCodecError, check_filter

__all__ = [
    "Ack", "BatchHandler", "Classifier", "InboundMessage", "Lane", "MessageHandler", "MqttConnectError", "MqttError",
    "MqttOptions", "MqttPublishError", "MqttTransport", "Router",
]

Ack = Callable[[], None]
MessageHandler = Callable[[str, bytes, Ack], Awaitable[None]]
BatchHandler = Callable[[list[InboundMessage]], None]
Classifier = Callable[[str, bytes], "Lane | None"]

R = TypeVar("R")

#: distinct topics whose routes are remembered before the cache starts afresh (memory bound)
CACHE_LIMIT = 200_000


# ---------------------------------------------------------------------------------- routing
# A site with 10 000 devices may subscribe 10 000 exact topics or a handful of wildcard
# filters; either way a message costs one dict lookup once its topic has been seen (the
# cache), and a walk of at most 2 × levels trie nodes the first time.  MQTT §4.7: "+" is one
# whole level, "#" the rest including the parent level ("a/#" matches "a"), and a topic that
# starts with "$" is not matched by a wildcard in its first level.


class _Node(Generic[R]):
    __slots__ = ("children", "plus", "hash", "routes")

    def __init__(self) -> None:
        self.children: dict[str, _Node[R]] = {}
        self.plus: _Node[R] | None = None
        self.hash: list[R] = []  # routes of "<this level>/#"
        self.routes: list[R] = []  # routes ending exactly here

    def empty(self) -> bool:
        return not (self.children or self.plus or self.hash or self.routes)


class Router(Generic[R]):
    """Routes keyed by topic filter; ``match(topic)`` returns every route whose filter matches."""

    def __init__(self, pattern_of: Callable[[R], str]) -> None:
        self._pattern_of = pattern_of
        self._exact: dict[str, list[R]] = {}
        self._root: _Node[R] = _Node()
        self._wild = 0
        self._count: dict[str, int] = {}
        self._cache: dict[str, tuple[R, ...]] = {}

    def patterns(self) -> list[str]:
        return list(self._count)

    def __len__(self) -> int:
        return sum(self._count.values())

    def add(self, route: R) -> bool:
        """Add a route; True when its filter is new (the caller subscribes it)."""
        pattern = self._pattern_of(route)
        self._cache.clear()
        if "+" in pattern or "#" in pattern:
            self._wild += 1
            node = self._root
            levels = pattern.split("/")
            for level in levels[:-1] if levels[-1] == "#" else levels:
                if level == "+":
                    if node.plus is None:
                        node.plus = _Node()
                    node = node.plus
                else:
                    node = node.children.setdefault(level, _Node())
            (node.hash if levels[-1] == "#" else node.routes).append(route)
        else:
            self._exact.setdefault(pattern, []).append(route)
        n = self._count.get(pattern, 0)
        self._count[pattern] = n + 1
        return n == 0

    def remove(self, route: R) -> bool:
        """Remove a route; True when no route is left on its filter (the caller unsubscribes it)."""
        pattern = self._pattern_of(route)
        if pattern not in self._count:
            return False
        self._cache.clear()
        if "+" in pattern or "#" in pattern:
            levels = pattern.split("/")
            path = [self._root]
            node: _Node[R] | None = self._root
            for level in levels[:-1] if levels[-1] == "#" else levels:
                assert node is not None
                node = node.plus if level == "+" else node.children.get(level)
                if node is None:
                    return False
                path.append(node)
            assert node is not None
            bucket = node.hash if levels[-1] == "#" else node.routes
            if route not in bucket:
                return False
            bucket.remove(route)
            self._wild -= 1
            # prune empty branches so a churn of subscriptions does not leave a growing trie
            for i in range(len(path) - 1, 0, -1):
                child, parent = path[i], path[i - 1]
                if not child.empty():
                    break
                if parent.plus is child:
                    parent.plus = None
                else:
                    for k, v in list(parent.children.items()):
                        if v is child:
                            del parent.children[k]
        else:
            bucket = self._exact.get(pattern, [])
            if route not in bucket:
                return False
            bucket.remove(route)
            if not bucket:
                del self._exact[pattern]
        n = self._count[pattern] - 1
        if n:
            self._count[pattern] = n
            return False
        del self._count[pattern]
        return True

    def match(self, topic: str) -> tuple[R, ...]:
        found = self._cache.get(topic)
        if found is not None:
            return found
        out: list[R] = list(self._exact.get(topic, ()))
        if self._wild:
            self._walk(self._root, topic.split("/"), 0, out, topic.startswith("$"))
        found = tuple(out)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def _walk(self, node: _Node[R], levels: list[str], i: int, out: list[R], dollar: bool) -> None:
        wild_ok = not (dollar and i == 0)
        if wild_ok and node.hash:
            out.extend(node.hash)
        if i == len(levels):
            out.extend(node.routes)
            return
        child = node.children.get(levels[i])
        if child is not None:
            self._walk(child, levels, i + 1, out, dollar)
        if wild_ok and node.plus is not None:
            self._walk(node.plus, levels, i + 1, out, dollar)


# ---------------------------------------------------------------------------------- options


class MqttOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 1883
    #: fixed and unique per installation: the broker keeps the session under it.
    #: Empty → "firebus-<transport key>".  The alarm session is "<client_id>-alarm".
    client_id: str = ""
    protocol: Literal["v5", "v311"] = "v5"
    #: seconds the broker keeps the session (and queued messages) while we are away
    session_expiry: int = 7 * 24 * 3600
    #: keepalive seconds; a silent broker is detected within about 2 × keepalive
    keepalive: int = 3
    #: in-flight window: unacknowledged QoS 1 messages the broker may send us (MQTT 5
    #: Receive Maximum). With ack-after-commit, throughput ≤ window ÷ commit cycle: a full
    #: telemetry commit takes 50–150 ms here, so 4,000 carries the 25,000 msg/s target.
    receive_maximum: int = 4000
    #: the alarm session's window (alarm traffic is small; its own window keeps it moving)
    alarm_receive_maximum: int = 100
    #: unacknowledged messages held per session before reading stops (0 → 2 × its window)
    max_unacked: int = 0
    subscribe_qos: Literal[0, 1, 2] = 1
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False  # skip hostname check (test rigs only)
    reconnect_min: int = 1
    # Short: the broker is usually on the same box, and alarms wait in it while we back off.
    reconnect_max: int = 10
    #: seconds to wait for TCP/TLS connect and for CONNACK
    connect_timeout: float = 10.0
    #: largest packet accepted (bytes; v5 tells the broker, which then drops bigger messages)
    max_packet_size: int = 1 << 20
    #: outbound publishes not yet confirmed by the broker; publish() waits for room
    publish_queue: int = 1000
    publish_timeout: float = 30.0
    #: after start, how long a message no handler claims waits for a late subscriber
    #: before it is given to the unrouted handler (or acknowledged and logged)
    unrouted_grace: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1..65535")
        if not 1 <= self.alarm_receive_maximum <= 65535:
            raise ValueError("alarm_receive_maximum must be 1..65535")
        if self.max_unacked < 0:
            raise ValueError("max_unacked must be ≥ 0 (0: twice the window)")
        if not 1 <= self.keepalive <= 65535:
            raise ValueError("keepalive must be 1..65535 s")
        if self.publish_queue < 1:
            raise ValueError("publish_queue must be ≥ 1")
        if self.protocol == "v5" and self.session_expiry < 1:
            raise ValueError("session_expiry must be > 0, or the broker forgets us on disconnect")
        if not 1 <= self.reconnect_min <= self.reconnect_max:
            raise ValueError("need 1 ≤ reconnect_min ≤ reconnect_max")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be > 0")
        if self.max_packet_size < 128:
            raise ValueError("max_packet_size must be ≥ 128 bytes")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)  # system CAs when ca_file is None
            if self.cert_file is not None:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise MqttError(f"TLS set-up failed (ca_file={self.ca_file!r}, cert_file={self.cert_file!r}): {exc}") from None
        if self.tls_insecure:
            ctx.check_hostname = False  # the certificate is still verified against the CA
        return ctx


class _Route:
    __slots__ = ("pattern", "handler", "batch", "lane", "classify")

    def __init__(self, pattern: str, handler: BatchHandler | MessageHandler, batch: bool, lane: Lane,
                 classify: Classifier | None) -> None:
        self.pattern = pattern
        self.handler = handler
        self.batch = batch
        self.lane = lane
        self.classify = classify


def _route_pattern(route: _Route) -> str:
    return route.pattern


# ---------------------------------------------------------------------------------- transport


class MqttTransport(Transport):
    type_key: ClassVar[str] = "mqtt"
    Options: ClassVar[type[msgspec.Struct]] = MqttOptions

    def __init__(self, key: str, options: MqttOptions, ctx: TransportContext) -> None:
        super().__init__(key, options, ctx)
        self.log: logging.Logger = ctx.logger
        self.client_id = options.client_id or f"firebus-{key}"
        self._routers: dict[Lane, Router[_Route]] = {Lane.TELEMETRY: Router(_route_pattern),
                                                     Lane.ALARM: Router(_route_pattern)}
        self._sessions: dict[Lane, MqttSession] = {}
        self._session_up: dict[Lane, bool] = {}
        self._unrouted: MessageHandler | None = None
        self._parked: deque[tuple[Lane, InboundMessage]] = deque()
        self._legacy: deque[tuple[MessageHandler, InboundMessage]] = deque()
        self._legacy_wake = asyncio.Event()
        self._legacy_task: asyncio.Task[None] | None = None
        self._housekeeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None
        self._link_up: bool | None = None
        self._started_at = 0.0
        self._started = False
        self._pub_slots: asyncio.Semaphore | None = None
        self._window_warned = False
        # counters for diagnostics and tests (session counters are summed in properties below)
        self.handler_errors = 0
        self.classify_errors = 0
        self.classified_alarm = 0
        self.unrouted = 0
        self.lane_counts: dict[Lane, int] = {Lane.ALARM: 0, Lane.TELEMETRY: 0}

    # ------------------------------------------------------------------ counters

    @property
    def received(self) -> int:
        return sum(s.received for s in self._sessions.values())

    @property
    def acked(self) -> int:
        return sum(s.acked for s in self._sessions.values())

    @property
    def stale_acks(self) -> int:
        return sum(s.stale_acks for s in self._sessions.values())

    @property
    def connects(self) -> int:
        return sum(s.connects for s in self._sessions.values())

    @property
    def max_backlog(self) -> int:
        """Most unacknowledged messages held in the process at once (per session, summed)."""
        return sum(s.max_unacked_held for s in self._sessions.values())

    # ------------------------------------------------------------------ public API

    def subscribe(self, pattern: str, handler: MessageHandler) -> Callable[[], None]:
        """Route messages whose topic matches ``pattern`` to ``handler`` (one at a time, in order).

        ``handler(topic, payload, ack)`` must not ack before the reading is
        durable; it may call ``ack`` later from the event loop.  Callable before
        or after ``start``.  Returns a function that removes the route.
        """
        return self._add(_Route(pattern, handler, False, Lane.TELEMETRY, None))

    def subscribe_batch(self, pattern: str, handler: BatchHandler, *, lane: Lane = Lane.TELEMETRY,
                        classify: Classifier | None = None) -> Callable[[], None]:
        """The fast path: ``handler(messages)`` is called synchronously in the event loop.

        ``messages`` are of one lane, in arrival order.  The handler must call
        ``m.ack()`` for each message later (after its commit; QoS 0 too, which
        only releases the backpressure slot) and must never block.
        ``lane=Lane.ALARM`` puts the filter on the alarm session.  ``classify``
        (telemetry subscriptions only) is a cheap peek that moves alarm-class
        messages to the alarm lane; it must not raise (if it does, the message is
        treated as alarm-class and ``classify_errors`` counts it).
        """
        if lane is Lane.ALARM and classify is not None:
            raise ValueError("classify is for telemetry subscriptions: an alarm subscription is alarm-class already")
        return self._add(_Route(pattern, handler, True, Lane(lane), classify))

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
        (default ``publish_timeout``).  The session keeps a QoS ≥ 1 message and
        re-sends it after a reconnect, so a late confirmation is still possible
        (it holds its slot until then); callers that need certainty retry
        idempotently.  Publishes go on the alarm session when there is one: it
        is never paused by telemetry backpressure, so a linkage command is not
        held behind a telemetry backlog.
        """
        session = self._sessions.get(Lane.ALARM) or self._sessions.get(Lane.TELEMETRY)
        if not self._started or session is None or self._pub_slots is None:
            raise MqttPublishError(f"{self.key}: transport not started")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        timeout = self.options.publish_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        slots = self._pub_slots
        try:
            await asyncio.wait_for(slots.acquire(), timeout)
        except asyncio.TimeoutError:
            raise MqttPublishError(f"{self.key}: publish queue full for {timeout}s") from None
        try:
            fut = session.publish(topic, data, qos=qos, retain=retain)
        except (MqttCodecError, MqttPublishError) as exc:
            slots.release()
            raise MqttPublishError(f"{self.key}: publish to {topic!r} refused: {exc}") from None
        # The slot is freed when the session settles the message, not when we stop waiting.
        fut.add_done_callback(lambda f: (slots.release(), f.cancelled() or f.exception()))
        try:
            await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise MqttPublishError(f"{self.key}: publish to {topic!r} not confirmed in {timeout}s") from None

    @property
    def connected(self) -> bool:
        return bool(self._sessions) and all(s.connected for s in self._sessions.values())

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Every session connected and its subscriptions acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        while True:
            sessions = list(self._sessions.values())
            try:
                for s in sessions:
                    await s.wait_subscribed(max(0.001, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"{self.key}: not connected after {timeout}s") from None
            if sessions and all(s.connected for s in self._sessions.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.key}: not connected after {timeout}s")
            await asyncio.sleep(0.02)  # not started yet, or a session dropped meanwhile

    def telemetry_load(self) -> int:
        """Telemetry messages in hand (received, not yet acknowledged)."""
        session = self._sessions.get(Lane.TELEMETRY)
        return session._held if session is not None else 0

    def hold_telemetry(self, held: bool) -> None:
        """Stop (True) or resume (False) taking telemetry; the alarm session is never held.

        The core holds telemetry off while an alarm is being handled, so the event loop's
        time goes to the alarm first; the broker keeps what waits (nothing is lost)."""
        session = self._sessions.get(Lane.TELEMETRY)
        if session is None:
            return
        if held:
            session.hold()
        else:
            session.release()

    def stats(self) -> dict[str, object]:
        """Figures for /api/metrics."""
        return {
            "connected": self.connected,
            "sessions": {str(lane): s.stats() for lane, s in self._sessions.items()},
            "lanes": {str(lane): n for lane, n in self.lane_counts.items()},
            "classified_alarm": self.classified_alarm,
            "classify_errors": self.classify_errors,
            "handler_errors": self.handler_errors,
            "parked": len(self._parked),
            "unrouted": self.unrouted,
            "legacy_queue": len(self._legacy),
            "routes": {str(lane): len(r) for lane, r in self._routers.items()},
        }

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        self._ssl = self.options.ssl_context()
        self._pub_slots = asyncio.Semaphore(self.options.publish_queue)
        self._started_at = time.monotonic()
        self._started = True
        self._legacy_task = asyncio.create_task(self._legacy_loop(), name=f"mqtt-{self.key}-handlers")
        for s in self._sessions.values():
            s.start()  # a restart after stop(): same sessions, same counters
        self._session(Lane.TELEMETRY)
        if self._routers[Lane.ALARM].patterns():
            self._session(Lane.ALARM)
        self._housekeeper = self._loop.call_later(0.25, self._housekeeping)

    async def stop(self) -> None:
        self._started = False
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            self._housekeeper = None
        sessions = list(self._sessions.values())
        await asyncio.gather(*(s.stop() for s in sessions), return_exceptions=True)
        if self._legacy_task is not None:
            self._legacy_task.cancel()
            try:
                await self._legacy_task
            except asyncio.CancelledError:
                pass
            self._legacy_task = None

    # ------------------------------------------------------------------ sessions

    def _session(self, lane: Lane) -> MqttSession:
        s = self._sessions.get(lane)
        if s is not None:
            return s
        o: MqttOptions = self.options
        alarm = lane is Lane.ALARM
        window = o.alarm_receive_maximum if alarm else o.receive_maximum
        cfg = SessionConfig(
            host=o.host, port=o.port, client_id=f"{self.client_id}-alarm" if alarm else self.client_id,
            version=5 if o.protocol == "v5" else 4, session_expiry=o.session_expiry, keepalive=o.keepalive,
            receive_maximum=window, max_packet_size=o.max_packet_size, subscribe_qos=o.subscribe_qos,
            username=o.username, password=o.password, ssl_context=self._ssl, reconnect_min=o.reconnect_min,
            reconnect_max=o.reconnect_max, connect_timeout=o.connect_timeout, max_held=o.max_unacked, lane=lane,
        )
        s = MqttSession(cfg, on_messages=self._on_messages, on_link=self._on_link,
                        on_connected=self._on_connected, logger=self.log)
        self._sessions[lane] = s
        self._session_up[lane] = False
        s.subscribe(self._routers[lane].patterns())
        s.start()
        return s

    def _on_connected(self, session: MqttSession, session_present: bool) -> None:
        if not session_present and session.connects > 1:
            self.log.warning("%s: broker had no session for %s: messages sent while we were away are lost "
                             "(broker restarted without persistence, or session expired)", self.key,
                             session.config.client_id)

    def _on_link(self, session: MqttSession, up: bool, reason: str) -> None:
        self._session_up[session.config.lane] = up
        if up:
            if all(self._session_up.get(lane, False) for lane in self._sessions):
                self._set_link(True)
        else:
            name = session.config.client_id
            self._set_link(False, reason if session.config.lane is Lane.TELEMETRY else f"{name}: {reason}")

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

    # ------------------------------------------------------------------ routes

    def _add(self, route: _Route) -> Callable[[], None]:
        try:
            check_filter(route.pattern)
        except MqttCodecError as exc:
            raise ValueError(f"invalid topic filter {route.pattern!r}: {exc}") from None
        router = self._routers[route.lane]
        if router.add(route) and self._started:
            self._session(route.lane).subscribe([route.pattern])
        self._release_parked()

        def remove() -> None:
            if router.remove(route):
                s = self._sessions.get(route.lane)
                if s is not None:
                    s.unsubscribe([route.pattern])

        return remove

    def _on_messages(self, session: MqttSession, messages: list[InboundMessage]) -> None:
        """Everything one socket read brought: route, classify, hand over (alarm lane first)."""
        lane = session.config.lane
        if not self._window_warned and session.held > session.config.receive_maximum:
            # Nothing is lost (every held message is unacknowledged), and reading pauses
            # at max_unacked; but the broker's window is not what bounds us.
            self._window_warned = True
            self.log.warning("%s: the broker sent %d unacknowledged messages on %s, more than its Receive Maximum "
                             "(%d): it ignores the window (Mosquitto 2.0 does once acks flow); reading pauses at %d",
                             self.key, session.held, session.config.client_id, session.config.receive_maximum,
                             session.max_held)
        self._route(lane, messages, self._started_at + self.options.unrouted_grace <= time.monotonic())

    def _route(self, lane: Lane, messages: list[InboundMessage], grace_over: bool) -> None:
        match = self._routers[lane].match
        alarms: dict[BatchHandler, list[InboundMessage]] = {}
        telemetry: dict[BatchHandler, list[InboundMessage]] = {}
        legacy = self._legacy
        queued = len(legacy)
        ALARM = Lane.ALARM
        for m in messages:
            routes = match(m.topic)
            n = len(routes)
            if n == 1:
                pairs: tuple[tuple[_Route, InboundMessage], ...] | zip[tuple[_Route, InboundMessage]] = ((routes[0], m),)
            elif n == 0:
                if grace_over:
                    self._unclaimed(m)
                else:
                    self._parked.append((lane, m))  # a driver may subscribe late (session delivers at once)
                continue
            else:
                pairs = zip(routes, m.share(n))
            for r, msg in pairs:
                if not r.batch:
                    legacy.append((r.handler, msg))  # type: ignore[arg-type]
                    continue
                classify = r.classify
                if classify is not None:
                    try:
                        if classify(msg.topic, msg.payload) == ALARM:
                            msg.lane = ALARM
                            self.classified_alarm += 1
                    except Exception:
                        # An alarm must not be lost to a peek's bug: treat it as alarm-class.
                        self.classify_errors += 1
                        msg.lane = ALARM
                        if self.classify_errors == 1:
                            self.log.exception("%s: classify failed for %r; treating it as alarm-class", self.key,
                                               msg.topic)
                group = alarms if msg.lane is ALARM else telemetry
                batch = group.get(r.handler)  # type: ignore[arg-type]
                if batch is None:
                    group[r.handler] = [msg]  # type: ignore[index]
                else:
                    batch.append(msg)
        for handler, batch in alarms.items():
            self.lane_counts[ALARM] += len(batch)
            self._call(handler, batch)
        for handler, batch in telemetry.items():
            self.lane_counts[Lane.TELEMETRY] += len(batch)
            self._call(handler, batch)
        if len(legacy) > queued:
            self._legacy_wake.set()

    def _call(self, handler: BatchHandler, batch: list[InboundMessage]) -> None:
        try:
            handler(batch)
        except Exception:
            # Not acked by us: whatever the handler did not ack comes back after the next reconnect.
            self.handler_errors += 1
            self.log.exception("%s: batch handler failed on %d messages (first topic %r); they stay unacknowledged",
                               self.key, len(batch), batch[0].topic)

    async def _legacy_loop(self) -> None:
        """Per-message async handlers (``subscribe``), one message at a time in arrival order."""
        legacy = self._legacy
        while True:
            while not legacy:
                self._legacy_wake.clear()
                await self._legacy_wake.wait()
            handler, m = legacy.popleft()
            try:
                await handler(m.topic, m.payload, m.ack)
            except Exception:
                # Not acked: it comes back after the next reconnect.  Handlers
                # should quarantine undecodable payloads and ack them instead.
                self.handler_errors += 1
                self.log.exception("%s: handler for %r failed; message left unacknowledged", self.key, m.topic)

    # ------------------------------------------------------------------ unrouted

    def _release_parked(self) -> None:
        if not self._parked or not self._started:
            return
        parked, self._parked = self._parked, deque()
        by_lane: dict[Lane, list[InboundMessage]] = {}
        for lane, m in parked:
            by_lane.setdefault(lane, []).append(m)
        for lane, messages in by_lane.items():
            self._route(lane, messages, False)  # still unclaimed: parked again, in order

    def _unclaimed(self, m: InboundMessage) -> None:
        self.unrouted += 1
        if self._unrouted is not None:
            self._legacy.append((self._unrouted, m))
            self._legacy_wake.set()
        else:
            self.log.warning("%s: no handler for topic %r; acknowledging it so it cannot block the "
                             "in-flight window", self.key, m.topic)
            m.ack()

    def _housekeeping(self) -> None:
        self._housekeeper = None
        if not self._started or self._loop is None:
            return
        if self._parked and time.monotonic() - self._started_at >= self.options.unrouted_grace:
            parked, self._parked = self._parked, deque()
            by_lane: dict[Lane, list[InboundMessage]] = {}
            for lane, m in parked:
                by_lane.setdefault(lane, []).append(m)
            for lane, messages in by_lane.items():
                self._route(lane, messages, True)
        self._housekeeper = self._loop.call_later(0.25, self._housekeeping)
