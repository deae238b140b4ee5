"""The running inspection service: tasks from plans, records, hazards, and the alarms they raise.

Writes go through the core's storage writer (``core.storage``); alarms through the
core's alarm engine, by publishing ``ConditionReported`` journal entries (a missed
task, an overdue or escalated rectification).  A record is the truth; which task
it completes is derived and re-derived (a record that arrives late from a phone's
offline queue still completes the task of the window it was made in).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

import anyio
import msgspec

from firebus.sdk import ActorKind, AlarmCategory, ConditionReported, Context, Severity as AlarmSeverity, new_id

from .catalogue import CatalogueItem
from .config import (
    SEVERITIES,
    InspectionConfig,
    Plan,
    catalogue,
    duration,
    location_units,
    normalise_code,
)
from .hazards import PENDING, Action, Refused, Severity, State, check
from .model import ID, ActionIn, DutyIn, HazardIn, RecordIn, Result
from .schedule import effective, next_start, period_start, task_id, windows

log = logging.getLogger("firebus.plugin.inspection")
SOURCE = "inspection"
MAX_PHOTO = 60_000  # bytes; the panel refuses bodies over 64 KiB, the page shrinks photos to fit
PHOTO_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG", "image/webp": b"RIFF"}
FUTURE_SLACK = 300.0  # s a client clock may run ahead
BACKFILL = 7 * 86400.0  # tasks of windows while the core was down are still made (then missed)
_enc = msgspec.json.Encoder()
_H_COLS = ("id", "unit", "checkpoint", "location", "item", "source", "source_ref", "description", "severity",
           "major_criteria", "state", "responsible", "deadline", "created_ts", "created_by", "updated_ts",
           "closed_ts", "last_urge_ts", "urges", "escalated")
_H_SQL = ("id, unit_key, checkpoint_key, location_key, item, source, source_ref, description, severity, "
          "major_criteria, state, responsible, deadline_ts, created_ts, created_by, updated_ts, closed_ts, "
          "last_urge_ts, urges, escalated")


def _j(value: Any) -> str:
    return _enc.encode(value).decode()


def parse_ts(value: float | str | None, name: str, default: float | None = None) -> float | None:
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(400, "bad_request", f"{name} must be epoch seconds or ISO 8601, got {value!r}",
                      f"{name} 须为时间戳或 ISO 8601 时间") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


class Service:
    def __init__(self, core: Any, cfg: InspectionConfig, site: dict[str, Any],
                 unit_of_place: Callable[[str], str | None] | None = None) -> None:
        self.core = core
        self.cfg = cfg
        self.clock = core.clock
        self.storage = core.storage
        tzname = str((site.get("site") or {}).get("timezone") or "Asia/Shanghai")
        self.tz = ZoneInfo(tzname)
        # place key → unit key: the registry at run time, the site file's tree offline (CLI)
        self._unit_of_place = unit_of_place or location_units(site).get
        self.items: dict[str, CatalogueItem] = catalogue(cfg)
        self.checkpoints = {cp.key: cp for cp in cfg.checkpoints}
        self.plans = {p.key: p for p in cfg.plans if p.enabled}
        self.schedules = {k: effective(p.schedule, cfg.unit_class, cfg.open_hours) for k, p in self.plans.items()}
        self.tags = {(t.kind.value, normalise_code(t.kind, t.code)): cp.key for cp in cfg.checkpoints for t in cp.tags}
        h = cfg.hazards
        self.deadline_s = duration(h.deadline, "deadline")
        self.major_deadline_s = duration(h.major_deadline, "major_deadline")
        self.urge_s = duration(h.urge_every, "urge_every")
        self.escalate_s = duration(h.escalate_after, "escalate_after")
        self.escalate_severity = AlarmSeverity(SEVERITIES[h.escalate_severity])
        self.tick_s = duration(cfg.tick, "tick")
        self._last_start: dict[str, float] = {}
        self._scope: anyio.CancelScope | None = None
        self._lock = anyio.Lock()  # one writer of task state at a time (scheduler vs. requests)
        self.ticks = 0

    # -- places -------------------------------------------------------------------------------

    def unit_of(self, checkpoint_key: str | None = None, place_key: str | None = None) -> str | None:
        if checkpoint_key:
            cp = self.checkpoints.get(checkpoint_key)
            place_key = cp.location if cp else place_key
        return self._unit_of_place(place_key) if place_key else None

    def place_id(self, key: str | None) -> str | None:
        if not key:
            return None
        lookup = getattr(self.core.registry, "place_by_key", None)
        place = lookup(key) if callable(lookup) else None
        return getattr(place, "id", None)

    def _publish(self, subject: str, key: str, active: bool, *, unit: str | None, place: str | None,
                 message: str = "", message_zh: str = "", severity: AlarmSeverity = AlarmSeverity.SUPERVISORY,
                 value: Any = None) -> None:
        self.core.bus.publish(
            ConditionReported(
                source=SOURCE, subject=subject, key=key, active=active, category=AlarmCategory.SUPERVISORY,
                severity=severity, unit_id=self.place_id(unit), location_id=self.place_id(place), value=value,
                message=message, message_zh=message_zh,
            ),
            Context(actor=ActorKind.PLUGIN, actor_id=SOURCE),
        )

    # -- start --------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Mirror the site file's checkpoints, tags and plans (records keep old keys valid)."""
        st = self.storage
        await st.execute("UPDATE insp_checkpoints SET active = 0")
        await st.executemany(
            "INSERT INTO insp_checkpoints (key, unit_key, location_key, name, items, active) VALUES (?,?,?,?,?,1) "
            "ON CONFLICT (key) DO UPDATE SET unit_key = excluded.unit_key, location_key = excluded.location_key, "
            "name = excluded.name, items = excluded.items, active = 1",
            [(cp.key, self.unit_of(cp.key), cp.location, cp.name, _j(cp.items)) for cp in self.cfg.checkpoints],
        )
        await st.execute("DELETE FROM insp_tags")
        await st.executemany("INSERT INTO insp_tags (kind, code, checkpoint_key) VALUES (?,?,?)",
                             [(k, c, cp) for (k, c), cp in self.tags.items()])
        await st.execute("UPDATE insp_plans SET active = 0")
        await st.executemany(
            "INSERT INTO insp_plans (key, name, unit_key, role, checkpoints, schedule, active) VALUES (?,?,?,?,?,?,1) "
            "ON CONFLICT (key) DO UPDATE SET name = excluded.name, unit_key = excluded.unit_key, role = excluded.role, "
            "checkpoints = excluded.checkpoints, schedule = excluded.schedule, active = 1",
            [(p.key, p.name, self.unit_of(p.checkpoints[0]), p.role, _j(p.checkpoints), _j(self.schedules[k]))
             for k, p in self.plans.items()],
        )
        for key in self.plans:
            row = await st.fetchone("SELECT MAX(start_ts) FROM insp_tasks WHERE plan_key = ?", (key,))
            if row and row[0] is not None:
                self._last_start[key] = float(row[0])

    def poke(self) -> None:
        """Something changed that may be due sooner than the scheduler's sleep."""
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        while True:
            try:
                wake = await self.tick()
            except anyio.get_cancelled_exc_class():
                raise
            except Exception:  # a bad row must not stop the patrol alarms
                log.exception("inspection: scheduler tick failed")
                wake = self.clock.time() + self.tick_s
            now = self.clock.time()
            with anyio.CancelScope() as scope:
                self._scope = scope
                await self.clock.sleep(max(0.0, min(wake, now + self.tick_s) - now))
            self._scope = None

    async def tick(self) -> float:
        """Make due tasks, mark missed ones, urge and escalate overdue hazards; returns when next due."""
        async with self._lock:
            now = self.clock.time()
            self.ticks += 1
            wake = now + self.tick_s
            for plan in self.plans.values():
                nxt = await self._make_tasks(plan, now)
                if nxt is not None:
                    wake = min(wake, nxt)
            wake = min(wake, await self._check_missed(now))
            wake = min(wake, await self._check_hazards(now))
            return wake

    # -- tasks --------------------------------------------------------------------------------

    async def _make_tasks(self, plan: Plan, now: float) -> float | None:
        s = self.schedules[plan.key]
        last = self._last_start.get(plan.key)
        if last is None:
            # First start of this plan: only the occurrence running now, no invented past.
            found = [w for w in windows(s, self.tz, now - 62 * 86400, now) if w.due > now]
        else:
            found = windows(s, self.tz, max(last, now - BACKFILL), now)
        unit = self.unit_of(plan.checkpoints[0])
        for w in found:
            tid = task_id(plan, w.start)
            await self.storage.execute(
                "INSERT OR IGNORE INTO insp_tasks (id, plan_key, unit_key, role, start_ts, due_ts, status) "
                "VALUES (?,?,?,?,?,?,'open')", (tid, plan.key, unit, plan.role, w.start, w.due))
            await self.storage.executemany(
                "INSERT OR IGNORE INTO insp_task_stops (task_id, seq, checkpoint_key) VALUES (?,?,?)",
                [(tid, i, cp) for i, cp in enumerate(plan.checkpoints)])
            # Records made in this window before the task existed (an offline phone) count.
            rows = await self.storage.fetchall(
                "SELECT id, checkpoint_key, ts FROM insp_records WHERE ts >= ? AND ts < ? ORDER BY ts",
                (w.start, w.due))
            for rid, cp, ts in rows:
                if cp in plan.checkpoints:
                    await self._visit(tid, cp, rid, ts)
            self._last_start[plan.key] = max(self._last_start.get(plan.key, 0.0), w.start)
        if plan.key not in self._last_start:
            self._last_start[plan.key] = now
        return next_start(s, self.tz, now)

    async def _visit(self, tid: str, checkpoint: str, record_id: str, ts: float) -> bool:
        """Mark a stop visited; complete the task when every stop is; True if the task completed now."""
        await self.storage.execute(
            "UPDATE insp_task_stops SET record_id = ?, done_ts = ? WHERE task_id = ? AND checkpoint_key = ? "
            "AND record_id IS NULL", (record_id, ts, tid, checkpoint))
        left = await self.storage.fetchone(
            "SELECT COUNT(*), MAX(done_ts) FROM insp_task_stops WHERE task_id = ? AND record_id IS NULL", (tid,))
        if left and left[0] == 0:
            row = await self.storage.fetchone("SELECT status FROM insp_tasks WHERE id = ?", (tid,))
            if row is None or row[0] == "done":
                return False
            last = await self.storage.fetchone("SELECT MAX(done_ts) FROM insp_task_stops WHERE task_id = ?", (tid,))
            await self.storage.execute("UPDATE insp_tasks SET status = 'done', done_ts = ? WHERE id = ?",
                                       (last[0] if last else ts, tid))
            if row[0] == "missed":  # the record was made in time and reached us late: clear the alarm
                self._publish(f"task:{tid}", "missed", False, unit=None, place=None, value=record_id)
            return True
        return False

    async def _check_missed(self, now: float) -> float:
        rows = await self.storage.fetchall(
            "SELECT id, plan_key, unit_key, start_ts, due_ts FROM insp_tasks WHERE status = 'open' ORDER BY due_ts")
        wake = now + self.tick_s
        for tid, plan_key, unit, start, due in rows:
            if due > now:
                wake = min(wake, due)
                continue
            skipped = [r[0] for r in await self.storage.fetchall(
                "SELECT checkpoint_key FROM insp_task_stops WHERE task_id = ? AND record_id IS NULL ORDER BY seq",
                (tid,))]
            plan = self.plans.get(plan_key)
            pname = (plan.name if plan else "") or plan_key
            names = ", ".join((self.checkpoints[c].name or c) if c in self.checkpoints else c for c in skipped)
            when = dt.datetime.fromtimestamp(start, self.tz).strftime("%Y-%m-%d %H:%M")
            place = self.checkpoints[skipped[0]].location if skipped and skipped[0] in self.checkpoints else None
            self._publish(
                f"task:{tid}", "missed", True, unit=unit, place=place, value=len(skipped),
                message=f"patrol {pname} of {when} not done in time: {len(skipped)} checkpoint(s) skipped ({names})",
                message_zh=f"巡查任务 {pname}（{when}）未按时完成：漏检 {len(skipped)} 个点位（{names}）",
            )
            # Marked after the alarm is published (alarm lane, committed first): a crash in between
            # publishes it again at the next start, and the engine keeps one alarm per task.
            await self.storage.execute(
                "UPDATE insp_tasks SET status = 'missed', missed_ts = ? WHERE id = ? AND status = 'open'", (now, tid))
        return wake

    async def list_tasks(self, units: set[str] | None, status: str | None, since: float | None,
                         until: float | None, limit: int = 200) -> list[dict[str, Any]]:
        where, params = ["1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if since is not None:
            where.append("due_ts > ?")
            params.append(since)
        if until is not None:
            where.append("start_ts <= ?")
            params.append(until)
        rows = await self.storage.fetchall(
            "SELECT id, plan_key, unit_key, role, start_ts, due_ts, status, done_ts, missed_ts FROM insp_tasks "
            f"WHERE {' AND '.join(where)} ORDER BY start_ts DESC LIMIT ?", (*params, limit * 4))
        out = []
        for tid, plan_key, unit, role, start, due, st, done_ts, missed_ts in rows:
            if units is not None and unit not in units:
                continue
            stops = await self.storage.fetchall(
                "SELECT checkpoint_key, record_id, done_ts FROM insp_task_stops WHERE task_id = ? ORDER BY seq", (tid,))
            plan = self.plans.get(plan_key)
            out.append({
                "id": tid, "plan": plan_key, "plan_name": plan.name if plan else "", "unit": unit, "role": role,
                "start": start, "due": due, "status": st, "done_ts": done_ts, "missed_ts": missed_ts,
                "stops": [{"checkpoint": cp, "name": self.checkpoints[cp].name if cp in self.checkpoints else cp,
                           "record_id": rid, "done_ts": dts,
                           "items": await self.due_items(cp, start) if st == "open" else []}
                          for cp, rid, dts in stops],
            })
            if len(out) >= limit:
                break
        return out

    async def due_items(self, checkpoint: str, at: float) -> list[str]:
        """Items of the checkpoint not yet checked in their period (the period containing ``at``)."""
        cp = self.checkpoints.get(checkpoint)
        if cp is None:
            return []
        due = []
        for key in cp.items:
            item = self.items.get(key)
            if item is None:
                continue
            since = period_start(item.frequency, at, self.tz)
            rows = await self.storage.fetchall(
                "SELECT results FROM insp_records WHERE checkpoint_key = ? AND ts >= ?", (checkpoint, since))
            if not any(any(r.get("item") == key for r in json.loads(row[0])) for row in rows):
                due.append(key)
        return due

    # -- records ------------------------------------------------------------------------------

    def resolve(self, checkpoint: str, tag_kind: str | None, code: str | None) -> str:
        if checkpoint:
            if checkpoint not in self.checkpoints:
                raise Refused(404, "checkpoint_not_found", f"no checkpoint {checkpoint!r}", f"没有点位 {checkpoint}")
            return checkpoint
        if tag_kind and code is not None:
            found = self.tags.get((tag_kind, normalise_code(tag_kind, code)))
            if found is None and tag_kind != "qr":
                # Readers differ in UID byte order (little- vs big-endian); accept the reversed UID too.
                norm = normalise_code(tag_kind, code)
                rev = "".join(reversed([norm[i:i + 2] for i in range(0, len(norm), 2)]))
                found = self.tags.get((tag_kind, rev))
            if found is None:
                raise Refused(404, "tag_not_found", f"no checkpoint has {tag_kind} tag {code!r}",
                              f"没有绑定此标签（{tag_kind} {code}）的点位")
            return found
        raise Refused(400, "bad_request", "give a checkpoint key or a tag", "请提供点位或标签")

    async def add_record(self, body: RecordIn, user: str, units: set[str] | None) -> tuple[dict[str, Any], bool]:
        """Store a patrol record (idempotent on ``body.id``); returns (record, created)."""
        if not ID.match(body.id):
            raise Refused(400, "bad_request", "id: 1–64 letters, digits, '_', '-', '.', ':'", "记录编号格式不正确")
        digest = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
        existing = await self.storage.fetchone("SELECT digest FROM insp_records WHERE id = ?", (body.id,))
        if existing is not None:
            if existing[0] != digest:
                raise Refused(409, "conflict", f"record {body.id} exists with other content", "记录编号已被占用")
            return await self.record(body.id) or {}, False
        cp_key = self.resolve(body.checkpoint, body.tag.kind.value if body.tag else None,
                              body.tag.code if body.tag else None)
        unit = self.unit_of(cp_key)
        if units is not None and unit not in units:
            raise Refused(404, "checkpoint_not_found", f"no checkpoint {cp_key!r}", f"没有点位 {cp_key}")
        now = self.clock.time()
        ts = body.ts if body.ts is not None else now
        if ts > now + FUTURE_SLACK:
            raise Refused(400, "bad_request", "ts is in the future (check the device clock)", "记录时间晚于当前时间，请检查设备时钟")
        cp = self.checkpoints[cp_key]
        for r in body.results:
            if r.item not in self.items:
                raise Refused(400, "bad_request", f"unknown item {r.item!r}", f"未知检查项 {r.item}")
        await self._check_photos(body.photos)
        async with self._lock:
            await self.storage.execute(
                "INSERT OR IGNORE INTO insp_records (id, checkpoint_key, unit_key, location_key, user_name, method, "
                "tag_code, ts, received_ts, results, note, photos, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (body.id, cp_key, unit, cp.location, user, body.method.value, body.tag.code if body.tag else "",
                 ts, now, _j([msgspec.to_builtins(r) for r in body.results]), body.note, _j(body.photos), digest))
            stops = await self.storage.fetchall(
                "SELECT s.task_id FROM insp_task_stops s JOIN insp_tasks t ON t.id = s.task_id "
                "WHERE s.checkpoint_key = ? AND s.record_id IS NULL AND t.start_ts <= ? AND t.due_ts > ?",
                (cp_key, ts, ts))
            for (tid,) in stops:
                await self._visit(tid, cp_key, body.id, ts)
        for r in body.results:
            if r.result is Result.FAULT:
                item = self.items[r.item]
                await self._open_hazard(
                    hid=f"{body.id}:{r.item}", unit=unit, checkpoint=cp_key, location=cp.location, item=r.item,
                    source="patrol", source_ref=body.id,
                    description=r.note or f"{item.name_zh} 异常 / {item.name_en} fault",
                    severity=Severity.MAJOR if r.major else Severity.GENERAL, criteria="", responsible="",
                    deadline=None, photos=body.photos, user=user, now=now)
        return await self.record(body.id) or {}, True

    async def record(self, rid: str) -> dict[str, Any] | None:
        row = await self.storage.fetchone(
            "SELECT id, checkpoint_key, unit_key, location_key, user_name, method, tag_code, ts, received_ts, "
            "results, note, photos FROM insp_records WHERE id = ?", (rid,))
        if row is None:
            return None
        tasks = [r[0] for r in await self.storage.fetchall(
            "SELECT task_id FROM insp_task_stops WHERE record_id = ?", (rid,))]
        hazards = [r[0] for r in await self.storage.fetchall(
            "SELECT id FROM insp_hazards WHERE source = 'patrol' AND source_ref = ?", (rid,))]
        keys = ("id", "checkpoint", "unit", "location", "user", "method", "tag_code", "ts", "received_ts")
        out = dict(zip(keys, row[:9]))
        out.update(results=json.loads(row[9]), note=row[10], photos=json.loads(row[11]), tasks=tasks, hazards=hazards)
        return out

    async def records(self, units: set[str] | None, since: float, until: float, checkpoint: str = "",
                      limit: int = 10_000) -> list[dict[str, Any]]:
        where, params = ["ts >= ?", "ts < ?"], [since, until]
        if checkpoint:
            where.append("checkpoint_key = ?")
            params.append(checkpoint)
        rows = await self.storage.fetchall(
            "SELECT id, checkpoint_key, unit_key, location_key, user_name, method, tag_code, ts, received_ts, "
            f"results, note, photos FROM insp_records WHERE {' AND '.join(where)} ORDER BY ts LIMIT ?",
            (*params, limit))
        keys = ("id", "checkpoint", "unit", "location", "user", "method", "tag_code", "ts", "received_ts")
        out = []
        for row in rows:
            if units is not None and row[2] not in units:
                continue
            rec = dict(zip(keys, row[:9]))
            rec.update(results=json.loads(row[9]), note=row[10], photos=json.loads(row[11]))
            out.append(rec)
        return out

    # -- photos -------------------------------------------------------------------------------

    async def _check_photos(self, ids: Iterable[str]) -> None:
        for pid in ids:
            if await self.storage.fetchone("SELECT 1 FROM insp_photos WHERE id = ?", (pid,)) is None:
                raise Refused(400, "photo_missing", f"photo {pid} was not uploaded (PUT /api/photos/{pid} first)",
                              "照片尚未上传")

    async def add_photo(self, pid: str, content_type: str, data: bytes, user: str, unit: str | None) -> bool:
        if not ID.match(pid):
            raise Refused(400, "bad_request", "photo id: 1–64 letters, digits, '_', '-', '.', ':'", "照片编号格式不正确")
        magic = PHOTO_TYPES.get(content_type.split(";")[0].strip())
        if magic is None:
            raise Refused(415, "unsupported_type", f"photos are {', '.join(PHOTO_TYPES)}", "照片须为 JPEG、PNG 或 WebP")
        if not data.startswith(magic):
            raise Refused(400, "bad_request", f"the body is not {content_type}", "照片内容与类型不符")
        if len(data) > MAX_PHOTO:
            raise Refused(413, "too_large", f"photo over {MAX_PHOTO} bytes", f"照片超过 {MAX_PHOTO} 字节")
        sha = hashlib.sha256(data).hexdigest()
        row = await self.storage.fetchone("SELECT sha256 FROM insp_photos WHERE id = ?", (pid,))
        if row is not None:
            if row[0] != sha:
                raise Refused(409, "conflict", f"photo {pid} exists with other content", "照片编号已被占用")
            return False
        await self.storage.execute(
            "INSERT OR IGNORE INTO insp_photos (id, content_type, size, sha256, data, user_name, unit_key, ts) "
            "VALUES (?,?,?,?,?,?,?,?)", (pid, content_type, len(data), sha, data, user, unit, self.clock.time()))
        return True

    async def photo_units(self, pid: str, uploader_unit: str | None) -> set[str | None]:
        """The units that may see a photo: the uploader's, and those of the records and hazards showing it."""
        like = f'%"{pid}"%'
        rows = await self.storage.fetchall(
            "SELECT unit_key FROM insp_records WHERE photos LIKE ? UNION "
            "SELECT h.unit_key FROM insp_hazard_history x JOIN insp_hazards h ON h.id = x.hazard_id "
            "WHERE x.photos LIKE ?", (like, like))
        return {uploader_unit, *(r[0] for r in rows)}

    async def photo(self, pid: str) -> tuple[str, bytes, str | None] | None:
        row = await self.storage.fetchone("SELECT content_type, data, unit_key FROM insp_photos WHERE id = ?", (pid,))
        return (row[0], bytes(row[1]), row[2]) if row else None

    # -- hazards ------------------------------------------------------------------------------

    async def _open_hazard(self, *, hid: str, unit: str | None, checkpoint: str | None, location: str | None,
                           item: str, source: str, source_ref: str, description: str, severity: Severity,
                           criteria: str, responsible: str, deadline: float | None, photos: list[str], user: str,
                           now: float) -> bool:
        if deadline is None:
            deadline = now + (self.major_deadline_s if severity is Severity.MAJOR else self.deadline_s)
        state = State.ASSIGNED if responsible else State.OPEN
        existed = await self.storage.fetchone("SELECT 1 FROM insp_hazards WHERE id = ?", (hid,))
        if existed:
            return False
        await self.storage.execute(
            "INSERT OR IGNORE INTO insp_hazards (id, unit_key, checkpoint_key, location_key, item, source, source_ref, "
            "description, severity, major_criteria, state, responsible, deadline_ts, created_ts, created_by, "
            "updated_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (hid, unit, checkpoint, location, item, source, source_ref, description, severity.value, criteria,
             state.value, responsible, deadline, now, user, now))
        await self.storage.execute(
            "INSERT OR IGNORE INTO insp_hazard_history (id, hazard_id, ts, actor, action, from_state, to_state, note, "
            "photos, detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (f"{hid}:open", hid, now, user, "open", None, state.value, description, _j(photos),
             _j({"source": source, "source_ref": source_ref, "severity": severity.value, "deadline": deadline,
                 "responsible": responsible})))
        self.poke()
        return True

    async def create_hazard(self, body: HazardIn, user: str, role: str, units: set[str] | None) -> dict[str, Any]:
        if role not in ("admin", "integrator", "unit_manager", "duty_officer"):
            raise Refused(403, "forbidden", f"role {role} may not report hazards", f"角色 {role} 无权登记隐患")
        if not body.description.strip():
            raise Refused(400, "bad_request", "description must not be empty", "请填写隐患描述")
        hid = body.id or new_id()
        if not ID.match(hid):
            raise Refused(400, "bad_request", "id: 1–64 letters, digits, '_', '-', '.', ':'", "隐患编号格式不正确")
        if body.checkpoint:
            self.resolve(body.checkpoint, None, None)
        location = self.checkpoints[body.checkpoint].location if body.checkpoint else body.location
        unit = self.unit_of(body.checkpoint or None, location or None)
        if location and self._unit_of_place(location) is None:
            raise Refused(400, "bad_request", f"no place {location!r} in the site file", f"没有位置 {location}")
        if unit is None:
            raise Refused(400, "bad_request", "give a checkpoint or a location (the hazard's unit comes from it)",
                          "请提供点位或位置")
        if units is not None and unit not in units:
            raise Refused(404, "not_found", f"no place {location!r}", f"没有位置 {location}")
        if body.item and body.item not in self.items:
            raise Refused(400, "bad_request", f"unknown item {body.item!r}", f"未知检查项 {body.item}")
        await self._check_photos(body.photos)
        now = self.clock.time()
        deadline = parse_ts(body.deadline, "deadline")
        await self._open_hazard(
            hid=hid, unit=unit, checkpoint=body.checkpoint or None, location=location, item=body.item,
            source=body.source, source_ref=body.source_ref, description=body.description,
            severity=body.severity, criteria=body.major_criteria, responsible=body.responsible, deadline=deadline,
            photos=body.photos, user=user, now=now)
        return await self.hazard(hid) or {}

    def _hazard_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        out = dict(zip(_H_COLS, row))
        out["escalated"] = bool(out["escalated"])
        out["overdue"] = out["state"] in PENDING and self.clock.time() >= out["deadline"]
        return out

    async def hazards(self, units: set[str] | None, state: str | None = None, overdue: bool = False,
                      limit: int = 500) -> list[dict[str, Any]]:
        where, params = ["1"], []
        if state:
            where.append("state = ?")
            params.append(state)
        if overdue:
            where.append("state IN ('open', 'assigned', 'rectifying') AND deadline_ts <= ?")
            params.append(self.clock.time())
        rows = await self.storage.fetchall(
            f"SELECT {_H_SQL} "
            f"FROM insp_hazards WHERE {' AND '.join(where)} ORDER BY created_ts DESC LIMIT ?", (*params, limit))
        return [h for h in map(self._hazard_row, rows) if units is None or h["unit"] in units]

    async def hazard(self, hid: str) -> dict[str, Any] | None:
        rows = await self.storage.fetchall(
            f"SELECT {_H_SQL} "
            "FROM insp_hazards WHERE id = ?", (hid,))
        if not rows:
            return None
        out = self._hazard_row(rows[0])
        hist = await self.storage.fetchall(
            "SELECT id, ts, actor, action, from_state, to_state, note, photos, detail FROM insp_hazard_history "
            "WHERE hazard_id = ? ORDER BY ts, rowid", (hid,))
        out["history"] = [
            {"id": i, "ts": ts, "actor": a, "action": act, "from": f, "to": t, "note": n, "photos": json.loads(p),
             "detail": json.loads(d)} for i, ts, a, act, f, t, n, p, d in hist]
        return out

    async def act(self, hid: str, body: ActionIn, user: str, role: str, units: set[str] | None) -> dict[str, Any]:
        async with self._lock:
            return await self._act(hid, body, user, role, units)

    async def _act(self, hid: str, body: ActionIn, user: str, role: str, units: set[str] | None) -> dict[str, Any]:
        hazard = await self.hazard(hid)
        if hazard is None or (units is not None and hazard["unit"] not in units):
            raise Refused(404, "not_found", f"no hazard {hid!r}", f"没有隐患 {hid}")
        aid = body.id or new_id()
        if not ID.match(aid):
            raise Refused(400, "bad_request", "action id: 1–64 letters, digits, '_', '-', '.', ':'", "操作编号格式不正确")
        if any(h["id"] == aid for h in hazard["history"]):
            return hazard  # a resend of an action already taken
        step = check(body.action, State(hazard["state"]), role, note=body.note, photos=body.photos,
                     responsible=body.responsible or (hazard["responsible"] if body.action is not Action.ASSIGN else ""))
        await self._check_photos(body.photos)
        now = self.clock.time()
        sets = ["state = ?", "updated_ts = ?"]
        params: list[Any] = [step.to_state.value, now]
        detail: dict[str, Any] = {}
        if body.action is Action.ASSIGN:
            sets.append("responsible = ?")
            params.append(body.responsible)
            detail["responsible"] = body.responsible
            deadline = parse_ts(body.deadline, "deadline")
            if deadline is not None:
                sets.append("deadline_ts = ?")
                params.append(deadline)
                detail["deadline"] = deadline
                if deadline > now:  # a new deadline: the overdue alarms of the old one go
                    sets += ["escalated = 0", "last_urge_ts = NULL"]
                    self._clear_hazard_alarms(hazard)
        if step.to_state is State.CLOSED:
            sets.append("closed_ts = ?")
            params.append(now)
            detail["resolution"] = "dismissed" if body.action is Action.DISMISS else "verified"
        await self.storage.execute(f"UPDATE insp_hazards SET {', '.join(sets)} WHERE id = ?", (*params, hid))
        await self.storage.execute(
            "INSERT INTO insp_hazard_history (id, hazard_id, ts, actor, action, from_state, to_state, note, photos, "
            "detail) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (aid, hid, now, user, body.action.value, step.from_state.value, step.to_state.value, body.note,
             _j(body.photos), _j(detail)))
        if step.to_state not in PENDING:  # rectification is in (or the hazard is gone): no more urging
            self._clear_hazard_alarms(hazard)
        self.poke()
        return await self.hazard(hid) or {}

    def _clear_hazard_alarms(self, hazard: dict[str, Any]) -> None:
        if hazard.get("last_urge_ts") is not None:
            self._publish(f"hazard:{hazard['id']}", "overdue", False, unit=None, place=None)
        if hazard.get("escalated"):
            self._publish(f"hazard:{hazard['id']}", "escalated", False, unit=None, place=None)

    async def _check_hazards(self, now: float) -> float:
        wake = now + self.tick_s
        rows = await self.storage.fetchall(
            "SELECT id, unit_key, location_key, description, severity, responsible, deadline_ts, last_urge_ts, "
            "urges, escalated FROM insp_hazards WHERE state IN ('open', 'assigned', 'rectifying')")
        for hid, unit, place, desc, sev, resp, deadline, last_urge, urges, escalated in rows:
            if now < deadline:
                wake = min(wake, deadline)
                continue
            late_h = (now - deadline) / 3600
            major = "重大" if sev == "major" else ""
            if last_urge is None or now >= last_urge + self.urge_s:
                n = urges + 1
                if last_urge is None:  # published first: a crash before the rows below publishes it again
                    self._publish(
                        f"hazard:{hid}", "overdue", True, unit=unit, place=place, value=round(late_h, 2),
                        message=f"{'major ' if major else ''}hazard rectification overdue: {desc} "
                                f"(responsible: {resp or 'unassigned'})",
                        message_zh=f"{major}隐患整改逾期：{desc}（责任人：{resp or '未指派'}），请督促整改")
                await self.storage.execute(
                    "INSERT OR IGNORE INTO insp_hazard_history (id, hazard_id, ts, actor, action, from_state, "
                    "to_state, note, photos, detail) VALUES (?,?,?,?,?,NULL,(SELECT state FROM insp_hazards "
                    "WHERE id = ?),?,'[]',?)",
                    (f"{hid}:urge:{n}", hid, now, "system", "urge", hid, f"催促整改（第 {n} 次）/ urge #{n}",
                     _j({"overdue_h": round(late_h, 2), "responsible": resp})))
                await self.storage.execute(
                    "UPDATE insp_hazards SET last_urge_ts = ?, urges = ? WHERE id = ?", (now, n, hid))
                last_urge = now
            wake = min(wake, last_urge + self.urge_s)
            if not escalated:
                if now >= deadline + self.escalate_s:
                    self._publish(
                        f"hazard:{hid}", "escalated", True, unit=unit, place=place, value=round(late_h, 2),
                        severity=self.escalate_severity,
                        message=f"hazard still not rectified {late_h:.0f} h after its deadline, escalated: {desc}",
                        message_zh=f"{major}隐患逾期 {late_h:.0f} 小时仍未整改，已上报监管：{desc}")
                    await self.storage.execute(
                        "INSERT OR IGNORE INTO insp_hazard_history (id, hazard_id, ts, actor, action, from_state, "
                        "to_state, note, photos, detail) VALUES (?,?,?,?,?,NULL,(SELECT state FROM insp_hazards "
                        "WHERE id = ?),?,'[]',?)",
                        (f"{hid}:escalate", hid, now, "system", "escalate", hid, "逾期未整改，已上报监管 / escalated",
                         _j({"overdue_h": round(late_h, 2)})))
                    await self.storage.execute("UPDATE insp_hazards SET escalated = 1 WHERE id = ?", (hid,))
                else:
                    wake = min(wake, deadline + self.escalate_s)
        return wake

    # -- duty records -------------------------------------------------------------------------

    async def add_duty(self, body: DutyIn, user: str, units: set[str] | None) -> tuple[dict[str, Any], bool]:
        if not ID.match(body.id):
            raise Refused(400, "bad_request", "id: 1–64 letters, digits, '_', '-', '.', ':'", "记录编号格式不正确")
        start = parse_ts(body.shift_start, "shift_start")
        end = parse_ts(body.shift_end, "shift_end")
        assert start is not None and end is not None
        if end <= start:
            raise Refused(400, "bad_request", "shift_end must be after shift_start", "交班时间须晚于接班时间")
        if not body.officers:
            raise Refused(400, "bad_request", "officers: at least one name", "请填写值班人员")
        unit = body.unit or None
        if unit is not None and self._unit_of_place(unit) != unit:
            raise Refused(400, "bad_request", f"no unit {unit!r}", f"没有单位 {unit}")
        if units is not None and unit not in units:
            raise Refused(404, "not_found", f"no unit {unit!r}", f"没有单位 {unit}")
        digest = hashlib.sha256(msgspec.json.encode(body)).hexdigest()
        row = await self.storage.fetchone("SELECT digest FROM insp_duty WHERE id = ?", (body.id,))
        if row is not None:
            if row[0] != digest:
                raise Refused(409, "conflict", f"duty record {body.id} exists with other content", "记录编号已被占用")
            return (await self.duty(None, 0, float("inf"), rid=body.id))[0], False
        await self.storage.execute(
            "INSERT OR IGNORE INTO insp_duty (id, unit_key, shift_start, shift_end, officers, handover, notes, "
            "alarms_handled, user_name, received_ts, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (body.id, unit, start, end, _j(body.officers), body.handover, body.notes, body.alarms_handled, user,
             self.clock.time(), digest))
        return (await self.duty(None, 0, float("inf"), rid=body.id))[0], True

    async def duty(self, units: set[str] | None, since: float, until: float, rid: str = "") -> list[dict[str, Any]]:
        sql = ("SELECT id, unit_key, shift_start, shift_end, officers, handover, notes, alarms_handled, user_name, "
               "received_ts FROM insp_duty WHERE ")
        rows = await self.storage.fetchall(
            sql + ("id = ?" if rid else "shift_start >= ? AND shift_start < ? ORDER BY shift_start"),
            (rid,) if rid else (since, until))
        keys = ("id", "unit", "shift_start", "shift_end", "officers", "handover", "notes", "alarms_handled", "user",
                "received_ts")
        out = []
        for row in rows:
            rec = dict(zip(keys, row))
            rec["officers"] = json.loads(rec["officers"])
            if units is None or rec["unit"] in units or (rec["unit"] is None and units is None):
                out.append(rec)
        return out
