"""Persistence of alarms, their history, rule state, timers and linkage outcomes.

Writes go through the core's single writer (``Storage.put``: batched, committed
in order); ``flush`` waits until everything queued is committed.  An alarm
transition carries an ``on_durable`` callback that announces it after COMMIT, so
an alarm anyone has heard of is on disk, and so is every write queued before it.
A hard kill loses at most the uncommitted tail, none of which was announced.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import msgspec

from .model import Alarm, AlarmStatus, LinkageRecord, Transition

_enc = msgspec.json.Encoder()
_dec_alarm = msgspec.json.Decoder(Alarm)
_dec_link = msgspec.json.Decoder(LinkageRecord)

SQL_ALARM = """
INSERT INTO alarms (id, dedup_key, category, severity, active, acknowledged, unit_id, device_id,
                    point_id, location_id, start_ts, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  severity = excluded.severity, active = excluded.active, acknowledged = excluded.acknowledged,
  data = excluded.data
"""
SQL_HISTORY = """
INSERT INTO alarm_history (alarm_id, ts, transition, actor_kind, actor, detail, context_id, parent_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
SQL_RULE_STATE = """
INSERT INTO alarm_rule_state (rule, scope, point_id, context_id, state) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (rule, scope) DO UPDATE SET
  point_id = excluded.point_id, context_id = excluded.context_id, state = excluded.state
"""
SQL_TIMER = """
INSERT INTO alarm_timers (key, kind, due, data) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, due = excluded.due, data = excluded.data
"""
SQL_LINKAGE = """
INSERT INTO alarm_linkage (id, alarm_id, ts, ok, data) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET ok = excluded.ok, data = excluded.data
"""


SQL_WATERMARK = """
INSERT INTO alarm_watermark (point_id, ts) VALUES (?, ?)
ON CONFLICT (point_id) DO UPDATE SET ts = max(ts, excluded.ts)
"""

SQL_UNEVALUATED = """
SELECT r.point_id, r.ts, r.value, r.fault FROM readings r
LEFT JOIN alarm_watermark w ON w.point_id = r.point_id
WHERE r.ts > coalesce(w.ts, -1)
ORDER BY r.point_id, r.ts
"""


def _json(value: Any) -> str:
    return _enc.encode(value).decode()


class AlarmStore:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    async def _write(self, statement: str, row: Sequence[Any], on_durable: Callable[[], None] | None = None) -> None:
        put = getattr(self.storage, "put", None)
        if put is not None:
            await put(statement, [row], on_durable)
        else:  # a StorageAPI without the batching writer: one transaction per write
            await self.storage.executemany(statement, [row])
            if on_durable is not None:
                on_durable()

    async def flush(self) -> None:
        barrier = getattr(self.storage, "barrier", None)
        if barrier is not None:
            await barrier()

    # -- writes ----------------------------------------------------------------------------

    async def save_alarm(self, alarm: Alarm, on_durable: Callable[[], None] | None = None) -> None:
        alarm.refresh_status()
        await self._write(
            SQL_ALARM,
            (
                alarm.id,
                alarm.dedup_key,
                str(alarm.category),
                int(alarm.severity),
                int(alarm.active),
                int(alarm.acknowledged),
                alarm.unit_id,
                alarm.device_id,
                alarm.point_id,
                alarm.location_id,
                alarm.start_ts,
                _json(alarm),
            ),
            on_durable,
        )

    async def add_transition(self, t: Transition, on_durable: Callable[[], None] | None = None) -> None:
        await self._write(
            SQL_HISTORY,
            (t.alarm_id, t.ts, t.transition, t.actor_kind, t.actor, _json(t.detail), t.context_id, t.parent_id),
            on_durable,
        )

    async def save_rule_state(
        self, rule: str, scope: str, point_id: str, context_id: str | None, state: dict[str, Any]
    ) -> None:
        await self._write(SQL_RULE_STATE, (rule, scope, point_id, context_id, _json(state)))

    async def save_watermark(self, point_id: str, ts_ms: int) -> None:
        """Queued after the rule writes of that reading, so it commits with or after them."""
        await self._write(SQL_WATERMARK, (point_id, ts_ms))

    async def unevaluated_readings(self) -> list[tuple[str, int, Any, str | None]]:
        return await self.storage.fetchall(SQL_UNEVALUATED)

    async def save_timer(self, key: str, kind: str, due: float | None, data: dict[str, Any]) -> None:
        await self._write(SQL_TIMER, (key, kind, due, _json(data)))

    async def save_linkage(self, record: LinkageRecord) -> None:
        ok = None if record.ok is None else int(record.ok)
        await self._write(SQL_LINKAGE, (record.id, record.alarm_id, record.ts, ok, _json(record)))

    # -- reads -----------------------------------------------------------------------------

    async def open_alarms(self) -> list[Alarm]:
        rows = await self.storage.fetchall("SELECT data FROM alarms WHERE active = 1 OR acknowledged = 0")
        return [_dec_alarm.decode(r[0]) for r in rows]

    async def get_alarm(self, alarm_id: str) -> Alarm | None:
        row = await self.storage.fetchone("SELECT data FROM alarms WHERE id = ?", (alarm_id,))
        return _dec_alarm.decode(row[0]) if row else None

    async def query_alarms(
        self,
        statuses: Iterable[AlarmStatus] | None = None,
        unit_id: str | None = None,
        category: str | None = None,
        device_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[Alarm]:
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            parts = []
            for status in statuses:
                status = AlarmStatus(status)
                parts.append("(active = ? AND acknowledged = ?)")
                params += [int(status.startswith("active")), int(not status.endswith("_unack"))]
            where.append("(" + (" OR ".join(parts) or "0") + ")")
        for column, value in (("unit_id", unit_id), ("category", category), ("device_id", device_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        sql = "SELECT data FROM alarms"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY active DESC, severity DESC, start_ts DESC LIMIT ? OFFSET ?"
        rows = await self.storage.fetchall(sql, (*params, limit, offset))
        return [_dec_alarm.decode(r[0]) for r in rows]

    async def history(self, alarm_id: str) -> list[Transition]:
        rows = await self.storage.fetchall(
            "SELECT alarm_id, ts, transition, actor_kind, actor, detail, context_id, parent_id "
            "FROM alarm_history WHERE alarm_id = ? ORDER BY seq",
            (alarm_id,),
        )
        return [
            Transition(
                alarm_id=r[0], ts=r[1], transition=r[2], actor_kind=r[3], actor=r[4],
                detail=msgspec.json.decode(r[5]), context_id=r[6], parent_id=r[7],
            )
            for r in rows
        ]

    async def rule_states(self) -> list[tuple[str, str, str, str | None, dict[str, Any]]]:
        rows = await self.storage.fetchall("SELECT rule, scope, point_id, context_id, state FROM alarm_rule_state")
        return [(r[0], r[1], r[2], r[3], msgspec.json.decode(r[4])) for r in rows]

    async def timers(self) -> list[tuple[str, str, float, dict[str, Any]]]:
        rows = await self.storage.fetchall(
            "SELECT key, kind, due, data FROM alarm_timers WHERE due IS NOT NULL ORDER BY due"
        )
        return [(r[0], r[1], r[2], msgspec.json.decode(r[3])) for r in rows]

    async def linkage(self, alarm_id: str | None = None, pending_only: bool = False) -> list[LinkageRecord]:
        sql = "SELECT data FROM alarm_linkage"
        where, params = [], []
        if alarm_id is not None:
            where.append("alarm_id = ?")
            params.append(alarm_id)
        if pending_only:
            where.append("ok IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.storage.fetchall(sql + " ORDER BY ts, id", params)
        return [_dec_link.decode(r[0]) for r in rows]
