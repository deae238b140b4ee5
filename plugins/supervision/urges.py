"""Urging (催促/督办) a unit: recorded, raised as a supervisory alarm at the unit, answered.

An urge is a row in ``sup_urges`` and, while open, a ``ConditionReported`` condition
``supervision`` / ``urge:<id>`` / ``urge`` at the unit: the core's alarm engine puts it on
the unit's board, and the notify plugin tells and escalates it to the unit's people by its
routes (category supervisory), like a missed patrol.  The answer of the unit's
manager or duty officer is recorded and clears the condition.  Past its ``due`` time an
unanswered urge raises a second condition (key ``overdue``, severity fault) so routes
that escalate by severity reach the supervisors too.

Order of writes: the row first, then the condition; at start every open urge's
condition is reported again (the engine keeps one alarm per condition, so a repeat
changes nothing), so a crash between the two loses nothing.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import msgspec

from firebus.sdk import ActorKind, AlarmCategory, ConditionReported, Context, Severity, new_id

SOURCE = "supervision"
#: roles that urge (firebus.sdk.web.URGE_ROLES) and roles of the unit that answer
ANSWER_ROLES = frozenset({"unit_manager", "duty_officer", "admin"})
MAX_TEXT = 2000
_COLS = "id, unit_key, text, due_ts, by_user, by_role, ts, status, answer, answered_by, answered_ts, overdue"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, message_zh: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_zh, self.field = status, code, message, message_zh, field


class UrgeIn(msgspec.Struct, forbid_unknown_fields=True):
    unit: str
    text: str
    due: float | str | None = None  # epoch seconds or ISO 8601


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


def _urge(row: tuple[Any, ...]) -> dict[str, Any]:
    (uid, unit, text, due, by, role, ts, status, answer, answered_by, answered_ts, overdue) = row
    return {"id": uid, "unit": unit, "text": text, "due": due, "by": by, "by_role": role, "ts": ts,
            "status": status, "overdue": bool(overdue), "answer": answer or None,
            "answered_by": answered_by, "answered_ts": answered_ts}


def parse_due(value: float | str | None, now: float) -> float | None:
    import datetime as dt

    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ts = float(value)
    else:
        try:
            ts = float(value)
        except (TypeError, ValueError):
            try:
                parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise Refused(400, "bad_field", f"due: epoch seconds or ISO 8601 time, got {value!r}",
                              "due：须为时间戳或 ISO 8601 时间", "due") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            ts = parsed.timestamp()
    if not math.isfinite(ts) or ts <= now:
        raise Refused(400, "bad_field", "due: must be a time in the future", "due：须为将来的时间", "due")
    return ts


class Urges:
    def __init__(self, core: Any, unit_names: dict[str, str]) -> None:
        self.core = core
        self.storage = core.storage
        self.clock = core.clock
        self.unit_names = unit_names
        self._wake = anyio.Event()
        self._stopped = False

    def _place_id(self, unit: str) -> str | None:
        place = self.core.registry.place_by_key(unit)
        return place.id if place is not None and str(place.kind) == "unit" else None

    def _report(self, urge: dict[str, Any], key: str, active: bool) -> None:
        name = self.unit_names.get(urge["unit"], urge["unit"])
        severity = Severity.FAULT if key == "overdue" else Severity.SUPERVISORY
        if key == "overdue":
            message = f"urge from {urge['by']} to {name} is past its due time unanswered: {urge['text']}"
            message_zh = f"{urge['by']} 对 {name} 的督办已逾期未回复：{urge['text']}"
        else:
            message = f"{urge['by']} ({urge['by_role']}) urges {name}: {urge['text']}"
            message_zh = f"{urge['by']} 督办 {name}：{urge['text']}，请尽快处理并回复"
        self.core.bus.publish(
            ConditionReported(source=SOURCE, subject=f"urge:{urge['id']}", key=key, active=active,
                              category=AlarmCategory.SUPERVISORY, severity=severity,
                              unit_id=self._place_id(urge["unit"]),
                              message=message, message_zh=message_zh),
            Context(actor=ActorKind.PLUGIN, actor_id=SOURCE),
        )

    async def resume(self) -> None:
        """Report every open urge's conditions again (see module doc)."""
        for urge in await self.list(None, status="open"):
            self._report(urge, "urge", True)
            if urge["overdue"]:
                self._report(urge, "overdue", True)

    async def get(self, uid: str) -> dict[str, Any] | None:
        row = await self.storage.fetchone(f"SELECT {_COLS} FROM sup_urges WHERE id = ?", (uid,))
        return _urge(row) if row else None

    async def list(self, units: set[str] | None, *, status: str | None = None, unit: str | None = None,
                   limit: int = 500) -> list[dict[str, Any]]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if unit:
            where.append("unit_key = ?")
            params.append(unit)
        sql = f"SELECT {_COLS} FROM sup_urges" + (" WHERE " + " AND ".join(where) if where else "")
        rows = await self.storage.fetchall(sql + " ORDER BY ts DESC, id DESC", params)
        out = [_urge(r) for r in rows if units is None or r[1] in units]
        return out[:limit]

    async def create(self, body: UrgeIn, user: str, role: str, units: set[str] | None) -> dict[str, Any]:
        now = self.clock.time()
        if body.unit not in self.unit_names or (units is not None and body.unit not in units):
            raise Refused(404, "unit_not_found", f"unit: no unit {body.unit!r} in your scope",
                          f"unit：您的范围内没有单位 {body.unit}", "unit")
        text = body.text.strip()
        if not text:
            raise Refused(400, "bad_field", "text: say what the unit is to do", "text：请填写督办内容", "text")
        if len(text) > MAX_TEXT:
            raise Refused(400, "bad_field", f"text: at most {MAX_TEXT} characters", f"text：最多 {MAX_TEXT} 字", "text")
        due = parse_due(body.due, now)
        uid = new_id()
        await self.storage.execute(
            "INSERT INTO sup_urges (id, unit_key, text, due_ts, by_user, by_role, ts) VALUES (?,?,?,?,?,?,?)",
            (uid, body.unit, text, due, user, role, now))
        urge = await self.get(uid)
        assert urge is not None
        self._report(urge, "urge", True)
        self._wake.set()
        return urge

    async def answer(self, uid: str, body: AnswerIn, user: str, units: set[str] | None) -> dict[str, Any]:
        urge = await self.get(uid)
        if urge is None or (units is not None and urge["unit"] not in units):
            raise Refused(404, "urge_not_found", f"no urge {uid!r}", f"没有督办 {uid}")
        text = body.text.strip()
        if not text:
            raise Refused(400, "bad_field", "text: the answer is empty", "text：请填写回复内容", "text")
        if len(text) > MAX_TEXT:
            raise Refused(400, "bad_field", f"text: at most {MAX_TEXT} characters", f"text：最多 {MAX_TEXT} 字", "text")
        if urge["status"] == "answered":
            raise Refused(409, "already_answered", f"urge {uid} was answered by {urge['answered_by']}",
                          f"该督办已由 {urge['answered_by']} 回复")
        await self.storage.execute(
            "UPDATE sup_urges SET status = 'answered', answer = ?, answered_by = ?, answered_ts = ? "
            "WHERE id = ? AND status = 'open'", (text, user, self.clock.time(), uid))
        self._report(urge, "urge", False)
        if urge["overdue"]:
            self._report(urge, "overdue", False)
        return await self.get(uid) or {}

    # -- due times ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Raise the ``overdue`` condition of urges past their due time, unanswered."""
        while not self._stopped:
            now = self.clock.time()
            rows = await self.storage.fetchall(
                f"SELECT {_COLS} FROM sup_urges WHERE status = 'open' AND overdue = 0 AND due_ts IS NOT NULL")
            wake: float | None = None
            for row in rows:
                urge = _urge(row)
                if urge["due"] <= now:
                    await self.storage.execute("UPDATE sup_urges SET overdue = 1 WHERE id = ?", (urge["id"],))
                    self._report(urge, "overdue", True)
                else:
                    wake = urge["due"] if wake is None else min(wake, urge["due"])
            self._wake = anyio.Event()
            if wake is None:  # nothing due: only a new urge (or stop) wakes the loop
                await self._wake.wait()
                continue
            # sleep on the core's clock (a hand-driven one in tests) until the next due time; a new urge wakes it
            delay = max(0.0, wake - now)
            async with anyio.create_task_group() as tg:
                async def sleeper(delay: float = delay) -> None:  # this iteration's delay
                    await self.clock.sleep(delay)
                    tg.cancel_scope.cancel()

                async def waker() -> None:
                    await self._wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waker)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
