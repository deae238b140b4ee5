"""What pages, the API and the event stream show, already cut to what the asker may see.

Every query takes a ``Scope``: a unit user's request never reads another unit's
rows in the first place (filtering happens in SQL or before any data leaves this
module), so a template or handler cannot leak what it was never given.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import msgspec

from firebus.sdk.orgs import OrgTree
from firebus.sdk.vocab import AlarmCategory, Availability, PlaceKind

from ..alarms.model import Alarm
from .auth import Principal
from .priority import ORDER_SQL, display_key

ALARM_CATEGORIES = frozenset({AlarmCategory.FIRE, AlarmCategory.GAS, AlarmCategory.ELECTRICAL_ALARM,
                              AlarmCategory.ELECTRICAL_PRE_ALARM})
FAULT_CATEGORIES = frozenset({AlarmCategory.FAULT, AlarmCategory.SUPERVISORY})
STATUS_RANK = {"alarm": 4, "offline": 3, "fault": 2, "never_reported": 1, "normal": 0}
#: "never_reported": configured, and not one value has arrived from it since it was (GB: not "normal")
STATUSES = ("alarm", "fault", "offline", "never_reported", "normal")
_alarm_dec = msgspec.json.Decoder(Alarm)


#: (the site's organisations list, its tree): the list is held, so an identity match is sound
_TREE_CACHE: list[tuple[Any, OrgTree]] = []


def org_tree(core: Any) -> OrgTree:
    """The organisation tree of the site file the core runs with (built once per loaded file)."""
    section = getattr(core.site, "organisations", None) or []
    for held, tree in _TREE_CACHE:
        if held is section:
            return tree
    tree = OrgTree.from_section(section)
    _TREE_CACHE.append((section, tree))
    del _TREE_CACHE[:-4]  # a few cores per process at most (tests)
    return tree


def effective_units(core: Any, user: Any) -> tuple[str, ...]:
    """The unit keys a user sees: assigned directly, and every unit under their organisations
    in the current site file (adding a unit to a town extends its people's scope).  An
    organisation no longer in the file adds nothing."""
    keys = set(user.units) | org_tree(core).units_of(user.orgs)
    return tuple(sorted(keys))


class Scope:
    """The units a principal may see: ``None`` means every unit (and devices with none).

    ``unit_keys`` are the effective site unit keys (direct and through organisations),
    the same set a plugin route's ``Caller.units`` carries."""

    def __init__(self, core: Any, principal: Principal) -> None:
        self.core = core
        self.principal = principal
        self.unit_ids: frozenset[str] | None = None
        self.unit_keys: tuple[str, ...] | None = None
        if not principal.all_units:
            places = core.registry.places_by_key
            self.unit_keys = effective_units(core, principal.user)
            self.unit_ids = frozenset(
                p.id for key in self.unit_keys if (p := places.get((PlaceKind.UNIT, key))) is not None
            )

    def orgs(self) -> list[dict[str, Any]]:
        """The organisation trees the principal may look at: all for all-unit roles, else the
        subtrees of their organisations (nothing above them), nested, with unit keys."""
        tree = org_tree(self.core)
        if self.principal.all_units:
            return tree.to_builtins()
        return tree.to_builtins(tree.top_of(self.principal.user.orgs))

    def unit_visible(self, unit_id: str | None) -> bool:
        return self.unit_ids is None or (unit_id is not None and unit_id in self.unit_ids)

    def device_visible(self, device_id: str | None) -> bool:
        device = self.core.registry.devices.get(device_id) if device_id else None
        return device is not None and self.unit_visible(device.unit_id)

    def alarm_visible(self, alarm: Any) -> bool:
        return self.unit_visible(getattr(alarm, "unit_id", None))

    def units(self) -> list[Any]:
        places = [p for p in self.core.registry.places.values() if p.kind is PlaceKind.UNIT]
        return sorted((p for p in places if self.unit_visible(p.id)), key=lambda p: (p.name or p.key))


# -- places --------------------------------------------------------------------------------


def place_brief(core: Any, place_id: str | None) -> dict[str, Any] | None:
    place = core.registry.places.get(place_id) if place_id else None
    if place is None:
        return None
    return {"id": place.id, "key": place.key, "name": place.name or place.key, "kind": str(place.kind)}


def location_path(core: Any, place_id: str | None) -> str:
    """``Building / Floor / Room`` (the unit is shown on its own)."""
    parts = [p.name or p.key for p in core.registry.place_path(place_id) if p.kind is not PlaceKind.UNIT]
    return " / ".join(parts)


def place_tree(core: Any, scope: Scope) -> list[dict[str, Any]]:
    """Units → buildings → floors → locations, with device counts per location."""
    children: dict[str | None, list[Any]] = {}
    for place in core.registry.places.values():
        children.setdefault(place.parent_id, []).append(place)
    per_location: dict[str, int] = {}
    for device in core.registry.devices.values():
        if device.orphaned_at is None and device.location_id:
            per_location[device.location_id] = per_location.get(device.location_id, 0) + 1

    def node(place: Any) -> dict[str, Any]:
        kids = sorted(children.get(place.id, []), key=lambda p: (p.level if p.level is not None else 0, p.name or p.key))
        return {
            "id": place.id, "key": place.key, "name": place.name or place.key, "kind": str(place.kind),
            "level": place.level, "devices": per_location.get(place.id, 0), "children": [node(k) for k in kids],
        }

    return [node(u) for u in scope.units()]


# -- devices -------------------------------------------------------------------------------


def device_statuses(core: Any, only: Any = None) -> dict[str, str]:
    """Worst current condition per device: alarm > offline > fault > normal.

    ``only``: one device, for a device's own page; the whole registry is not walked
    for it (10,000 devices: ~20 ms of the loop per request at full ingest).
    """
    out: dict[str, str] = {}

    def worse(device_id: str, status: str) -> None:
        if STATUS_RANK[status] > STATUS_RANK.get(out.get(device_id, "normal"), 0):
            out[device_id] = status

    alarms = core.alarms.open_alarms() if core.alarms is not None else []
    for alarm in alarms:
        if not alarm.active or not alarm.device_id:
            continue
        if alarm.category in ALARM_CATEGORIES:
            worse(alarm.device_id, "alarm")
        elif alarm.category is AlarmCategory.OFFLINE:
            worse(alarm.device_id, "offline")
        else:
            worse(alarm.device_id, "fault")
    if only is not None:
        if core.availability.get(only.id) is Availability.UNAVAILABLE:
            worse(only.id, "offline")
    else:
        for device_id, availability in core.availability.current.items():
            if availability is Availability.UNAVAILABLE:
                worse(device_id, "offline")
    states = core.ingest.states
    for device in [only] if only is not None else core.registry.devices.values():
        if device.discovered or device.orphaned_at is not None or device.id in out:
            continue
        if not any(p.point_id in states for p in core.registry.points_of_device(device.id)):
            worse(device.id, "never_reported")
    return out


def visible_devices(core: Any, scope: Scope, *, include_orphaned: bool = False) -> list[Any]:
    devices = [
        d for d in core.registry.devices.values()
        if scope.unit_visible(d.unit_id) and (include_orphaned or d.orphaned_at is None)
    ]
    return sorted(devices, key=lambda d: (d.name.casefold(), d.id))


def _last_report(core: Any, device_id: str) -> float | None:
    best = None
    for info in core.registry.points_of_device(device_id):
        state = core.ingest.states.get(info.point_id)
        if state is not None and state.last_reported and (best is None or state.last_reported > best):
            best = state.last_reported
    return best


def display_name(device: Any) -> str:
    """A device's name for people: never its bare id (a discovered device has no name yet:
    its model and serial or first hardware identifier say what it is)."""
    if device.name != device.id:
        return device.name
    ident = device.serial or next(iter(device.identifiers.values()), "")
    return " ".join(x for x in (device.manufacturer, device.model, ident) if x) or device.driver


def device_summary(core: Any, device: Any, statuses: dict[str, str], open_counts: dict[str, int]) -> dict[str, Any]:
    availability = core.availability.get(device.id)
    return {
        "id": device.id,
        "name": display_name(device),
        "driver": device.driver,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "serial": device.serial,
        "unit": place_brief(core, device.unit_id),
        "location": place_brief(core, device.location_id),
        "location_path": location_path(core, device.location_id),
        "status": statuses.get(device.id, "normal"),
        "availability": str(availability) if availability else None,
        "last_report": _last_report(core, device.id),
        "open_alarms": open_counts.get(device.id, 0),
        "discovered": device.discovered,
        "orphaned": device.orphaned_at is not None,
        "device_type": device.overrides.get("device_type", ""),
    }


def open_alarm_counts(core: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alarm in core.alarms.open_alarms() if core.alarms is not None else []:
        if alarm.device_id:
            counts[alarm.device_id] = counts.get(alarm.device_id, 0) + 1
    return counts


def list_devices(core: Any, scope: Scope, *, unit_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    statuses = device_statuses(core)
    counts = open_alarm_counts(core)
    out = []
    for device in visible_devices(core, scope):
        if unit_id is not None and device.unit_id != unit_id:
            continue
        summary = device_summary(core, device, statuses, counts)
        if status is not None and summary["status"] != status:
            continue
        out.append(summary)
    return out


def point_rows(core: Any, device_id: str) -> list[dict[str, Any]]:
    rows = []
    infos = core.registry.points_of_device(device_id)
    classes = [i.point_class for i in infos]
    for info in sorted(infos, key=lambda i: i.key):
        state = core.ingest.states.get(info.point_id)
        rows.append({
            "id": info.point_id, "key": info.key, "name": info.name, "point_class": info.point_class,
            "shared_class": classes.count(info.point_class) > 1,
            "unit": info.unit, "writable": info.writable,
            "value": state.value if state else None,
            "fault": state.fault if state else None,
            "last_changed": state.last_changed if state and state.last_changed else None,
            "last_reported": state.last_reported if state and state.last_reported else None,
        })
    return rows


async def device_detail(core: Any, device: Any, scope: Scope, lang: str | None = None) -> dict[str, Any]:
    summary = device_summary(core, device, device_statuses(core, device), open_alarm_counts(core))
    summary["identifiers"] = dict(device.identifiers)
    summary["sw_version"] = device.sw_version
    summary["transport"] = device.transport
    summary["points"] = point_rows(core, device.id)
    alarms, _ = await query_alarms(core, scope, status="all", device_id=device.id, limit=50, lang=lang)
    summary["alarms"] = alarms
    return summary


def unit_overview(core: Any, scope: Scope) -> list[dict[str, Any]]:
    statuses = device_statuses(core)
    open_by_unit: dict[str | None, int] = {}
    for alarm in core.alarms.open_alarms() if core.alarms is not None else []:
        open_by_unit[alarm.unit_id] = open_by_unit.get(alarm.unit_id, 0) + 1
    rows: dict[str | None, dict[str, Any]] = {}
    for unit in scope.units():
        rows[unit.id] = {"id": unit.id, "key": unit.key, "name": unit.name or unit.key,
                         "counts": dict.fromkeys(STATUSES, 0), "devices": 0, "open_alarms": open_by_unit.get(unit.id, 0)}
    for device in visible_devices(core, scope):
        row = rows.get(device.unit_id)
        if row is None:
            if device.unit_id is not None:
                continue
            # Devices with no unit (no location in the site file, or discovered): all-unit roles only.
            row = rows.setdefault(None, {"id": None, "key": "", "name": "", "counts": dict.fromkeys(STATUSES, 0),
                                         "devices": 0, "open_alarms": open_by_unit.get(None, 0)})
        row["devices"] += 1
        row["counts"][statuses.get(device.id, "normal")] += 1
    return list(rows.values())


# -- alarms --------------------------------------------------------------------------------


def _location_devices(core: Any, alarm: Alarm) -> list[Any]:
    """A location-wide alarm (a confirmed fire) has no device of its own: the devices of
    that location with an active alarm of the same category are the ones that raised it."""
    if alarm.device_id or not alarm.location_id or core.alarms is None:
        return []
    ids = {a.device_id for a in core.alarms.open_alarms()
           if a.device_id and a.category == alarm.category and a.id != alarm.id
           and (a.location_id == alarm.location_id
                or (d := core.registry.devices.get(a.device_id)) is not None and d.location_id == alarm.location_id)}
    return sorted((core.registry.devices[i] for i in ids if i in core.registry.devices), key=display_name)


def floor_of(core: Any, place_id: str | None) -> Any:
    """The floor a place is on (itself if it is one), or None."""
    for place in reversed(core.registry.place_path(place_id) if place_id else []):
        if place.kind is PlaceKind.FLOOR:
            return place
    return None


def _zh_summary(alarm: Alarm, point: Any, device_name: str) -> str:
    from .human import Human

    h = Human("zh")
    what = h.point(point.name, point.key, point.point_class) if point else ""
    value = h.value(alarm.last_value, point.unit if point else "", point.point_class if point else "")
    head = h.t(f"cat_{alarm.category}")
    body = " ".join(x for x in (device_name, what, value if alarm.last_value is not None else "") if x)
    return f"{head}：{body}" if body else ""


def alarm_dict(core: Any, alarm: Alarm, lang: str | None = None) -> dict[str, Any]:
    """An alarm for the API and the pages.

    ``Alarm`` is stored with ``omit_defaults`` (small rows); here every field is
    written out, so a live alarm always carries ``active``, ``acknowledged`` and
    ``silenced`` (a reader must never infer "false" from a missing key).
    """
    data = msgspec.to_builtins(msgspec.structs.asdict(alarm))
    device = core.registry.devices.get(alarm.device_id) if alarm.device_id else None
    point = core.registry.point_info(alarm.point_id) if alarm.point_id else None
    location_id = alarm.location_id or (device.location_id if device else None)
    floor = floor_of(core, location_id)
    by_devices = _location_devices(core, alarm)
    data.update({
        "status": str(alarm.status),
        "open": alarm.open,
        "device_name": display_name(device) if device else ", ".join(display_name(d) for d in by_devices),
        "devices": [{"id": d.id, "name": display_name(d)} for d in ([device] if device else by_devices)],
        "point_name": point.name if point else "",
        "point_class": point.point_class if point else "",
        "point_unit": point.unit if point else "",
        "location_id": location_id,
        "location_path": location_path(core, location_id),
        "floor": ({"id": floor.id, "name": floor.name or floor.key, "level": floor.level} if floor else None),
        "unit_name": (u["name"] if (u := place_brief(core, alarm.unit_id)) else ""),
    })
    if lang is not None:
        # The reader's language: rules give both texts.  A rule that wrote only English gets
        # a Chinese line made of what the panel knows (category, point, value), and its own
        # text is kept beside it as ``text_original``.
        data["text"], data["text_original"] = alarm.message or alarm.message_zh, ""
        if lang == "zh":
            data["text"] = alarm.message_zh or _zh_summary(alarm, point, data["device_name"]) or alarm.message
            data["text_original"] = alarm.message if not alarm.message_zh and data["text"] != alarm.message else ""
    return data


async def query_alarms(
    core: Any,
    scope: Scope,
    *,
    status: str = "open",
    unit_id: str | None = None,
    category: str | None = None,
    device_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    lang: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Alarms in display priority (``priority.ORDER_SQL``: fire first); returns (page, total).

    Read from what is committed (operator actions return once theirs is), never through
    the writer's queue; counts and last values of open alarms come from the engine.
    """
    where: list[str] = []
    params: list[Any] = []
    if status == "active":
        where.append("active = 1")
    elif status == "open":
        where.append("(active = 1 OR acknowledged = 0)")
    if scope.unit_ids is not None:
        if not scope.unit_ids:
            return [], 0
        where.append(f"unit_id IN ({','.join('?' * len(scope.unit_ids))})")
        params += sorted(scope.unit_ids)
    for column, value in (("unit_id", unit_id), ("category", category), ("device_id", device_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows, totals = await core.storage.fetch_batch([
        (f"SELECT data FROM alarms{clause} ORDER BY {ORDER_SQL} LIMIT ? OFFSET ?", (*params, limit, offset)),
        (f"SELECT count(*) FROM alarms{clause}", params),
    ])
    total_row = totals[0] if totals else None
    alarms = [_alarm_dec.decode(r[0]) for r in rows]
    if core.alarms is not None:
        alarms = core.alarms.freshest(alarms)
    # The engine's copies may be newer than the rows (state just changed): re-sort the page.
    alarms.sort(key=display_key)
    return [alarm_dict(core, a, lang) for a in alarms], int(total_row[0]) if total_row else 0


# -- history -------------------------------------------------------------------------------

STEPS = {"raw": 0, "5m": 300, "1h": 3600}
RAW_LIMIT = 5000


def auto_step(since: float, until: float) -> str:
    span = until - since
    if span <= 2 * 86400:
        return "raw"
    if span <= 8 * 86400:
        return "5m"
    return "1h"


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


async def choose_step(core: Any, point_id: str, since: float, until: float) -> str:
    """``auto``: raw changes when there are few enough to draw, else aggregates."""
    step = auto_step(since, until)
    if step == "raw":
        row = await core.storage.fetchone(
            "SELECT count(*) FROM readings WHERE point_id = ? AND ts >= ? AND ts <= ?",
            (point_id, int(since * 1000), int(until * 1000)),
        )
        if row and row[0] > RAW_LIMIT:
            step = "5m"
    return step


async def point_history(core: Any, point_id: str, since: float, until: float, step: str) -> dict[str, Any]:
    """Raw changes, or buckets from the 5-minute / hourly aggregates for long ranges.

    Aggregates lag (housekeeping rolls up closed buckets once a minute), so buckets
    after the last stored one are computed from raw readings on the fly: the chart's
    right edge is never missing.
    """
    if step == "raw":
        rows = await core.storage.fetchall(
            "SELECT ts, value, fault FROM readings WHERE point_id = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
            (point_id, int(since * 1000), int(until * 1000), RAW_LIMIT + 1),
        )
        # The value in force at ``since`` (readings are stored only on change).
        before = await core.storage.fetchone(
            "SELECT ts, value, fault FROM readings WHERE point_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            (point_id, int(since * 1000)),
        )
        points = [{"ts": r[0] / 1000, "value": r[1], "fault": r[2]} for r in rows[:RAW_LIMIT]]
        return {"step": "raw", "points": points, "truncated": len(rows) > RAW_LIMIT,
                "before": {"ts": before[0] / 1000, "value": before[1], "fault": before[2]} if before else None}
    size = STEPS[step]
    table = "readings_5m" if step == "5m" else "readings_1h"
    first = int(since // size) * size
    rows = await core.storage.fetchall(
        f"SELECT bucket, n, mean, min, max, last FROM {table} WHERE point_id = ? AND bucket >= ? AND bucket <= ?"
        " ORDER BY bucket",
        (point_id, first, int(until)),
    )
    buckets = [{"ts": float(r[0]), "n": r[1], "mean": r[2], "min": r[3], "max": r[4], "last": r[5]} for r in rows]
    tail_from = (int(rows[-1][0]) + size) if rows else first
    if tail_from <= until:
        tail = await core.storage.fetchall(
            f"SELECT (ts / 1000 / {size}) * {size} AS bucket, count(*), avg(value), min(value), max(value)"
            " FROM readings WHERE point_id = ? AND ts >= ? AND ts <= ? AND typeof(value) IN ('integer', 'real')"
            " GROUP BY bucket ORDER BY bucket",
            (point_id, tail_from * 1000, int(until * 1000)),
        )
        buckets += [{"ts": float(r[0]), "n": r[1], "mean": r[2], "min": r[3], "max": r[4], "last": None} for r in tail]
    return {"step": step, "points": buckets, "truncated": False}


# -- notifications and health --------------------------------------------------------------


async def _table_exists(core: Any, name: str) -> bool:
    row = await core.storage.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row is not None


async def notification_log(core: Any, scope: Scope, *, limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The notify plugin's outbox (delivery log), newest first; empty if it is not loaded."""
    if not await _table_exists(core, "notify_outbox"):
        return [], 0
    where, params = "", []
    if scope.unit_ids is not None:
        if not scope.unit_ids:
            return [], 0
        where = (" WHERE o.alarm_id IN (SELECT id FROM alarms WHERE unit_id IN "
                 f"({','.join('?' * len(scope.unit_ids))}))")
        params = sorted(scope.unit_ids)
    rows = await core.storage.fetchall(
        "SELECT o.id, o.alarm_id, o.kind, o.step, o.recipient, o.channel, o.status, o.created_ts, o.attempts,"
        f" o.last_error, o.sent_ts FROM notify_outbox o{where} ORDER BY o.created_ts DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await core.storage.fetchone(f"SELECT count(*) FROM notify_outbox o{where}", params)
    cols = ("id", "alarm_id", "kind", "step", "recipient", "channel", "status", "created_ts", "attempts",
            "last_error", "sent_ts")
    return [dict(zip(cols, r)) for r in rows], int(total[0]) if total else 0


async def channel_health(core: Any) -> list[dict[str, Any]]:
    if not await _table_exists(core, "notify_channels"):
        return []
    rows = await core.storage.fetchall(
        "SELECT key, type, state, failures, last_error, last_ok_ts, last_fail_ts, sent, failed FROM notify_channels ORDER BY key"
    )
    cols = ("key", "type", "state", "failures", "last_error", "last_ok_ts", "last_fail_ts", "sent", "failed")
    return [dict(zip(cols, r)) for r in rows]


def health(core: Any) -> dict[str, Any]:
    started = getattr(core, "started_at", None)
    return {
        "status": "ok" if started else "starting",
        "site": core.site.site.name,
        "uptime_s": round(time.time() - started, 1) if started else 0.0,
    }


def metrics(core: Any) -> dict[str, Any]:
    data = core.metrics()
    data["transports"] = {key: getattr(getattr(t, "ctx", None), "up", None) for key, t in core.transports.items()}
    return data


def unit_by_ref(core: Any, ref: str) -> Any:
    """A unit by its site key or its registry id."""
    place = core.registry.places_by_key.get((PlaceKind.UNIT, ref))
    if place is None:
        candidate = core.registry.places.get(ref)
        if candidate is not None and candidate.kind is PlaceKind.UNIT:
            place = candidate
    return place


def ids(items: Iterable[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]
