"""The site side of centre → site commands: JetStream in, the panel's alarm actions, a result out.

A durable pull consumer ``site-<site_id>`` on ``firebus.<site_id>.command.*`` (stream
``FIREBUS_CMD``) is the stored cursor: the NATS server keeps it, so commands queued
while the site was down or cut off arrive when it is back, oldest first.  Each
message is acknowledged to JetStream only once its result is in the stream (PubAck),
so a crash anywhere redelivers it (at least once).  Applying it is exactly once:

* the site's table ``federation_commands`` keeps every command id with its result;
  a command seen before is not applied again, its stored result is sent again;
* the row is written (state ``applying``) before the alarm action, and the action
  runs with the command id as its context id, which the core checks against the
  alarm's history (``CoreAPI.alarm_action``): a crash between the action and the
  row's ``done`` does not apply it twice either.

The action is the panel's own (``core.alarm_action``), as user ``centre:<name>``;
its ``AlarmEvent`` reaches the centre through the journal like any local action.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import msgspec

from firebus.sdk import ActorKind, Context, Lane, Migration
from firebus.sdk.core_api import AlarmAction, AlarmActionOutcome

from . import commands as wire
from .commands import Command, CommandResult, Outcome, Reason
from .config import FederationConfig
from .site import connect

log = logging.getLogger("firebus.plugin.federation")

ACTOR_PREFIX = "centre:"  # how the alarm history names a centre user
# A delivered command not acknowledged by then comes again.  It also bounds a delay: a
# pull request of a site that just stopped outlives it on nats-server 2.9 for up to the
# fetch's 1 s, and a command arriving then goes to the dead request until ack_wait (the ones
# behind it wait too: max_ack_pending 1 keeps the order).
ACK_WAIT_S = 10.0

MIGRATIONS = [Migration(component="federation", version=1, description="commands received from the centre", sql="""
CREATE TABLE federation_commands (
    id          TEXT PRIMARY KEY,   -- the centre's ULID
    kind        TEXT NOT NULL,
    alarm_id    TEXT NOT NULL,
    issued_by   TEXT NOT NULL,
    issued_at   REAL NOT NULL,
    received_at REAL NOT NULL,
    state       TEXT NOT NULL,      -- applying | done
    result      BLOB                -- the CommandResult sent back (JSON), once done
);
""")]


class SiteCommands:
    def __init__(self, core: Any, cfg: FederationConfig) -> None:
        self.core = core
        self.cfg = cfg
        self.nc: Any = None
        self.js: Any = None
        self.applied = 0
        self.refused = 0
        self.repeats = 0  # commands seen before: answered again, not applied again
        self.errors = 0
        self.last_error = ""
        self.ready = asyncio.Event()  # consuming
        #: called with each result once it is in the stream (tests)
        self.on_result: Callable[[CommandResult], None] | None = None

    async def run(self) -> None:
        delay = 0.2
        try:
            while True:
                try:
                    sub = await self._connect()
                    delay = 0.2
                    await self._consume(sub)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # no server, no stream yet (no centre), refused permissions
                    self._error(exc)
                    await self._close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            await self._close()

    async def _connect(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        async def error(exc: Exception) -> None:
            self._error(exc)

        self.nc = await connect(self.cfg, f"firebus-site-{self.cfg.site_id}-commands", error_cb=error)
        self.js = self.nc.jetstream(timeout=self.cfg.ack_timeout_s)
        durable = wire.site_consumer(self.cfg.site_id)
        subject = wire.command_subject(self.cfg.site_id, "*")
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, filter_subject=subject, ack_wait=ACK_WAIT_S,
                                # one at a time: two commands on one alarm apply in the order sent,
                                # even when the first went to a dead pull request (below)
                                max_deliver=-1, max_ack_pending=1)
        try:
            await self.js.add_consumer(self.cfg.command_stream, config)
        except Exception as exc:  # it exists with other settings: it is still our cursor
            log.debug("federation: consumer %s kept as it is: %s", durable, exc)
        sub = await self.js.pull_subscribe(subject, durable=durable, stream=self.cfg.command_stream,
                                           config=config)
        self.ready.set()
        return sub

    async def _close(self) -> None:
        self.ready.clear()
        nc, self.nc, self.js = self.nc, None, None
        if nc is not None:
            try:
                await asyncio.wait_for(nc.close(), 2)
            except Exception:
                pass

    async def _consume(self, sub: Any) -> None:
        import nats.errors

        while True:
            try:
                msgs = await sub.fetch(1, timeout=1.0)  # one is all max_ack_pending lets out
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                if self.nc is None or self.nc.is_closed:
                    return
                continue
            for msg in msgs:  # one at a time, in order: two commands on one alarm apply in order
                result = await self.handle(msg.data)
                if not result.command_id:  # nothing the centre could match an answer to
                    await msg.ack()
                    continue
                await self.js.publish(wire.result_subject(self.cfg.site_id), wire.encode(result),
                                      headers={"Nats-Msg-Id": f"result:{result.command_id}"})
                await msg.ack()  # after the result is stored in the stream, never before
                if self.on_result is not None:
                    self.on_result(result)

    # -- one command ----------------------------------------------------------------------------

    async def handle(self, body: bytes) -> CommandResult:
        """The result of one delivered command: applied, refused, or the one it had before."""
        site, now = self.cfg.site_id, self.core.clock.time()
        try:
            cmd = wire.decode_command(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            cmd_id = wire.command_id_of(body)
            log.warning("federation: a command that does not decode (%s): %s", cmd_id or "no id", exc)
            self.refused += 1
            return wire.refusal(cmd_id, site, Reason.INVALID, now, detail=str(exc))
        if cmd.site_id != site or not wire.ULID.match(cmd.id):
            self.refused += 1
            return wire.refusal(cmd.id, site, Reason.INVALID, now, detail=f"for site {cmd.site_id!r}")
        row = await self.core.storage.fetchone("SELECT state, result FROM federation_commands WHERE id = ?",
                                               (cmd.id,))
        if row is not None and row[0] == "done":
            self.repeats += 1
            return wire.decode_result(row[1])
        if row is None:  # new: a refusal needs no row before it, an action does
            refused = self._refuse(cmd, now)
            if refused is not None:
                return await self._done(cmd, refused, now, insert=True)
            await self.core.storage.execute(
                "INSERT INTO federation_commands (id, kind, alarm_id, issued_by, issued_at, received_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?, 'applying')",
                (cmd.id, str(cmd.kind), cmd.alarm_id, cmd.by, cmd.issued_at, now), lane=Lane.ALARM)
        # (row state "applying": a crash mid-action; the core skips it if it is in the history)
        actor = ACTOR_PREFIX + cmd.by
        outcome = await self.core.alarm_action(
            cmd.alarm_id, cmd.kind, actor, note=cmd.note,
            context=Context(id=cmd.id, actor=ActorKind.USER, actor_id=actor))
        at = self.core.clock.time()
        if outcome.outcome is AlarmActionOutcome.APPLIED:
            result = CommandResult(command_id=cmd.id, site_id=site, outcome=Outcome.APPLIED, at=at,
                                   alarm_status=outcome.status)
        else:
            result = wire.refusal(cmd.id, site, wire.REASON_OF[outcome.outcome], at, alarm=cmd.alarm_id,
                                  kind=cmd.kind, alarm_status=outcome.status,
                                  detail=outcome.message if outcome.outcome is AlarmActionOutcome.REFUSED else "")
        return await self._done(cmd, result, now, insert=False)

    def _refuse(self, cmd: Command, now: float) -> CommandResult | None:
        age = now - cmd.issued_at
        if now > cmd.expires_at or age > self.cfg.command_max_age_s:
            limit = min(cmd.expires_at - cmd.issued_at, self.cfg.command_max_age_s)
            return wire.refusal(cmd.id, self.cfg.site_id, Reason.EXPIRED, now, alarm=cmd.alarm_id, kind=cmd.kind,
                                age_s=age, limit_s=limit)
        if cmd.kind not in self.cfg.commands:
            return wire.refusal(cmd.id, self.cfg.site_id, Reason.NOT_PERMITTED, now, alarm=cmd.alarm_id,
                                kind=cmd.kind)
        return None

    async def _done(self, cmd: Command, result: CommandResult, now: float, *, insert: bool) -> CommandResult:
        if insert:
            await self.core.storage.execute(
                "INSERT INTO federation_commands (id, kind, alarm_id, issued_by, issued_at, received_at, state, result) "
                "VALUES (?, ?, ?, ?, ?, ?, 'done', ?) ON CONFLICT (id) DO NOTHING",
                (cmd.id, str(cmd.kind), cmd.alarm_id, cmd.by, cmd.issued_at, now, wire.encode(result)),
                lane=Lane.ALARM)
        else:
            await self.core.storage.execute("UPDATE federation_commands SET state = 'done', result = ? WHERE id = ?",
                                            (wire.encode(result), cmd.id), lane=Lane.ALARM)
        if result.outcome is Outcome.APPLIED:
            self.applied += 1
            log.info("federation: %s of alarm %s by centre user %s applied", cmd.kind, cmd.alarm_id, cmd.by)
        else:
            self.refused += 1
            log.info("federation: %s of alarm %s by centre user %s refused: %s", cmd.kind, cmd.alarm_id, cmd.by,
                     result.message)
        return result

    def _error(self, exc: BaseException) -> None:
        self.errors += 1
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.warning("federation: commands: %s", text)
        self.last_error = text

    def metrics(self) -> dict[str, Any]:
        return {"consuming": self.ready.is_set(), "applied": self.applied, "refused": self.refused,
                "repeats": self.repeats, "errors": self.errors, "last_error": self.last_error}


__all__ = ["ACTOR_PREFIX", "AlarmAction", "MIGRATIONS", "SiteCommands"]
