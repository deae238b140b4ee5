"""Per-unit aggregates kept incrementally: a durable journal consumer plus a periodic pass.

* ``AlarmEvent`` entries (consumer ``supervision.aggregates``, stored cursor, from the
  earliest entry on first start) → one ``sup_alarms`` row per alarm; SQLite triggers move
  the counters in ``sup_alarm_counts`` / ``sup_verdicts`` with the row (schema.py).  Every
  write is idempotent by alarm id, so entries delivered again after a crash count once.
* Every ``refresh_s`` (and soon after an offline alarm) the facts no journal entry carries
  are re-read from tables, read-only: devices and whether they ever reported (the core's
  ``devices``, ``points``, ``point_state`` and the journal's state changes by point), hazards changed since the last pass (the
  inspection plugin's ``insp_hazards``, by ``updated_ts``), the newest patrol record per
  unit (``insp_records``, by ``ts``) and the newest periodic score per unit (the reports
  plugin's ``report_files``).  A missing table (plugin not loaded) leaves the figure empty.

Page loads read these tables and small in-memory caches only, never the journal.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Iterable

import anyio

from firebus.sdk import AlarmEvent, AlarmTransition, Event, UnitScored

from .config import SiteFacts, SupervisionConfig

log = logging.getLogger("firebus.plugin.supervision")

#: categories counted as alarms (报警) and pre-alarms (预警); response times are taken over both
ALARM_CATEGORIES = ("fire", "gas", "electrical_alarm")
PRE_ALARM_CATEGORIES = ("electrical_pre_alarm",)
RESPONSE_CATEGORIES = ALARM_CATEGORIES + PRE_ALARM_CATEGORIES
#: hazard states still open (inspection's lifecycle) and those still awaiting rectification
OPEN_HAZARD_STATES = ("open", "assigned", "rectifying", "submitted")
PENDING_HAZARD_STATES = ("open", "assigned", "rectifying")
#: a patrol record made offline and sent later still counts if it is at most this old
RECORD_SLACK_S = 7 * 86400.0
#: the plugin's own urge alarms are the supervisor's, not the unit's: not counted here
OWN_RULE_PREFIX = "supervision."


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0…1) of ``values``; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _missing_table(exc: Exception) -> bool:
    return "no such table" in str(exc)


class Aggregator:
    NAME = "supervision.aggregates"

    def __init__(self, core: Any, cfg: SupervisionConfig, facts: SiteFacts) -> None:
        self.core = core
        self.cfg = cfg
        self.facts = facts
        self.storage = core.storage
        self.consumer: Any = None
        self.handled = 0  # AlarmEvent entries handled by this process (figure)
        self.refreshes = 0
        self.refreshed = anyio.Event()
        self.assessed: dict[str, bool] = {"hazards": False, "inspections": False, "scores": False}
        self._poke = anyio.Event()
        self._response: dict[str, dict[str, Any]] = {}  # unit key → cached response figures
        self.never_reported: dict[str, set[str]] = {}  # unit key → devices never heard from
        self._stopped = False

    # -- places ---------------------------------------------------------------------------

    def unit_key(self, unit_id: str | None) -> str:
        place = self.core.registry.place(unit_id) if unit_id else None
        return place.key if place is not None else ""

    def place_kind(self, data: AlarmEvent) -> str:
        """The site-file kind of the alarm's location (its point's or device's when it has none)."""
        location = data.location_id
        reg = self.core.registry
        if location is None and data.point_id:
            info = reg.point_info(data.point_id)
            location = info.location_id if info else None
        if location is None and data.device_id:
            points = reg.points_of_device(data.device_id)
            location = points[0].location_id if points else None
        place = reg.place(location) if location else None
        return self.facts.location_kind.get(place.key, "") if place is not None else ""

    # -- the journal consumer ---------------------------------------------------------------

    def start(self) -> None:
        self.consumer = self.core.journal.subscribe(self.NAME, self._on_entries, [AlarmEvent, UnitScored],
                                                    initial="earliest")

    def stop(self) -> None:
        self._stopped = True
        self._poke.set()
        if self.consumer is not None:
            self.consumer.stop()

    def _row(self, alarm_id: str, data: AlarmEvent, start_ts: float) -> tuple[Any, ...]:
        month, weekday, hour = self.facts.local(start_ts)
        return (alarm_id, self.unit_key(data.unit_id), data.device_id, str(data.category), int(data.severity),
                self.place_kind(data), start_ts, month, weekday, hour)

    async def _on_entries(self, events: list[Event]) -> None:
        news: dict[str, tuple[Any, ...]] = {}
        others: dict[str, AlarmEvent] = {}
        acks: dict[str, float] = {}
        clears: dict[str, float] = {}
        status: dict[str, str] = {}
        verdicts: set[str] = set()
        offline = False
        scored: dict[str, tuple[Any, ...]] = {}
        for event in events:
            data = event.data
            if isinstance(data, UnitScored):
                scored[data.unit_key] = (data.unit_key, data.score, data.grade, data.ts, event.seq)
                continue
            if not isinstance(data, AlarmEvent) or data.rule.startswith(OWN_RULE_PREFIX):
                continue
            aid = data.alarm_id
            if data.transition is AlarmTransition.NEW:
                news.setdefault(aid, self._row(aid, data, data.ts))
            else:
                others.setdefault(aid, data)
            if data.transition is AlarmTransition.ACKNOWLEDGED:
                acks.setdefault(aid, data.ts)
            elif data.transition is AlarmTransition.CLEARED:
                clears.setdefault(aid, data.ts)
            elif data.transition is AlarmTransition.VERDICT:
                verdicts.add(aid)
            if data.status:
                status[aid] = data.status
            offline = offline or str(data.category) == "offline"
            self._response.pop(self.unit_key(data.unit_id), None)
        if scored:
            await self.storage.executemany(
                "INSERT INTO sup_live_scores (unit_key, score, grade, ts, seq) VALUES (?,?,?,?,?) "
                "ON CONFLICT (unit_key) DO UPDATE SET score = excluded.score, grade = excluded.grade, "
                "ts = excluded.ts, seq = excluded.seq WHERE excluded.seq > sup_live_scores.seq", list(scored.values()))
        if not (news or others):
            return
        await self._adopt(news, others)
        st = self.storage
        # One statement per step, each awaited: the writer may reorder different statements
        # queued together, and an acknowledgement must find its alarm's row.
        if news:
            await st.executemany(
                "INSERT OR IGNORE INTO sup_alarms (alarm_id, unit_key, device_id, category, severity, place_kind, "
                "start_ts, month, weekday, hour) VALUES (?,?,?,?,?,?,?,?,?,?)", list(news.values()))
        if acks:
            await st.executemany("UPDATE sup_alarms SET ack_s = max(0, ? - start_ts) WHERE alarm_id = ? AND ack_s IS NULL",
                                 [(ts, aid) for aid, ts in acks.items()])
        if clears:
            await st.executemany(
                "UPDATE sup_alarms SET clear_s = max(0, ? - start_ts) WHERE alarm_id = ? AND clear_s IS NULL",
                [(ts, aid) for aid, ts in clears.items()])
        if status:
            await st.executemany(
                "UPDATE sup_alarms SET active = ?, acknowledged = ? WHERE alarm_id = ?",
                [(int(s.startswith("active")), int(s.endswith("_ack")), aid) for aid, s in status.items()])
        if verdicts:
            rows = await self._alarm_rows(verdicts)
            await st.executemany("UPDATE sup_alarms SET verdict = ? WHERE alarm_id = ?",
                                 [(d.get("verdict"), aid) for aid, d in rows.items()])
        self.handled += len(events)
        if offline:
            self._poke.set()

    async def _alarm_rows(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The core's ``alarms`` rows (the alarm as it stands), read-only, by id."""
        ids = list(ids)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for aid, data in await self.storage.fetchall(f"SELECT id, data FROM alarms WHERE id IN ({marks})", chunk):
                out[aid] = json.loads(data)
        return out

    async def _adopt(self, news: dict[str, tuple[Any, ...]], others: dict[str, AlarmEvent]) -> None:
        """An alarm whose NEW entry this consumer never saw (raised before the plugin was
        installed with a journal already trimmed): its row from the core's alarm record."""
        unknown = [aid for aid in others if aid not in news]
        if not unknown:
            return
        marks = ",".join("?" * len(unknown))
        known = {r[0] for r in await self.storage.fetchall(
            f"SELECT alarm_id FROM sup_alarms WHERE alarm_id IN ({marks})", unknown)}
        missing = [aid for aid in unknown if aid not in known]
        if missing:
            rows = await self._alarm_rows(missing)
            for aid in missing:
                start = float(rows.get(aid, {}).get("start_ts") or others[aid].ts)
                news[aid] = self._row(aid, others[aid], start)

    # -- the periodic pass ------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopped:
            try:
                await self.refresh()
            except Exception:  # a bad pass must not end the loop: the next one may succeed
                log.exception("supervision: refreshing unit facts failed")
            self._poke = anyio.Event()
            with anyio.move_on_after(self.cfg.refresh_s):
                await self._poke.wait()

    def poke(self) -> None:
        self._poke.set()

    async def refresh(self) -> None:
        now = self.core.clock.time()
        facts: dict[str, dict[str, Any]] = {k: {} for k in self.facts.units}
        await self._devices(facts)
        await self._hazards()
        await self._inspections(facts, now)
        await self._scores(facts)
        await self.storage.executemany(
            "INSERT INTO sup_unit_facts (unit_key, devices, reported, last_inspection_ts, score, grade, score_period, "
            "score_ts, updated_ts) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (unit_key) DO UPDATE SET "
            "devices = excluded.devices, reported = excluded.reported, "
            "last_inspection_ts = max(coalesce(last_inspection_ts, 0), coalesce(excluded.last_inspection_ts, 0)), "
            "score = coalesce(excluded.score, score), grade = coalesce(excluded.grade, grade), "
            "score_period = coalesce(excluded.score_period, score_period), "
            "score_ts = coalesce(excluded.score_ts, score_ts), updated_ts = excluded.updated_ts",
            [(k, f.get("devices", 0), f.get("reported", 0), f.get("last_inspection_ts"), f.get("score"),
              f.get("grade"), f.get("score_period"), f.get("score_ts"), now) for k, f in facts.items()])
        self.refreshes += 1
        self.refreshed.set()
        self.refreshed = anyio.Event()

    async def _devices(self, facts: dict[str, dict[str, Any]]) -> None:
        """Devices per unit and which of them ever reported: a state change of one of its points
        in the journal (indexed by point), or its checkpointed state; remembered once seen, since
        raw journal rows are purged after they are rolled up."""
        rows = await self.storage.fetchall(
            "SELECT d.id, d.unit_id, d.id IN (SELECT device_id FROM sup_devices_seen) OR EXISTS ("
            "SELECT 1 FROM points p JOIN journal j ON j.type = 'StateChanged' AND j.subject = p.id "
            "WHERE p.device_id = d.id) OR EXISTS (SELECT 1 FROM points p JOIN point_state s ON s.point_id = p.id "
            "WHERE p.device_id = d.id AND s.last_reported IS NOT NULL) FROM devices d "
            "WHERE d.orphaned_at IS NULL AND d.discovered = 0")
        never: dict[str, set[str]] = {}
        seen: list[tuple[str, float]] = []
        now = self.core.clock.time()
        for device_id, unit_id, reported in rows:
            if reported:
                seen.append((device_id, now))
            f = facts.get(self.unit_key(unit_id))
            if f is None:
                continue
            f["devices"] = f.get("devices", 0) + 1
            f["reported"] = f.get("reported", 0) + int(bool(reported))
            if not reported:
                never.setdefault(self.unit_key(unit_id), set()).add(device_id)
        if seen:
            await self.storage.executemany(
                "INSERT OR IGNORE INTO sup_devices_seen (device_id, first_ts) VALUES (?, ?)", seen)
        self.never_reported = never

    async def _watermark(self, name: str) -> float:
        row = await self.storage.fetchone("SELECT value FROM sup_watermarks WHERE name = ?", (name,))
        return float(row[0]) if row else 0.0

    async def _set_watermark(self, name: str, value: float) -> None:
        await self.storage.execute(
            "INSERT INTO sup_watermarks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "value = max(value, excluded.value)", (name, value))

    async def _hazards(self) -> None:
        since = await self._watermark("hazards")
        try:
            rows = await self.storage.fetchall(
                "SELECT id, unit_key, location_key, severity, state, deadline_ts, created_ts, closed_ts, updated_ts "
                "FROM insp_hazards WHERE updated_ts >= ?", (since,))
        except Exception as exc:
            if _missing_table(exc):
                return
            raise
        self.assessed["hazards"] = True
        if not rows:
            return
        inserts, updates = [], []
        for hid, unit, location, severity, state, deadline, created, closed, updated in rows:
            month, weekday, hour = self.facts.local(created)
            kind = self.facts.location_kind.get(location or "", "")
            inserts.append((hid, unit or "", kind, severity, created, month, weekday, hour, state, deadline, closed,
                            updated))
            updates.append((state, deadline, closed, updated, hid))
        await self.storage.executemany(
            "INSERT OR IGNORE INTO sup_hazards (id, unit_key, place_kind, severity, created_ts, month, weekday, hour, "
            "state, deadline_ts, closed_ts, updated_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", inserts)
        await self.storage.executemany(
            "UPDATE sup_hazards SET state = ?, deadline_ts = ?, closed_ts = ?, updated_ts = ? WHERE id = ?", updates)
        await self._set_watermark("hazards", max(r[8] for r in rows))

    async def _inspections(self, facts: dict[str, dict[str, Any]], now: float) -> None:
        since = await self._watermark("records")
        try:
            rows = await self.storage.fetchall(
                "SELECT unit_key, max(ts) FROM insp_records WHERE ts > ? GROUP BY unit_key",
                (since - RECORD_SLACK_S,))
        except Exception as exc:
            if _missing_table(exc):
                return
            raise
        self.assessed["inspections"] = True
        for unit, ts in rows:
            if unit in facts and ts is not None:
                facts[unit]["last_inspection_ts"] = float(ts)
        if rows:
            await self._set_watermark("records", max(float(r[1]) for r in rows if r[1] is not None))

    async def _scores(self, facts: dict[str, dict[str, Any]]) -> None:
        try:
            rows = await self.storage.fetchall(
                "SELECT unit_key, score, grade, period, period_end FROM report_files r WHERE created = "
                "(SELECT max(created) FROM report_files WHERE unit_key = r.unit_key)")
        except Exception as exc:
            if _missing_table(exc):
                return
            raise
        self.assessed["scores"] = True
        for unit, score, grade, period, end in rows:
            if unit in facts:
                facts[unit].update(score=score, grade=grade, score_period=period, score_ts=end)

    # -- reading ----------------------------------------------------------------------------

    async def response(self, unit: str, now: float) -> dict[str, Any]:
        """Time to acknowledge / to clear (s, median and p90) of the unit's alarms and pre-alarms
        raised in the trailing window; cached until one of its alarms moves."""
        cached = self._response.get(unit)
        if cached is not None and cached["until"] > now:
            return cached
        since = now - self.cfg.window_days * 86400
        marks = ",".join("?" * len(RESPONSE_CATEGORIES))
        rows = await self.storage.fetchall(
            f"SELECT ack_s, clear_s FROM sup_alarms WHERE unit_key = ? AND start_ts >= ? AND category IN ({marks})",
            (unit, since, *RESPONSE_CATEGORIES))
        acks = [r[0] for r in rows if r[0] is not None]
        clears = [r[1] for r in rows if r[1] is not None]
        out = {"alarms": len(rows), "acknowledged": len(acks), "cleared": len(clears),
               "ack_median_s": percentile(acks, 0.5), "ack_p90_s": percentile(acks, 0.9),
               "clear_median_s": percentile(clears, 0.5), "clear_p90_s": percentile(clears, 0.9),
               # an alarm leaves the window as time passes: recompute at most an hour later
               "until": now + 3600}
        self._response[unit] = out
        return out

    async def units(self, keys: Iterable[str], now: float) -> list[dict[str, Any]]:
        """One row per unit: the figures of "units at a glance" (see docs/plugins/supervision.md)."""
        keys = [k for k in keys if k in self.facts.units]
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        open_by: dict[str, dict[str, int]] = {}
        for unit, category, n in await self.storage.fetchall(
                "SELECT unit_key, category, count(*) FROM sup_alarms WHERE (active, acknowledged) IN "
                f"(VALUES (1, 0), (1, 1), (0, 0)) AND unit_key IN ({marks}) GROUP BY unit_key, category", keys):
            open_by.setdefault(unit, {})[category] = n
        offline: dict[str, set[str]] = {}
        for unit, device in await self.storage.fetchall(
                "SELECT unit_key, device_id FROM sup_alarms WHERE (active, acknowledged) IN (VALUES (1, 0), (1, 1)) "
                f"AND category = 'offline' AND device_id IS NOT NULL AND unit_key IN ({marks})", keys):
            offline.setdefault(unit, set()).add(device)
        month = self.facts.local(now)[0]
        per_month: dict[str, dict[str, int]] = {}
        for unit, category, n in await self.storage.fetchall(
                f"SELECT unit_key, category, sum(n) FROM sup_alarm_counts WHERE month = ? AND unit_key IN ({marks}) "
                "GROUP BY unit_key, category", (month, *keys)):
            per_month.setdefault(unit, {})[category] = n
        months = self.facts.months_back(now, self.cfg.months)
        verdicts: dict[str, dict[str, int]] = {}
        for unit, verdict, n in await self.storage.fetchall(
                f"SELECT unit_key, verdict, sum(n) FROM sup_verdicts WHERE month >= ? AND unit_key IN ({marks}) "
                "GROUP BY unit_key, verdict", (months[0], *keys)):
            verdicts.setdefault(unit, {})[verdict] = n
        hazards: dict[str, dict[str, int]] = {}
        open_marks = ",".join("?" * len(OPEN_HAZARD_STATES))
        pending = ",".join(f"'{s}'" for s in PENDING_HAZARD_STATES)
        for unit, n_open, n_overdue, n_major in await self.storage.fetchall(
                f"SELECT unit_key, count(*), sum(state IN ({pending}) AND deadline_ts < ?), sum(severity = 'major') "
                f"FROM sup_hazards WHERE state IN ({open_marks}) AND unit_key IN ({marks}) GROUP BY unit_key",
                (now, *OPEN_HAZARD_STATES, *keys)):
            hazards[unit] = {"open": n_open, "overdue": n_overdue or 0, "major": n_major or 0}
        facts = {r[0]: r[1:] for r in await self.storage.fetchall(
            "SELECT unit_key, devices, reported, last_inspection_ts, score, grade, score_period, score_ts, updated_ts "
            f"FROM sup_unit_facts WHERE unit_key IN ({marks})", keys)}
        live = {r[0]: r[1:] for r in await self.storage.fetchall(
            f"SELECT unit_key, score, grade, ts FROM sup_live_scores WHERE unit_key IN ({marks})", keys)}
        never = self.never_reported
        out = []
        for key in keys:
            unit = self.facts.units[key]
            devices, reported, last_insp, score, grade, period, score_ts, updated = facts.get(
                key, (0, 0, None, None, None, None, None, None))
            down = offline.get(key, set()) | never.get(key, set())
            online = max(0, devices - len(down)) if devices else 0
            opened = open_by.get(key, {})
            counts = per_month.get(key, {})
            v = verdicts.get(key, {})
            n_verdicts = sum(v.values())
            h = hazards.get(key, {"open": 0, "overdue": 0, "major": 0})
            out.append({
                "key": key, "name": unit.name, "kind": unit.kind,
                "geo": {"lat": unit.lat, "lon": unit.lon} if unit.lat is not None and unit.lon is not None else None,
                # The live health check's score when the reports plugin publishes one, else the
                # newest stored report's; score_source says which (docs/plugins/supervision.md).
                **({"grade": live[key][1], "score": live[key][0], "score_source": "live", "score_ts": live[key][2]}
                   if key in live else
                   {"grade": grade, "score": score, "score_source": "report" if grade is not None else None,
                    "score_ts": score_ts}),
                "report_grade": grade, "report_score": score, "score_period": period,
                "open_alarms": sum(opened.values()), "open_by_category": opened,
                "month": month,
                "alarms_month": sum(counts.get(c, 0) for c in ALARM_CATEGORIES),
                "pre_alarms_month": sum(counts.get(c, 0) for c in PRE_ALARM_CATEGORIES),
                "verdicts": {"since": months[0], "total": n_verdicts, "false_alarm": v.get("false_alarm", 0),
                             "false_share": round(v.get("false_alarm", 0) / n_verdicts, 4) if n_verdicts else None},
                "devices": devices, "online": online,
                "online_rate": round(online / devices, 4) if devices else None,
                "hazards_open": h["open"] if self.assessed["hazards"] else None,
                "hazards_major": h["major"] if self.assessed["hazards"] else None,
                "overdue": h["overdue"] if self.assessed["hazards"] else None,
                "last_inspection_ts": last_insp or None,
                "response": {k: v for k, v in (await self.response(key, now)).items() if k != "until"},
                "facts_ts": updated,
            })
        return out

    async def where_when(self, keys: list[str], months: list[str]) -> dict[str, Any]:
        """Counts of alarms (by category group) and hazards by weekday × hour, by place kind,
        by unit kind and by month, over ``months`` (YYYY-MM) and the units ``keys``."""
        if not keys:
            keys = ["\x00"]  # no unit: every figure is zero
        marks = ",".join("?" * len(keys))
        span = (months[0], months[-1])
        unit_kind = {k: (u.kind or "") for k, u in self.facts.units.items()}
        alarm_rows = await self.storage.fetchall(
            "SELECT unit_key, month, category, weekday, hour, place_kind, n FROM sup_alarm_counts "
            f"WHERE month BETWEEN ? AND ? AND unit_key IN ({marks})", (*span, *keys))
        hazard_rows = await self.storage.fetchall(
            "SELECT unit_key, month, weekday, hour, place_kind, n FROM sup_hazard_counts "
            f"WHERE month BETWEEN ? AND ? AND unit_key IN ({marks})", (*span, *keys))

        def empty_heat() -> list[list[int]]:
            return [[0] * 24 for _ in range(7)]

        alarms = {"heat": empty_heat(), "place_kind": {}, "unit_kind": {}, "month": dict.fromkeys(months, 0)}
        pre = {"heat": empty_heat(), "place_kind": {}, "unit_kind": {}, "month": dict.fromkeys(months, 0)}
        hazards = {"heat": empty_heat(), "place_kind": {}, "unit_kind": {}, "month": dict.fromkeys(months, 0)}

        def add(target: dict[str, Any], unit: str, month: str, weekday: int, hour: int, place: str, n: int) -> None:
            target["heat"][weekday][hour] += n
            target["place_kind"][place] = target["place_kind"].get(place, 0) + n
            kind = unit_kind.get(unit, "")
            target["unit_kind"][kind] = target["unit_kind"].get(kind, 0) + n
            if month in target["month"]:
                target["month"][month] += n

        for unit, month, category, weekday, hour, place, n in alarm_rows:
            if category in ALARM_CATEGORIES:
                add(alarms, unit, month, weekday, hour, place, n)
            elif category in PRE_ALARM_CATEGORIES:
                add(pre, unit, month, weekday, hour, place, n)
        for unit, month, weekday, hour, place, n in hazard_rows:
            add(hazards, unit, month, weekday, hour, place, n)
        return {"months": months, "alarms": alarms, "pre_alarms": pre, "hazards": hazards,
                "hazards_assessed": self.assessed["hazards"]}
