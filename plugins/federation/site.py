"""The site side: the journal, from a stored cursor, into JetStream.

A manual-ack journal consumer (``ack="manual"``) hands entries to this
publisher; an entry is acknowledged to the journal — and so counts in the saved
cursor — only once JetStream has acknowledged the publish (the PubAck says it
is stored in the stream).  So:

* NATS down: nothing is acknowledged; at most ``max_unacked`` entries wait
  here, the rest wait in the journal.  The site runs on; this task retries.
* NATS back: alarm-lane entries go first (this queue, and the journal's
  catch-up delivers the backlog's alarm entries first), then the telemetry.
* Restart: every entry sent but not acknowledged is sent again with the same
  ``Nats-Msg-Id``; JetStream drops the duplicate, the centre ignores it anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Callable

from firebus.sdk import ActorKind, Context, Event, Lane, LinkChanged

from . import envelope
from .config import FederationConfig

log = logging.getLogger("firebus.plugin.federation")

LINK = "federation"  # LinkChanged.transport of the site → centre link


async def connect(cfg: FederationConfig, name: str, **callbacks: Any) -> Any:
    """A site's NATS connection (publisher and command consumer alike): reconnect for ever,
    every 0.5 s, and a dead link noticed within ~10 s (pings every 5 s, two outstanding)."""
    import nats

    kwargs: dict[str, Any] = {"user_credentials": cfg.credentials} if cfg.credentials else {}
    return await nats.connect(
        servers=list(cfg.servers), name=name, connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
        reconnect_time_wait=0.5, ping_interval=5, max_outstanding_pings=2, **callbacks, **kwargs)


class Item:
    __slots__ = ("seq", "alarm", "subject", "body", "headers", "fut", "deadline")

    def __init__(self, seq: int, alarm: bool, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.seq, self.alarm, self.subject, self.body, self.headers = seq, alarm, subject, body, headers
        self.fut: Any = None
        self.deadline = 0.0


class SitePublisher:
    def __init__(self, core: Any, cfg: FederationConfig, *, max_inflight: int = 2000) -> None:
        self.core = core
        self.cfg = cfg
        self.max_inflight = max_inflight
        self.alarm_q: deque[Item] = deque()
        self.tel_q: deque[Item] = deque()
        self.inflight: dict[int, Item] = {}
        self.consumer: Any = None
        self.nc: Any = None
        self.js: Any = None
        self.connected = False
        self._wake = asyncio.Event()
        self._link_up: bool | None = None
        self.sent = 0
        self.acked = 0
        self.resent = 0
        self.failures = 0
        self.last_error = ""
        self.on_ack: Callable[[int], None] | None = None  # tests and the bench watch acknowledgements

    # -- journal side ------------------------------------------------------------------------

    def subscribe(self) -> None:
        self.consumer = self.core.journal.subscribe(
            "federation", self._handle, envelope.journal_types(), initial="earliest",
            batch_max=self.cfg.batch_max, ack="manual", max_unacked=self.cfg.max_unacked,
        )

    def _handle(self, events: list[Event]) -> None:
        """Queue entries for publishing; never blocks the consumer (acks come later)."""
        site, headers_for = self.cfg.site_id, envelope.msg_id
        for event in events:
            if not event.durable or event.seq in self.inflight:
                continue
            alarm = event.lane is Lane.ALARM
            item = Item(event.seq, alarm, envelope.subject(site, event.lane or Lane.TELEMETRY),
                        envelope.encode(site, event), {"Nats-Msg-Id": headers_for(site, event.seq)})
            (self.alarm_q if alarm else self.tel_q).append(item)
        self._wake.set()

    # -- NATS side ---------------------------------------------------------------------------

    async def run(self) -> None:
        delay = 0.2
        try:
            while True:
                try:
                    await self._connect()
                    delay = 0.2
                    await self._send_loop()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a dead server, a refused login, a missing stream
                    self._error(exc)
                    await self._close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            await self._close()

    async def _connect(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            return
        async def disconnected() -> None:
            self.connected = False
            self._link(False, "disconnected")

        async def reconnected() -> None:
            self.connected = True
            self._link(True)
            self._wake.set()

        async def error(exc: Exception) -> None:
            self._error(exc)

        self.nc = await connect(self.cfg, f"firebus-site-{self.cfg.site_id}", disconnected_cb=disconnected,
                                reconnected_cb=reconnected, error_cb=error)
        self.js = self.nc.jetstream(timeout=self.cfg.ack_timeout_s, publish_async_max_pending=self.max_inflight * 2)
        self.connected = True
        self._link(True)

    async def _close(self) -> None:
        nc, self.nc, self.js = self.nc, None, None
        self.connected = False
        for item in list(self.inflight.values()):
            if item.fut is not None and not item.fut.done():
                item.fut.cancel()  # requeued by _done
        if nc is not None:
            try:
                await asyncio.wait_for(nc.close(), 2)
            except Exception:
                pass

    async def _send_loop(self) -> None:
        while True:
            if self.nc is None or self.nc.is_closed:
                return
            self._expire()
            if not self.connected or len(self.inflight) >= self.max_inflight or not (self.alarm_q or self.tel_q):
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
                continue
            item = self.alarm_q.popleft() if self.alarm_q else self.tel_q.popleft()
            item.deadline = time.monotonic() + self.cfg.ack_timeout_s
            self.inflight[item.seq] = item
            try:
                fut = await self.js.publish_async(item.subject, item.body, headers=item.headers, wait_stall=1.0)
            except Exception:
                self.inflight.pop(item.seq, None)
                (self.alarm_q if item.alarm else self.tel_q).appendleft(item)
                raise
            item.fut = fut
            self.sent += 1
            fut.add_done_callback(lambda f, it=item: self._done(it, f))

    def _expire(self) -> None:
        now = time.monotonic()
        for item in [i for i in self.inflight.values() if i.deadline < now]:
            if item.fut is not None and not item.fut.done():
                item.fut.cancel()

    def _done(self, item: Item, fut: Any) -> None:
        if self.inflight.get(item.seq) is item:
            del self.inflight[item.seq]
        if fut.cancelled() or fut.exception() is not None:
            self.failures += 1
            self.resent += 1
            if not fut.cancelled():
                self.last_error = repr(fut.exception())
            item.fut = None
            (self.alarm_q if item.alarm else self.tel_q).appendleft(item)
            self._wake.set()
            return
        self.acked += 1
        if self.consumer is not None:
            self.consumer.ack(item.seq)
        if self.on_ack is not None:
            self.on_ack(item.seq)

    # -- reporting ---------------------------------------------------------------------------

    def _link(self, up: bool, reason: str = "") -> None:
        if self._link_up is up:
            return
        self._link_up = up
        log.log(logging.INFO if up else logging.WARNING, "federation: link to %s %s %s",
                ",".join(self.cfg.servers), "up" if up else "down", reason)
        try:
            self.core.bus.publish(LinkChanged(transport=LINK, up=up, reason=reason),
                                  Context(actor=ActorKind.PLUGIN, actor_id="federation"))
        except Exception:  # a stopping core
            pass

    def _error(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.warning("federation: %s", text)
        self.last_error = text
        if self._link_up is not False and not (self.nc is not None and self.nc.is_connected):
            self._link(False, text)

    def metrics(self) -> dict[str, Any]:
        return {
            "connected": self.connected, "sent": self.sent, "acked": self.acked, "resent": self.resent,
            "queued_alarm": len(self.alarm_q), "queued_telemetry": len(self.tel_q),
            "inflight": len(self.inflight), "last_error": self.last_error,
            "cursor": getattr(self.consumer, "cursor", None),
        }
