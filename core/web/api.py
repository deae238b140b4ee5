"""The JSON API (documented in openapi.py, served at /api/openapi.json).

Conventions: lists are ``{"items", "total", "limit", "offset", "next_offset"}``;
errors are ``{"error": {"code", "message"}}`` with a 4xx status; anything outside
the caller's units is 404, exactly as if it did not exist (no existence oracle).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from firebus.sdk.vocab import AlarmCategory

from ..alarms.model import AlarmError, AlarmNotFound, Verdict
from . import views
from .app import ApiError, MAX_BODY, check_csrf, language, require, web
from .auth import URGE_ROLES, Principal
from .openapi import openapi_document

MAX_LIMIT = 500
MAX_RANGE_S = 400 * 86400
MAX_RAW_RANGE_S = 31 * 86400


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status)


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _page(request: Request) -> tuple[int, int]:
    return _int_param(request, "limit", 100, 1, MAX_LIMIT), _int_param(request, "offset", 0, 0, 10**9)


def _listing(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    next_offset = offset + len(items) if offset + len(items) < total else None
    return {"items": items, "total": total, "limit": limit, "offset": offset, "next_offset": next_offset}


def _unit_param(request: Request, scope: views.Scope) -> str | None:
    ref = request.query_params.get("unit")
    if not ref:
        return None
    unit = views.unit_by_ref(scope.core, ref)
    if unit is None or not scope.unit_visible(unit.id):
        raise ApiError(404, "unit_not_found", f"no unit {ref!r}")
    return unit.id


def parse_time(raw: str | None, name: str, default: float) -> float:
    """Epoch seconds or ISO 8601 (a time without an offset is UTC)."""
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be epoch seconds or ISO 8601, got {raw!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


async def _body(request: Request) -> dict[str, Any]:
    """A JSON object body (or none).  Requiring application/json keeps cross-site forms
    out: they cannot send it without a CORS preflight [ASVS 3.5.2]."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"body over {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "body must be a JSON object")
    return data


def _note(body: dict[str, Any]) -> str:
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 1000:
        raise ApiError(400, "bad_field", "note must be a string of at most 1000 characters")
    return note


async def _who(request: Request) -> tuple[Principal, views.Scope]:
    who = await require(request, api=True)
    return who, views.Scope(web(request).core, who)


# -- handlers --------------------------------------------------------------------------------


async def health(request: Request) -> JSONResponse:
    """Liveness for monitors without credentials; metrics for system roles."""
    core = web(request).core
    data = views.health(core)
    try:
        from .app import principal

        who = await principal(request)
    except ApiError:
        who = None
    if who is not None and who.is_system:
        data["metrics"] = views.metrics(core)
    return _json(data, 200 if data["status"] == "ok" else 503)


async def me(request: Request) -> JSONResponse:
    who, scope = await _who(request)
    # ``units``: every unit the caller sees (direct and through organisations), as Caller.units
    return _json({"name": who.name, "role": str(who.role), "via": who.via, "all_units": who.all_units,
                  "units": list(scope.unit_keys) if scope.unit_keys is not None else [],
                  "direct_units": who.user.units, "orgs": who.user.orgs,
                  "can_act": who.can_act, "can_urge": who.role in URGE_ROLES})


async def organisations(request: Request) -> JSONResponse:
    """The organisation trees the caller may look at (admin, integrator: all; others: the
    subtrees of their organisations, nothing above them), each node with its unit keys."""
    _, scope = await _who(request)
    items = scope.orgs()
    return _json({"items": items, "total": len(items)})


async def plugins(request: Request) -> JSONResponse:
    who, _ = await _who(request)
    if not who.is_system:
        raise ApiError(403, "forbidden", "plugins are shown to admin and integrator roles")
    items = web(request).core.plugins.listing()
    return _json({"items": items, "total": len(items)})


async def metrics(request: Request) -> JSONResponse:
    who, _ = await _who(request)
    if not who.is_system:
        raise ApiError(403, "forbidden", "bus health is shown to admin and integrator roles")
    return _json(views.metrics(web(request).core))


async def units(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    rows = views.unit_overview(core, scope)
    tree = {node["id"]: node for node in views.place_tree(core, scope)}
    for row in rows:
        node = tree.get(row["id"])
        row["buildings"] = node["children"] if node else []
    return _json({"items": rows, "total": len(rows)})


async def devices(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    limit, offset = _page(request)
    status = request.query_params.get("status") or None
    if status is not None and status not in views.STATUSES:
        raise ApiError(400, "bad_parameter", f"status must be one of {list(views.STATUSES)}")
    rows = views.list_devices(web(request).core, scope, unit_id=_unit_param(request, scope), status=status)
    return _json(_listing(rows[offset : offset + limit], len(rows), limit, offset))


def _visible_device(request: Request, scope: views.Scope, device_id: str) -> Any:
    device = web(request).core.registry.devices.get(device_id)
    if device is None or not scope.unit_visible(device.unit_id):
        raise ApiError(404, "device_not_found", f"no device {device_id!r}")
    return device


async def device(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    dev = _visible_device(request, scope, request.path_params["device_id"])
    return _json(await views.device_detail(web(request).core, dev, scope, language(request)))


async def point_history(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    point_id = request.path_params["point_id"]
    info = core.registry.point_info(point_id)
    if info is None or not scope.device_visible(info.device_id):
        raise ApiError(404, "point_not_found", f"no point {point_id!r}")
    now = time.time()
    until = parse_time(request.query_params.get("until"), "until", now)
    since = parse_time(request.query_params.get("since"), "since", until - 86400)
    if since >= until:
        raise ApiError(400, "bad_range", "since must be before until")
    if until - since > MAX_RANGE_S:
        raise ApiError(400, "bad_range", f"a range may span at most {MAX_RANGE_S // 86400} days")
    step = request.query_params.get("step") or "auto"
    if step not in ("auto", *views.STEPS):
        raise ApiError(400, "bad_parameter", "step must be auto, raw, 5m or 1h")
    if step == "auto":
        step = await views.choose_step(core, point_id, since, until)
    if step == "raw" and until - since > MAX_RAW_RANGE_S:
        raise ApiError(400, "bad_range", "raw history spans at most 31 days; use step=5m or step=1h")
    data = await views.point_history(core, point_id, since, until, step)
    state = core.ingest.states.get(point_id)
    data.update({
        "point": {"id": info.point_id, "key": info.key, "name": info.name, "device_id": info.device_id,
                  "point_class": info.point_class, "unit": info.unit},
        "since": since, "until": until,
        "current": {"value": state.value, "fault": state.fault, "ts": state.last_reported} if state else None,
    })
    return _json(data)


async def alarms(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    limit, offset = _page(request)
    status = request.query_params.get("status") or "open"
    if status not in ("active", "open", "all"):
        raise ApiError(400, "bad_parameter", "status must be active, open or all")
    category = request.query_params.get("category") or None
    if category is not None and category not in {c.value for c in AlarmCategory}:
        raise ApiError(400, "bad_parameter", f"category must be one of {[c.value for c in AlarmCategory]}")
    device_id = request.query_params.get("device") or None
    if device_id is not None:
        _visible_device(request, scope, device_id)
    items, total = await views.query_alarms(
        web(request).core, scope, status=status, unit_id=_unit_param(request, scope), category=category,
        device_id=device_id, limit=limit, offset=offset, lang=language(request),
    )
    return _json(_listing(items, total, limit, offset))


async def _visible_alarm(request: Request, scope: views.Scope) -> Any:
    core = web(request).core
    alarm_id = request.path_params["alarm_id"]
    alarm = await core.alarms.get(alarm_id)
    if alarm is None or not scope.alarm_visible(alarm):
        raise ApiError(404, "alarm_not_found", f"no alarm {alarm_id!r}")
    return alarm


async def alarm(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    found = await _visible_alarm(request, scope)
    data = views.alarm_dict(core, found, language(request))
    data["history"] = [
        {"ts": t.ts, "transition": t.transition, "actor_kind": t.actor_kind, "actor": t.actor, "detail": t.detail}
        for t in await core.alarms.history(found.id)
    ]
    return _json(data)


async def _act(request: Request, action: str) -> JSONResponse:
    who, scope = await _who(request)
    found = await _visible_alarm(request, scope)
    if not who.can_act:
        raise ApiError(403, "forbidden", f"the {who.role} role may not {action} alarms")
    check_csrf(request, who, request.headers.get("x-csrf-token"))
    body = await _body(request)
    result = await perform(request, who, found.id, action, body)
    return _json(views.alarm_dict(web(request).core, result, language(request)))


async def perform(request: Request, who: Principal, alarm_id: str, action: str, body: dict[str, Any]) -> Any:
    """Run an operator action on the engine, mapping its refusals to 4xx."""
    engine = web(request).core.alarms
    note = _note(body)
    actor = who.name
    try:
        if action == "ack":
            return await engine.acknowledge(alarm_id, actor, note=note)
        if action == "silence":
            return await engine.silence(alarm_id, actor, note=note)
        verdict = body.get("verdict")
        if verdict not in {v.value for v in Verdict}:
            raise ApiError(400, "bad_field", f"verdict must be one of {[v.value for v in Verdict]}")
        return await engine.set_verdict(alarm_id, verdict, actor, note=note)
    except AlarmNotFound:
        raise ApiError(404, "alarm_not_found", f"no alarm {alarm_id!r}") from None
    except AlarmError as exc:
        raise ApiError(409, "conflict", str(exc)) from None


async def ack(request: Request) -> JSONResponse:
    return await _act(request, "ack")


async def silence(request: Request) -> JSONResponse:
    return await _act(request, "silence")


async def verdict(request: Request) -> JSONResponse:
    return await _act(request, "verdict")


async def notifications(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    limit, offset = _page(request)
    items, total = await views.notification_log(web(request).core, scope, limit=limit, offset=offset)
    return _json(_listing(items, total, limit, offset))


async def openapi(request: Request) -> JSONResponse:
    return _json(openapi_document())


def routes() -> list[Route]:
    return [
        Route("/api/openapi.json", openapi),
        Route("/api/health", health),
        Route("/api/me", me),
        Route("/api/plugins", plugins),
        Route("/api/metrics", metrics),
        Route("/api/units", units),
        Route("/api/organisations", organisations),
        Route("/api/devices", devices),
        Route("/api/devices/{device_id}", device),
        Route("/api/points/{point_id}/history", point_history),
        Route("/api/alarms", alarms),
        Route("/api/alarms/{alarm_id}", alarm),
        Route("/api/alarms/{alarm_id}/ack", ack, methods=["POST"]),
        Route("/api/alarms/{alarm_id}/silence", silence, methods=["POST"]),
        Route("/api/alarms/{alarm_id}/verdict", verdict, methods=["POST"]),
        Route("/api/notifications", notifications),
    ]
