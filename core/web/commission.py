"""Commissioning and duty helpers: adopt a discovered device, acknowledge many alarms at
once, a point's alarm thresholds (chart bands) and its history as CSV."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from firebus.sdk.vocab import PlaceKind

from . import views
from .api import MAX_RAW_RANGE_S, _body, _note, _visible_device, _who, parse_time, perform
from .app import ApiError, check_csrf, web
from .i18n import DEVICE_TYPES

MAX_BULK = 200
COMMISSION_ROLES = frozenset({"admin", "integrator"})


async def adopt(request: Request) -> JSONResponse:
    """``POST /api/devices/{id}/adopt`` ``{"device_type", "location", "name"?}``: a device seen
    on the wire becomes a site device (trusted: its readings can raise alarms)."""
    who, scope = await _who(request)
    core = web(request).core
    device = _visible_device(request, scope, request.path_params["device_id"])
    if str(who.role) not in COMMISSION_ROLES:
        raise ApiError(403, "forbidden", f"the {who.role} role may not commission devices")
    check_csrf(request, who, request.headers.get("x-csrf-token"))
    if not device.discovered:
        raise ApiError(409, "conflict", "the device is already part of the site")
    body = await _body(request)
    device_type = body.get("device_type")
    if device_type not in DEVICE_TYPES:
        raise ApiError(400, "bad_field", f"device_type must be one of {list(DEVICE_TYPES)}")
    ref = body.get("location")
    location = core.registry.places.get(ref) if isinstance(ref, str) else None
    if location is None and isinstance(ref, str):
        location = core.registry.places_by_key.get((PlaceKind.LOCATION, ref))
    if location is None or location.kind is not PlaceKind.LOCATION or not scope.unit_visible(core.registry.unit_of(location.id)):
        raise ApiError(400, "bad_field", f"location must be a location's id or key, got {ref!r}")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 100):
        raise ApiError(400, "bad_field", "name must be a string of 1 to 100 characters")
    await core.registry.adopt_device(device.id, location.id, device_type=device_type,
                                     name=name.strip() if name else None)
    if core.alarms is not None and hasattr(core.alarms, "invalidate"):
        core.alarms.invalidate()  # its points now fall under the site's rules
    return JSONResponse(await views.device_detail(core, core.registry.devices[device.id], scope))


async def bulk_ack(request: Request) -> JSONResponse:
    """``POST /api/alarms/ack`` ``{"ids": [...], "note"?}``: one result per id (ok or why not)."""
    who, scope = await _who(request)
    if not who.can_act:
        raise ApiError(403, "forbidden", f"the {who.role} role may not ack alarms")
    check_csrf(request, who, request.headers.get("x-csrf-token"))
    body = await _body(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "bad_field", f"ids must be a list of 1 to {MAX_BULK} alarm ids")
    note = _note(body)
    core = web(request).core
    results = []
    for alarm_id in dict.fromkeys(ids):
        alarm = await core.alarms.get(alarm_id)
        if alarm is None or not scope.alarm_visible(alarm):
            results.append({"id": alarm_id, "ok": False, "error": "alarm_not_found"})
            continue
        try:
            await perform(request, who, alarm_id, "ack", {"note": note})
            results.append({"id": alarm_id, "ok": True, "error": None})
        except ApiError as exc:
            results.append({"id": alarm_id, "ok": False, "error": exc.code})
    return JSONResponse({"results": results, "acknowledged": sum(r["ok"] for r in results)})


def thresholds_of(core: Any, point: Any) -> list[dict[str, Any]]:
    """Threshold levels of the rules that apply to the point (for chart bands)."""
    out: list[dict[str, Any]] = []
    engine = core.alarms
    # The engine keeps its rule instances privately; reading them is harmless, and a
    # missing attribute (another engine) just means no bands.
    for rule in list(getattr(engine, "_others", [])) + list(getattr(engine, "_gates", [])):
        try:
            if not rule.applies_to(point):
                continue
            opts = rule.options_for(point)
        except Exception:
            continue
        for level in getattr(opts, "levels", None) or []:
            out.append({"rule": rule.key, "name": level.name, "value": float(level.value),
                        "direction": getattr(level, "direction", "high"),
                        "category": str(getattr(level, "category", "")) or None})
    return sorted(out, key=lambda t: t["value"])


async def thresholds(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    info = core.registry.point_info(request.path_params["point_id"])
    if info is None or not scope.device_visible(info.device_id):
        raise ApiError(404, "point_not_found", "no such point")
    return JSONResponse({"point_id": info.point_id, "unit": info.unit, "items": thresholds_of(core, info)})


async def history_csv(request: Request) -> Response:
    """``GET /api/points/{id}/history.csv?since=&until=``: raw changes as CSV (UTF-8 with BOM for
    spreadsheet programs), columns ``time_iso, ts, value, fault``; at most 31 days."""
    _, scope = await _who(request)
    core = web(request).core
    info = core.registry.point_info(request.path_params["point_id"])
    if info is None or not scope.device_visible(info.device_id):
        raise ApiError(404, "point_not_found", "no such point")
    now = time.time()
    until = parse_time(request.query_params.get("until"), "until", now)
    since = parse_time(request.query_params.get("since"), "since", until - 86400)
    if since >= until or until - since > MAX_RAW_RANGE_S:
        raise ApiError(400, "bad_range", "since must be before until, at most 31 days apart")
    rows = await core.storage.fetchall(
        "SELECT ts, value, fault FROM readings WHERE point_id = ? AND ts >= ? AND ts <= ? ORDER BY ts",
        (info.point_id, int(since * 1000), int(until * 1000)),
    )
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["time_iso", "ts", f"value{' (' + info.unit + ')' if info.unit else ''}", "fault"])
    import datetime as dt

    for ts, value, fault in rows:
        out.writerow([dt.datetime.fromtimestamp(ts / 1000, dt.timezone.utc).isoformat(timespec="milliseconds"),
                      f"{ts / 1000:.3f}", "" if value is None else value, fault or ""])
    device = core.registry.devices.get(info.device_id)
    filename = f"{(device.name if device else info.device_id)}-{info.key}.csv".replace('"', "")
    from urllib.parse import quote

    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{info.key}.csv\"; filename*=UTF-8''{quote(filename)}"})


def routes() -> list[Route]:
    return [
        Route("/api/alarms/ack", bulk_ack, methods=["POST"]),
        Route("/api/devices/{device_id}/adopt", adopt, methods=["POST"]),
        Route("/api/points/{point_id}/thresholds", thresholds),
        Route("/api/points/{point_id}/history.csv", history_csv),
    ]
