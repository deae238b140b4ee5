"""The centre's command desk: issue a command to a site, store the site's answer, list both.

Issuing: the command is committed to ``commands`` first, then published to JetStream
(``firebus.<site_id>.command.<kind>``, ``Nats-Msg-Id`` = its id); ``sent_at`` is set on
the PubAck.  A command whose publish failed (NATS down) stays unsent and is published
again every ``resend_every_s``: the caller's request never waits for the link.

Answers: a durable pull consumer ``centre-command-results`` on
``firebus.*.command_result`` inserts each into ``command_results`` (the first one
kept) and acknowledges it to JetStream after the COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec

from firebus.sdk import new_id
from firebus.sdk.core_api import AlarmAction

from . import commands as wire
from . import orgs
from .access import TOKEN_PREFIX, USER_BY_TOKEN, CentreUser, scoped_where, token_hash, user_from_row

log = logging.getLogger("firebus.plugin.federation.centre")

RESULTS_CONSUMER = "centre-command-results"

STATE_ZH = {"unsent": "未发出", "sent": "已发出，等待站点回复", "applied": "站点已执行", "refused": "站点已拒绝"}


class DeskError(Exception):
    """A refused request: HTTP status, a code, and why in English and Chinese."""

    def __init__(self, status: int, code: str, en: str, zh: str) -> None:
        super().__init__(en)
        self.status, self.code, self.en, self.zh = status, code, en, zh

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.en, "message_zh": self.zh}}


_SELECT = """
SELECT c.id, c.site_id, c.alarm_id, c.kind, c.note, c.issued_by, c.role, extract(epoch FROM c.issued_at)::float8,
       extract(epoch FROM c.expires_at)::float8, c.sent_at IS NOT NULL,
       r.outcome, r.reason, r.message, r.message_zh, r.alarm_status, extract(epoch FROM r.at)::float8
FROM commands c LEFT JOIN command_results r ON r.command_id = c.id
"""


def _view(row: tuple[Any, ...]) -> dict[str, Any]:
    (cid, site, alarm, kind, note, by, role, issued, expires, sent, outcome, reason, msg, msg_zh, status, at) = row
    state = outcome if outcome else ("sent" if sent else "unsent")
    try:
        kind_zh = wire.KIND_ZH[AlarmAction(kind)]
    except ValueError:
        kind_zh = kind
    return {
        "id": cid, "site_id": site, "alarm_id": alarm, "kind": kind, "kind_zh": kind_zh, "note": note,
        "issued_by": by, "role": role, "issued_at": issued, "expires_at": expires, "sent": bool(sent),
        "state": state, "state_zh": STATE_ZH.get(state, state),
        "result": None if outcome is None else {
            "outcome": outcome, "reason": reason, "message": msg, "message_zh": msg_zh, "alarm_status": status,
            "at": at},
    }


class CommandDesk:
    def __init__(self, pg: str, *, command_stream: str = wire.DEFAULT_COMMAND_STREAM,
                 expiry_s: float = wire.DEFAULT_EXPIRY_S, resend_every_s: float = 5.0) -> None:
        self.pg = pg
        self.command_stream = command_stream
        self.expiry_s = expiry_s
        self.resend_every_s = resend_every_s
        self.js: Any = None  # set by the centre once connected
        self.nc: Any = None
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self.issued = 0
        self.results = 0
        self.errors = 0
        self.last_error = ""

    # -- the database (one session; requests take turns, they are few) ---------------------------

    async def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        async with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = await psycopg.AsyncConnection.connect(self.pg, autocommit=True)
            cur = await self._conn.execute(sql, params)
            return await cur.fetchall() if cur.description else []

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:
                pass
            self._conn = None

    async def user_of_token(self, token: str) -> CentreUser | None:
        """The user holding ``token``, with the sites under their organisations as they are now."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        rows = await self.query(USER_BY_TOKEN, (token_hash(token),))
        if not rows:
            return None
        try:
            return user_from_row(rows[0])
        except ValueError:  # a role this version does not know: no access
            return None

    # -- issuing -------------------------------------------------------------------------------

    async def issue(self, user: CentreUser, site_id: str, alarm_id: str, kind: Any, *, note: Any = "",
                    command_id: Any = None, expires_in_s: Any = None, now: float | None = None,
                    ) -> tuple[dict[str, Any], bool]:
        """Store and send one command; returns its view and whether it is new (False: the same
        id was issued before with the same content, and nothing is sent again)."""
        if not user.can_command:
            raise DeskError(403, "forbidden", f"the {user.role} role may not send commands to sites",
                            f"{user.role} 角色不能向站点发送命令")
        await self._visible_site(user, site_id)
        try:
            action = AlarmAction(kind)
        except ValueError:
            raise DeskError(400, "bad_field", f"kind must be one of {[str(a) for a in AlarmAction]}",
                            f"kind 必须是 {[str(a) for a in AlarmAction]} 之一") from None
        if not isinstance(alarm_id, str) or not 0 < len(alarm_id) <= wire.MAX_ALARM_ID:
            raise DeskError(400, "bad_field", "alarm id: 1–128 characters", "报警编号：1–128 个字符")
        if not isinstance(note, str) or len(note) > wire.MAX_NOTE:
            raise DeskError(400, "bad_field", f"note must be a string of at most {wire.MAX_NOTE} characters",
                            f"备注必须是不超过 {wire.MAX_NOTE} 个字符的文本")
        if command_id is None:
            command_id = new_id()
        elif not isinstance(command_id, str) or not wire.ULID.match(command_id):
            raise DeskError(400, "bad_field", "id must be a ULID (26 characters, Crockford base32, upper case)",
                            "id 必须是 ULID（26 个大写 Crockford base32 字符）")
        if expires_in_s is None:
            expires_in_s = self.expiry_s
        elif isinstance(expires_in_s, bool) or not isinstance(expires_in_s, (int, float)) or \
                not 0 < expires_in_s <= self.expiry_s:
            raise DeskError(400, "bad_field", f"expires_in_s must be > 0 and ≤ {self.expiry_s:g}",
                            f"expires_in_s 必须 > 0 且 ≤ {self.expiry_s:g}")
        issued = time.time() if now is None else now
        cmd = wire.Command(id=command_id, site_id=site_id, kind=action, alarm_id=alarm_id, by=user.name,
                           role=str(user.role), issued_at=issued, expires_at=issued + float(expires_in_s), note=note)
        inserted = await self.query(
            "INSERT INTO commands (id, site_id, alarm_id, kind, note, issued_by, role, issued_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, to_timestamp(%s), to_timestamp(%s)) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            (cmd.id, site_id, alarm_id, str(action), note, user.name, str(user.role), cmd.issued_at, cmd.expires_at))
        if not inserted:
            found = await self.get(user, command_id)
            if found is not None and (found["site_id"], found["alarm_id"], found["kind"], found["issued_by"],
                                      found["note"]) == (site_id, alarm_id, str(action), user.name, note):
                return found, False
            raise DeskError(409, "id_conflict", f"command {command_id} exists with other content",
                            f"命令 {command_id} 已存在，内容不同")
        self.issued += 1
        await self._send(cmd)
        view = await self.get(user, command_id)
        assert view is not None
        return view, True

    async def _visible_site(self, user: CentreUser, site_id: str) -> None:
        """404 for a site the user may not see or the centre has never heard from (no oracle)."""
        known = user.sees(site_id) and bool(await self.query(
            "SELECT 1 FROM journal WHERE site_id = %s LIMIT 1", (site_id,)))
        if not known:
            raise DeskError(404, "site_not_found", f"no site {site_id!r}", f"没有站点 {site_id!r}")

    async def _send(self, cmd: wire.Command) -> bool:
        js = self.js
        if js is None or self.nc is None or not self.nc.is_connected:
            return False  # not now (a publish would wait for the reconnect): resend() sends it
        try:
            await js.publish(wire.command_subject(cmd.site_id, cmd.kind), wire.encode(cmd),
                             stream=self.command_stream, headers={"Nats-Msg-Id": cmd.id}, timeout=5)
        except Exception as exc:  # sent again by resend()
            self.note_error(exc)
            return False
        await self.query("UPDATE commands SET sent_at = now() WHERE id = %s AND sent_at IS NULL", (cmd.id,))
        return True

    async def resend(self) -> int:
        """Publish every command not yet in JetStream (oldest first); returns how many went."""
        rows = await self.query(
            "SELECT id, site_id, alarm_id, kind, note, issued_by, role, extract(epoch FROM issued_at)::float8, "
            "extract(epoch FROM expires_at)::float8 FROM commands WHERE sent_at IS NULL ORDER BY issued_at LIMIT 1000")
        sent = 0
        for cid, site, alarm, kind, note, by, role, issued, expires in rows:
            cmd = wire.Command(id=cid, site_id=site, kind=AlarmAction(kind), alarm_id=alarm, by=by, role=role,
                               issued_at=issued, expires_at=expires, note=note)
            if not await self._send(cmd):
                break
            sent += 1
        return sent

    async def resend_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resend_every_s)
            try:
                await self.resend()
            except Exception as exc:
                self.note_error(exc)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, user: CentreUser, command_id: str) -> dict[str, Any] | None:
        rows = await self.query(_SELECT + " WHERE c.id = %s", (command_id,))
        if not rows or not user.sees(rows[0][1]):
            return None
        return _view(rows[0])

    async def list(self, user: CentreUser, *, site_id: str | None = None, alarm_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        cond, params = scoped_where(user, "c.site_id", {"c.site_id": site_id, "c.alarm_id": alarm_id})
        total = (await self.query(f"SELECT count(*) FROM commands c WHERE {cond}", tuple(params)))[0][0]
        rows = await self.query(f"{_SELECT} WHERE {cond} ORDER BY c.issued_at DESC, c.id DESC LIMIT %s OFFSET %s",
                                 (*params, limit, offset))
        return [_view(r) for r in rows], int(total)

    # -- supervision reads (each scoped as the commands are) -----------------------------------

    async def known_sites(self) -> list[str]:
        """Every site the centre has received a journal entry from (a skip scan of its key)."""
        rows = await self.query(
            "WITH RECURSIVE s(site_id) AS ((SELECT site_id FROM journal ORDER BY site_id LIMIT 1) UNION ALL "
            "SELECT (SELECT j.site_id FROM journal j WHERE j.site_id > s.site_id ORDER BY j.site_id LIMIT 1) "
            "FROM s WHERE s.site_id IS NOT NULL) SELECT site_id FROM s WHERE site_id IS NOT NULL")
        return [r[0] for r in rows]

    async def sites(self, user: CentreUser) -> list[dict[str, Any]]:
        """The sites ``user`` sees that the centre has heard from, each with the organisations
        (of those the user may look at) that cover it directly."""
        tree = await orgs.load_tree(self.query)
        mine = {k for root in orgs.visible_roots(tree, user) for k in tree.subtree(root)}
        covering: dict[str, list[str]] = {}
        for org in tree:
            if org.key in mine:
                for site in org.units:
                    covering.setdefault(site, []).append(org.key)
        return [{"site_id": s, "orgs": sorted(covering.get(s, []))} for s in await self.known_sites() if user.sees(s)]

    async def organisations(self, user: CentreUser) -> list[dict[str, Any]]:
        tree = await orgs.load_tree(self.query)
        return orgs.to_builtins(tree, orgs.visible_roots(tree, user))

    async def alarms(self, user: CentreUser, *, site_id: str | None = None, status: str | None = None,
                     limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The latest transition of each alarm of the sites ``user`` sees, newest first."""
        cond, params = scoped_where(user, "site_id", {"site_id": site_id, "status": status})
        total = (await self.query(f"SELECT count(*) FROM alarms_current WHERE {cond}", tuple(params)))[0][0]
        rows = await self.query(
            "SELECT site_id, alarm_id, seq, transition, category, severity, rule, device_id, point_id, unit_id, "
            "location_id, value, message, message_zh, status, extract(epoch FROM ts)::float8 "
            f"FROM alarms_current WHERE {cond} ORDER BY ts DESC, site_id, alarm_id LIMIT %s OFFSET %s",
            (*params, limit, offset))
        keys = ("site_id", "alarm_id", "seq", "transition", "category", "severity", "rule", "device_id", "point_id",
                "unit_id", "location_id", "value", "message", "message_zh", "status", "ts")
        return [dict(zip(keys, r)) for r in rows], int(total)

    async def state(self, user: CentreUser, site_id: str, *, limit: int = 1000, offset: int = 0,
                    ) -> tuple[list[dict[str, Any]], int]:
        """The present value of every point of one site, by point id; 404 outside the user's sites."""
        await self._visible_site(user, site_id)
        total = (await self.query("SELECT count(*) FROM latest_state WHERE site_id = %s", (site_id,)))[0][0]
        rows = await self.query(
            "SELECT point_id, device_id, point_key, point_class, coalesce(val, to_jsonb(num)), fault, "
            "extract(epoch FROM vts)::float8, seq FROM latest_state WHERE site_id = %s ORDER BY point_id "
            "LIMIT %s OFFSET %s", (site_id, limit, offset))
        keys = ("point_id", "device_id", "point_key", "point_class", "value", "fault", "vts", "seq")
        return [dict(zip(keys, r)) for r in rows], int(total)

    async def site_alarms(self, user: CentreUser, site_id: str, **kw: Any) -> tuple[list[dict[str, Any]], int]:
        await self._visible_site(user, site_id)
        return await self.alarms(user, site_id=site_id, **kw)

    # -- the sites' answers ------------------------------------------------------------------------

    async def subscribe_results(self, js: Any) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(durable_name=RESULTS_CONSUMER, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, filter_subject=wire.result_subject("*"),
                                ack_wait=10, max_deliver=-1)
        try:
            await js.add_consumer(self.command_stream, config)
        except Exception as exc:
            log.warning("federation centre: consumer %s kept as it is: %s", RESULTS_CONSUMER, exc)
        return await js.pull_subscribe(wire.result_subject("*"), durable=RESULTS_CONSUMER,
                                       stream=self.command_stream, config=config)

    async def results_loop(self, sub: Any) -> None:
        import nats.errors

        while True:
            try:
                msgs = await sub.fetch(100, timeout=1.0)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            except Exception as exc:  # the link went away: nats-py reconnects
                self.note_error(exc)
                await asyncio.sleep(0.5)
                continue
            try:
                await self._store_results(msgs)
            except Exception as exc:  # not acknowledged: delivered again after ack_wait
                self.note_error(exc)
                await asyncio.sleep(0.5)
                continue
            for m in msgs:  # after the COMMIT
                try:
                    await m.ack()
                except Exception as exc:
                    self.note_error(exc)

    async def _store_results(self, msgs: list[Any]) -> None:
        for m in msgs:
            try:
                r = wire.decode_result(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self.query("INSERT INTO fed_quarantine (subject, body, reason) VALUES (%s, %s, %s)",
                                  (m.subject, m.data, str(exc)))
                continue
            done = await self.query(
                "INSERT INTO command_results (command_id, site_id, outcome, reason, message, message_zh, "
                "alarm_status, at) VALUES (%s, %s, %s, %s, %s, %s, %s, to_timestamp(%s)) "
                "ON CONFLICT (command_id) DO NOTHING RETURNING 1",
                (r.command_id, r.site_id, str(r.outcome), None if r.reason is None else str(r.reason), r.message,
                 r.message_zh, r.alarm_status, r.at))
            self.results += len(done)

    def note_error(self, exc: BaseException) -> None:
        self.errors += 1
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.warning("federation centre: commands: %s", text)
        self.last_error = text

    def metrics(self) -> dict[str, Any]:
        return {"issued": self.issued, "results": self.results, "errors": self.errors, "last_error": self.last_error}
