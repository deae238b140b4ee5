"""Persistence of alarms, their history, rule state and linkage outcomes: rows and reads.

The engine builds its own write operations (``checkpoint.py``, ``_flush``: a
transition's history row and ``AlarmEvent`` commit with a checkpoint of the
alarms and rule states, in the alarm lane); this module says what the rows are
and reads them back.  Reads go through the store's readers, never its writer.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import msgspec

from .model import Alarm, AlarmStatus, Episode, LinkageRecord, Transition

_enc = msgspec.json.Encoder()
_dec_alarm = msgspec.json.Decoder(Alarm)
_dec_link = msgspec.json.Decoder(LinkageRecord)

SQL_ALARM = """
INSERT INTO alarms (id, dedup_key, category, severity, active, acknowledged, unit_id, device_id,
                    point_id, location_id, start_ts, data, cp)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
  severity = excluded.severity, active = excluded.active, acknowledged = excluded.acknowledged,
  data = excluded.data, cp = excluded.cp
WHERE excluded.cp >= alarms.cp
"""
SQL_HISTORY = """
INSERT INTO alarm_history (alarm_id, ts, transition, actor_kind, actor, detail, context_id, parent_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
# cp: the engine's checkpoint number; a checkpoint that commits late never overwrites a newer one.
SQL_RULE_STATE = """
INSERT INTO alarm_rule_state (rule, scope, point_id, context_id, state, wake_at, cp) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (rule, scope) DO UPDATE SET
  point_id = excluded.point_id, context_id = excluded.context_id, state = excluded.state,
  wake_at = excluded.wake_at, cp = excluded.cp
WHERE excluded.cp >= alarm_rule_state.cp
"""
SQL_LINKAGE = """
INSERT INTO alarm_linkage (id, alarm_id, ts, ok, data) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET ok = excluded.ok, data = excluded.data
"""
SQL_LINKAGE_NEW = """
INSERT INTO alarm_linkage (id, alarm_id, ts, ok, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING
"""


def _json(value: Any) -> str:
    return _enc.encode(value).decode()


def alarm_row(alarm: Alarm, cp: int) -> tuple[Any, ...]:
    alarm.refresh_status()
    return (
        alarm.id, alarm.dedup_key, str(alarm.category), int(alarm.severity), int(alarm.active),
        int(alarm.acknowledged), alarm.unit_id, alarm.device_id, alarm.point_id, alarm.location_id,
        alarm.start_ts, _json(alarm), cp,
    )


def history_row(t: Transition) -> tuple[Any, ...]:
    return (t.alarm_id, t.ts, t.transition, t.actor_kind, t.actor, _json(t.detail), t.context_id, t.parent_id)


def rule_state_row(rule: str, scope: str, point_id: str, context_id: str | None, state: dict[str, Any],
                   wake_at: float | None, cp: int) -> tuple[Any, ...]:
    return (rule, scope, point_id, context_id, _json(state), wake_at, cp)


class AlarmStore:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    async def flush(self) -> None:
        barrier = getattr(self.storage, "barrier", None)
        if barrier is not None:
            await barrier()

    # -- writes (the engine builds its own operations; see checkpoint.py) -------------------

    def save_linkage(self, record: LinkageRecord, *, new: bool = False, on_durable: Callable[[], None] | None = None) -> None:
        """Queue a linkage record (``new``: insert only if absent, so a replay keeps the outcome)."""
        from firebus.sdk.events import Lane

        from ..storage import Op

        ok = None if record.ok is None else int(record.ok)
        sql = SQL_LINKAGE_NEW if new else SQL_LINKAGE
        self.storage.submit(Op([(sql, [(record.id, record.alarm_id, record.ts, ok, _json(record))])], None,
                               on_durable, Lane.ALARM))

    # -- reads -----------------------------------------------------------------------------

    async def max_checkpoint(self) -> int:
        row = await self.storage.fetchone(
            "SELECT max(coalesce((SELECT max(cp) FROM alarms), 0), coalesce((SELECT max(cp) FROM alarm_rule_state), 0))"
        )
        return int(row[0]) if row and row[0] is not None else 0

    async def open_alarms(self) -> list[Alarm]:
        rows = await self.storage.fetchall("SELECT data FROM alarms WHERE active = 1 OR acknowledged = 0")
        return [_dec_alarm.decode(r[0]) for r in rows]

    async def recent_episodes(self, limit: int) -> list[tuple[str, Episode]]:
        """(dedup key, episode) of the newest cleared alarms, oldest first, on their readings'
        clock where they have one (``Alarm.reading_window``)."""
        rows = await self.storage.fetchall(
            "SELECT dedup_key, start_ts, json_extract(data, '$.first_reading_ts'),"
            " json_extract(data, '$.last_reading_ts'),"
            " coalesce(json_extract(data, '$.clear_ts'), json_extract(data, '$.last_ts')), id,"
            " coalesce(json_extract(data, '$.ended_by_reading'), 0)"
            " FROM alarms WHERE active = 0 ORDER BY start_ts DESC LIMIT ?", (limit,),
        )
        out = []
        for dedup, start, first, last, ended, alarm_id, closed in reversed(rows):
            if first is not None and last is not None:
                out.append((dedup, Episode(float(first), float(last), alarm_id, bool(closed))))
            else:
                out.append((dedup, Episode(float(start), float(ended if ended is not None else start), alarm_id,
                                           False)))
        return out

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

    async def rule_states(self) -> list[tuple[str, str, str, str | None, dict[str, Any], float | None]]:
        rows = await self.storage.fetchall(
            "SELECT rule, scope, point_id, context_id, state, wake_at FROM alarm_rule_state"
        )
        # Equal states are decoded once and shared (40,000 rule states at 10,000 devices, a
        # handful of distinct ones): rules must not mutate a state (AlarmRule.evaluate), the
        # engine replaces it.
        decoded: dict[str, dict[str, Any]] = {}
        decode = msgspec.json.decode
        out = []
        for r in rows:
            state = decoded.get(r[4])
            if state is None:
                state = decoded[r[4]] = decode(r[4])
            out.append((r[0], r[1], r[2], r[3], state, r[5]))
        return out

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
