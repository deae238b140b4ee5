"""The transactional outbox: every notification is a row before it is a send.

Life of a row: ``pending`` (due at ``next_ts``) → ``inflight`` (claimed,
attempt counted) → ``sent`` | back to ``pending`` with a later ``next_ts``
(exponential back-off) | ``failed`` (permanent error or older than
``max_age_s``).  Rate-limited rows wait as ``held`` until a digest replaces
them (``digested``); escalation rows of an acknowledged alarm become
``cancelled``.

One worker task per channel sends that channel's due rows in priority order
(fire first), up to ``outbox.concurrency`` (default 8) at once, and no faster than the
channel's ``send_limit`` (group robots: 20 a minute; rows wait ``pending`` for room).  A failure backs off the whole channel, not only the row: a
gateway that is down for an hour gets one probe per back-off interval, not
one per queued message, and the queue is delivered in order once it is back.

Idempotency: rows are keyed by ``dedup_key`` (alarm, step, recipient,
channel), so a repeated alarm event or a replayed escalation step inserts
nothing.  A row is marked ``inflight`` before the send and ``sent`` after
it, so nothing marked ``sent`` goes out again after a restart.  A row found
``inflight`` at start-up (the process died mid-send) is sent again with the
same id: for alarms a possible duplicate that receivers can drop (the id is
in every channel's wire format) beats a possible loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import anyio
import msgspec

from firebus.sdk import ActorKind, Context, Lane, NotificationResult

from .config import OutboxConfig
from .health import ChannelRegistry
from .message import DeliveryError, Message

log = logging.getLogger("firebus.plugin.notify")

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Message)

SQL_INSERT = """
INSERT INTO notify_outbox (id, dedup_key, alarm_id, kind, step, recipient, channel, status, priority,
                           created_ts, next_ts, context_id, message)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dedup_key) DO NOTHING
"""
_COLUMNS = "id, channel, status, attempts, created_ts, context_id, message"


@dataclass
class Entry:
    """A row to add: a rendered message plus how it should be scheduled."""

    dedup_key: str
    message: Message
    context_id: str | None
    status: str = "pending"  # or "held"
    next_ts: float = 0.0
    priority: int = 0


@dataclass
class Row:
    id: str
    channel: str
    status: str
    attempts: int
    created_ts: float
    context_id: str | None
    message: Message

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> "Row":
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], _dec.decode(row[6]))


class Outbox:
    def __init__(self, core: Any, channels: ChannelRegistry, cfg: OutboxConfig) -> None:
        self.core = core
        self.storage = core.storage
        self.clock = core.clock
        self.channels = channels
        self.cfg = cfg
        self._wake: dict[str, anyio.Event] = {}
        self._blocked_until: dict[str, float] = {}
        #: channels whose last send succeeded: their rows go out concurrently at once
        self._proven: set[str] = set()
        self.on_result: Callable[[Row, bool, str], None] | None = None
        #: what a message gets just before each send (the alarm's media: ``media.NotifyMedia.prepare``)
        self.prepare: Callable[[Message], Awaitable[Message]] | None = None

    async def _prepared(self, message: Message) -> Message:
        if self.prepare is None:
            return message
        try:
            return await self.prepare(message)
        except Exception:  # extras must never cost a notification its send
            log.exception("notify: preparing %s failed; sending it as it is", message.id)
            return message

    # -- writing ---------------------------------------------------------------------------

    async def _exec(self, sql: str, params: Any = ()) -> Any:
        """Every outbox write is on the alarm path: it commits ahead of telemetry batches."""
        return await self.storage.execute(sql, params, lane=Lane.ALARM)

    async def add(self, entries: list[Entry]) -> None:
        """Record entries (one transaction); duplicates of existing dedup keys are ignored."""
        if not entries:
            return
        now = self.clock.time()
        rows = [self.row_of(e, e.status, now) for e in entries]
        await self.storage.executemany(SQL_INSERT, rows, lane=Lane.ALARM)
        for channel in {e.message.channel for e in entries if e.status == "pending"}:
            self.wake(channel)

    def row_of(self, entry: Entry, status: str, now: float) -> tuple[Any, ...]:
        m = entry.message
        return (m.id, entry.dedup_key, m.alarm_id, m.kind, m.step, m.recipient, m.channel, status, entry.priority,
                now, max(entry.next_ts, now) if entry.next_ts else now, entry.context_id, _enc.encode(m).decode())

    async def send_now(self, entry: Entry) -> None:
        """Send one message straight to its channel, outside the outbox (the store refuses writes).

        Its row is queued, not awaited: ``sent`` once the store accepts writes again (the
        dedup key keeps the usual path from sending it a second time), or ``pending`` if
        this attempt failed, so the outbox retries it.
        """
        channel = self.channels.get(entry.message.channel)
        if channel is None:
            return
        error = ""
        try:
            message = await self._prepared(entry.message)
            with anyio.fail_after(self.cfg.send_timeout_s):
                await channel.notifier.send(message)
        except anyio.get_cancelled_exc_class():
            raise
        except TimeoutError:
            error = f"no answer within {self.cfg.send_timeout_s:g}s"
        except Exception as exc:
            error = str(exc) or type(exc).__name__
        now = self.clock.time()
        self.storage.put_nowait(SQL_INSERT, [self.row_of(entry, "sent" if not error else "pending", now)],
                                lane=Lane.ALARM)
        row = Row(entry.message.id, entry.message.channel, "sent", 1, now, entry.context_id, entry.message)
        self._publish(row, 1, not error, error)

    async def existing_keys(self, alarm_id: str) -> set[str]:
        rows = await self.storage.fetchall("SELECT dedup_key FROM notify_outbox WHERE alarm_id = ?", (alarm_id,))
        return {r[0] for r in rows}

    async def cancel_escalations(self, alarm_id: str) -> None:
        await self._exec(
            "UPDATE notify_outbox SET status = 'cancelled' WHERE alarm_id = ? AND kind = 'escalate' "
            "AND status IN ('pending', 'held')",
            (alarm_id,),
        )

    async def purge(self, now: float) -> None:
        """Drop finished rows older than ``retention_days`` (pending and held ones are never dropped)."""
        cutoff = now - self.cfg.retention_days * 86_400
        await self._exec(
            "DELETE FROM notify_outbox WHERE status IN ('sent', 'failed', 'digested', 'cancelled') AND created_ts < ?",
            (cutoff,),
        )
        await self._exec(
            "DELETE FROM notify_escalation WHERE due IS NULL AND started_ts < ?", (cutoff,)
        )

    async def recover(self) -> int:
        """After a restart: rows that were mid-send go back to pending (see module doc)."""
        row = await self.storage.fetchone("SELECT count(*) FROM notify_outbox WHERE status = 'inflight'")
        if row and row[0]:
            log.warning("notify: %d notification(s) were being sent when the core stopped; sending again", row[0])
            # They were due when they were claimed: due again now.
            await self._exec(
                "UPDATE notify_outbox SET status = 'pending', next_ts = min(next_ts, ?) WHERE status = 'inflight'",
                (self.clock.time(),),
            )
        return row[0] if row else 0

    # -- the workers ------------------------------------------------------------------------

    def wake(self, channel: str) -> None:
        event = self._wake.get(channel)
        if event is not None:
            event.set()

    async def _wait(self, channel: str, seconds: float | None) -> None:
        event = self._wake.setdefault(channel, anyio.Event())
        if event.is_set():
            self._wake[channel] = anyio.Event()
            return
        async with anyio.create_task_group() as tg:
            async def sleeper() -> None:
                if seconds is None:
                    await anyio.sleep_forever()
                await self.clock.sleep(max(0.0, seconds))
                tg.cancel_scope.cancel()

            async def waiter() -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(sleeper)
            tg.start_soon(waiter)
        if event.is_set():
            self._wake[channel] = anyio.Event()

    async def run_channel(self, key: str) -> None:
        """Deliver ``key``'s due rows forever (cancel the task to stop).

        A storage error (disk full, locked file) must not end the worker: it is
        logged and the loop starts over after a pause; rows stay where they were.
        """
        self._wake.setdefault(key, anyio.Event())
        errors = 0
        while True:
            try:
                await self._pass(key)
                errors = 0
            except anyio.get_cancelled_exc_class():
                raise
            except Exception:
                errors += 1
                log.exception("notify: channel worker %s failed (%d in a row); carrying on", key, errors)
                await anyio.sleep(min(30.0, 0.5 * 2 ** min(errors, 6)))
                try:  # a row claimed when it failed would otherwise wait for the next restart
                    await self._exec(
                        "UPDATE notify_outbox SET status = 'pending' WHERE channel = ? AND status = 'inflight'", (key,)
                    )
                except Exception:
                    pass

    async def _pass(self, key: str) -> None:
        now = self.clock.time()
        blocked = self._blocked_until.get(key, 0.0)
        if now < blocked:
            await self._wait(key, blocked - now)
            return
        rows = await self.storage.fetchall(
            f"SELECT {_COLUMNS} FROM notify_outbox WHERE channel = ? AND status = 'pending' AND next_ts <= ? "
            "ORDER BY priority DESC, created_ts, id LIMIT 50",
            (key, now),
        )
        if not rows:
            nxt = await self.storage.fetchone(
                "SELECT min(next_ts) FROM notify_outbox WHERE channel = ? AND status = 'pending'", (key,)
            )
            await self._wait(key, None if not nxt or nxt[0] is None else nxt[0] - now)
            return
        slots = anyio.Semaphore(max(1, self.cfg.concurrency))
        failing = False
        entry = self.channels.get(key)
        pacer = entry.pacer if entry is not None else None
        paced = 0.0  # > 0: the channel's request limit is reached until this time; rows stay pending

        async def one(row: Row) -> None:
            nonlocal failing
            try:
                if not await self.deliver(row):
                    failing = True  # the channel is failing: start no more, back off all of it
            finally:
                slots.release()

        # A channel not known to work (nothing sent since start, or the last send failed)
        # gets one request first: a channel that is down sees one probe, not a burst.
        first = key not in self._proven
        async with anyio.create_task_group() as tg:
            for raw in rows:
                try:
                    row = Row.of(raw)
                except msgspec.DecodeError as exc:
                    await self._finish(raw[0], "failed", f"undecodable row: {exc}")
                    continue
                await slots.acquire()
                if failing:
                    slots.release()
                    break
                if pacer is not None:
                    now = self.clock.time()
                    if pacer.delay(now) > 0:
                        paced = now + pacer.delay(now)
                        pacer.waits += 1
                        slots.release()
                        break
                    pacer.take(now)
                if first:
                    first = False
                    await one(row)
                    if failing:
                        break
                    continue
                tg.start_soon(one, row)
        if paced > 0 and not failing:
            # Until then from now, not from the look: the sends of this pass took time too.
            # A new row wakes it early; the next pass looks again.
            await self._wait(key, max(0.0, paced - self.clock.time()))

    async def deliver(self, row: Row) -> bool:
        """One attempt at one row.  Returns False when the channel failed (back off).

        Shielded from cancellation: a shutdown lets a send that has started finish
        and be recorded (bounded by ``send_timeout_s``), instead of leaving a row
        ``inflight`` that would be sent again after the restart.
        """
        with anyio.CancelScope(shield=True):
            return await self._deliver(row)

    async def _deliver(self, row: Row) -> bool:
        entry = self.channels.get(row.channel)
        if entry is None:
            return True  # not configured now: leave pending until it is (nothing lost)
        await self._exec(
            "UPDATE notify_outbox SET status = 'inflight', attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
            (row.id,),
        )
        check = await self.storage.fetchone("SELECT status, attempts FROM notify_outbox WHERE id = ?", (row.id,))
        if check is None or check[0] != "inflight":
            return True  # cancelled (alarm acknowledged) between the query and now
        attempt = int(check[1])
        # Back-off counts from the start of the attempt, so a slow failure does not stretch it.
        started = self.clock.time()
        error = ""
        permanent = False
        try:
            message = await self._prepared(row.message)
            with anyio.fail_after(self.cfg.send_timeout_s):
                await entry.notifier.send(message)
        except anyio.get_cancelled_exc_class():
            raise
        except TimeoutError:
            error = f"no answer within {self.cfg.send_timeout_s:g}s"
        except DeliveryError as exc:
            error, permanent = str(exc) or type(exc).__name__, exc.permanent
        except Exception as exc:  # a channel bug must not stop the outbox
            error = f"{type(exc).__name__}: {exc}"
        now = self.clock.time()
        if not error:
            await self._finish(row.id, "sent", "", sent_ts=now)
            await self.channels.succeeded(entry, now)
            self._blocked_until.pop(row.channel, None)
            self._proven.add(row.channel)
            self._publish(row, attempt, True, "")
            return True
        self._publish(row, attempt, False, error)
        if permanent:
            # The row is wrong (no address, bad template), not the channel: skip it, keep going.
            log.error("notify: cannot send %s to %s via %s: %s", row.id, row.message.recipient, row.channel, error)
            await self._finish(row.id, "failed", error)
            return True
        await self.channels.failed(entry, now, error)
        if now - row.created_ts >= self.cfg.max_age_s:
            log.error("notify: giving up on %s to %s via %s after %d attempts: %s",
                      row.id, row.message.recipient, row.channel, attempt, error)
            await self._finish(row.id, "failed", error)
        delay = min(self.cfg.max_backoff_s, self.cfg.base_backoff_s * 2 ** max(0, entry.failures - 1))
        if entry.failures == 1:
            log.warning("notify: %s via %s failed (%s); retrying in %gs", row.id, row.channel, error, delay)
        self._blocked_until[row.channel] = started + delay
        self._proven.discard(row.channel)
        await self._exec(
            "UPDATE notify_outbox SET status = 'pending', next_ts = ?, last_error = ? WHERE id = ?",
            (started + delay, error, row.id),
        )
        return False

    async def _finish(self, row_id: str, status: str, error: str, sent_ts: float | None = None) -> None:
        await self._exec(
            "UPDATE notify_outbox SET status = ?, last_error = ?, sent_ts = coalesce(?, sent_ts) WHERE id = ?",
            (status, error, sent_ts, row_id),
        )

    def _publish(self, row: Row, attempt: int, ok: bool, error: str) -> None:
        self.core.bus.publish(
            NotificationResult(notification_id=row.id, channel=row.channel, recipient=row.message.recipient,
                               ok=ok, attempt=attempt, error=error),
            Context(parent_id=row.context_id, actor=ActorKind.PLUGIN, actor_id="notify"),
        )
        if self.on_result is not None:
            self.on_result(row, ok, error)
