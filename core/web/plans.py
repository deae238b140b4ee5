"""Floor plans: a plan image per floor, devices placed on it by drag and drop, live colours.

Tables ``plan_images`` and ``plan_positions`` (core migration 4).  Positions are fractions
of the image (0–1).  Viewing follows the place's unit (404 outside the caller's units);
uploading and moving need a commissioning role (admin, integrator, unit manager).
"""

from __future__ import annotations

import io
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from firebus.sdk.vocab import PlaceKind

from . import views
from .app import ApiError, check_csrf, render, require, web
from .auth import Principal, Role

MAX_IMAGE = 5 * 1024 * 1024
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EDIT_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.UNIT_MANAGER})
PLAN_KINDS = frozenset({PlaceKind.FLOOR, PlaceKind.BUILDING, PlaceKind.UNIT})


def can_edit(who: Principal) -> bool:
    return who.role in EDIT_ROLES


def descendants(core: Any, place_id: str) -> set[str]:
    """The place and every place under it."""
    children: dict[str | None, list[str]] = {}
    for place in core.registry.places.values():
        children.setdefault(place.parent_id, []).append(place.id)
    out, todo = set(), [place_id]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += children.get(pid, [])
    return out


def _visible_place(core: Any, scope: views.Scope, place_id: str) -> Any:
    place = core.registry.places.get(place_id)
    if place is None or place.kind not in PLAN_KINDS or not scope.unit_visible(core.registry.unit_of(place.id)):
        raise ApiError(404, "place_not_found", f"no floor {place_id!r}")
    return place


async def plan_data(core: Any, scope: views.Scope, place: Any) -> dict[str, Any]:
    """The plan of ``place``: image facts, and every device under it with status and position."""
    image = await core.storage.fetchone(
        "SELECT content_type, width, height, updated_ts FROM plan_images WHERE place_id = ?", (place.id,))
    under = descendants(core, place.id)
    devices = [d for d in views.visible_devices(core, scope) if d.location_id in under]
    positions = {r[0]: (r[1], r[2], r[3]) for r in await core.storage.fetchall(
        "SELECT device_id, place_id, x, y FROM plan_positions WHERE place_id = ?", (place.id,))}
    statuses = views.device_statuses(core)
    rows = []
    for d in devices:
        pos = positions.get(d.id)
        rows.append({"id": d.id, "name": views.display_name(d), "status": statuses.get(d.id, "normal"),
                     "location_path": views.location_path(core, d.location_id),
                     "x": pos[1] if pos else None, "y": pos[2] if pos else None})
    return {
        "place": views.place_brief(core, place.id) | {"level": place.level},
        "path": " / ".join(p.name or p.key for p in core.registry.place_path(place.id)),
        "image": (f"/api/plans/{place.id}/image?v={int(image[3] * 1000)}" if image else None),
        "width": image[1] if image else None, "height": image[2] if image else None,
        "devices": rows,
    }


def floors(core: Any, scope: views.Scope) -> list[Any]:
    out = [p for p in core.registry.places.values()
           if p.kind is PlaceKind.FLOOR and scope.unit_visible(core.registry.unit_of(p.id))]
    return sorted(out, key=lambda p: (views.location_path(core, p.parent_id), p.level or 0, p.name or p.key))


def check_image(raw: bytes, content_type: str) -> tuple[str, int, int]:
    """(content type, width, height) of a PNG / JPEG / WebP, or a clear 4xx."""
    if len(raw) > MAX_IMAGE:
        raise ApiError(413, "too_large", f"a plan image may be at most {MAX_IMAGE // (1024 * 1024)} MB")
    if not raw:
        raise ApiError(400, "empty", "send the image as the request body")
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            kind, (width, height) = img.format, img.size
            img.verify()
    except Exception:
        raise ApiError(415, "bad_image", "the body is not a PNG, JPEG or WebP image") from None
    if kind not in IMAGE_TYPES:
        raise ApiError(415, "bad_image", f"plan images are PNG, JPEG or WebP, not {kind}")
    if content_type and content_type.split(";")[0].strip().lower() not in (IMAGE_TYPES[kind], "application/octet-stream"):
        raise ApiError(415, "bad_image", f"Content-Type says {content_type!r} but the image is {IMAGE_TYPES[kind]}")
    return IMAGE_TYPES[kind], width, height


# -- API ---------------------------------------------------------------------------------------


async def _who(request: Request) -> tuple[Principal, views.Scope]:
    who = await require(request, api=True)
    return who, views.Scope(web(request).core, who)


def _editor(request: Request, who: Principal) -> None:
    if not can_edit(who):
        raise ApiError(403, "forbidden", f"the {who.role} role may not edit floor plans")
    check_csrf(request, who, request.headers.get("x-csrf-token"))


async def api_list(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    have = {r[0] for r in await core.storage.fetchall("SELECT place_id FROM plan_images")}
    items = [{"id": f.id, "name": f.name or f.key, "level": f.level, "path": views.location_path(core, f.id),
              "unit": views.place_brief(core, core.registry.unit_of(f.id)), "has_image": f.id in have}
             for f in floors(core, scope)]
    return JSONResponse({"items": items, "total": len(items)})


async def api_plan(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    core = web(request).core
    place = _visible_place(core, scope, request.path_params["place_id"])
    return JSONResponse(await plan_data(core, scope, place))


async def api_image(request: Request) -> Response:
    _, scope = await _who(request)
    core = web(request).core
    place = _visible_place(core, scope, request.path_params["place_id"])
    if request.method == "PUT":
        who = request.state.principal
        _editor(request, who)
        chunks, size = [], 0
        async for chunk in request.stream():  # bounded read: a chunked upload has no Content-Length
            size += len(chunk)
            if size > MAX_IMAGE:
                raise ApiError(413, "too_large", f"a plan image may be at most {MAX_IMAGE // (1024 * 1024)} MB")
            chunks.append(chunk)
        raw = b"".join(chunks)
        content_type, width, height = check_image(raw, request.headers.get("content-type", ""))
        await core.storage.execute(
            "INSERT INTO plan_images (place_id, content_type, image, width, height, updated_ts, updated_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (place_id) DO UPDATE SET content_type = excluded.content_type,"
            " image = excluded.image, width = excluded.width, height = excluded.height,"
            " updated_ts = excluded.updated_ts, updated_by = excluded.updated_by",
            (place.id, content_type, raw, width, height, time.time(), who.name),
        )
        return JSONResponse(await plan_data(core, scope, place))
    row = await core.storage.fetchone("SELECT content_type, image FROM plan_images WHERE place_id = ?", (place.id,))
    if row is None:
        raise ApiError(404, "no_plan", "this floor has no plan image")
    return Response(bytes(row[1]), media_type=row[0], headers={"Cache-Control": "private, max-age=86400"})


async def api_position(request: Request) -> JSONResponse:
    who, scope = await _who(request)
    core = web(request).core
    place = _visible_place(core, scope, request.path_params["place_id"])
    _editor(request, who)
    device_id = request.path_params["device_id"]
    device = core.registry.devices.get(device_id)
    if device is None or not scope.unit_visible(device.unit_id) or device.location_id not in descendants(core, place.id):
        raise ApiError(404, "device_not_found", f"no device {device_id!r} on this floor")
    if request.method == "DELETE":
        await core.storage.execute("DELETE FROM plan_positions WHERE device_id = ?", (device_id,))
        return JSONResponse({"device_id": device_id, "x": None, "y": None})
    from .api import _body

    body = await _body(request)
    x, y = body.get("x"), body.get("y")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in (x, y)):
        raise ApiError(400, "bad_field", "x and y are fractions of the plan image, 0 to 1")
    await core.storage.execute(
        "INSERT INTO plan_positions (device_id, place_id, x, y, updated_ts, updated_by) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (device_id) DO UPDATE SET place_id = excluded.place_id, x = excluded.x, y = excluded.y,"
        " updated_ts = excluded.updated_ts, updated_by = excluded.updated_by",
        (device_id, place.id, float(x), float(y), time.time(), who.name),
    )
    return JSONResponse({"device_id": device_id, "x": float(x), "y": float(y)})


# -- pages -----------------------------------------------------------------------------------


async def plans_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    have = {r[0] for r in await core.storage.fetchall("SELECT place_id FROM plan_images")}
    rows = [{"id": f.id, "name": f.name or f.key, "path": views.location_path(core, f.parent_id),
             "unit": (u["name"] if (u := views.place_brief(core, core.registry.unit_of(f.id))) else ""),
             "has_image": f.id in have} for f in floors(core, scope)]
    return render(request, "plans.html", floors=rows)


async def plan_page(request: Request) -> Response:
    from .panel import _page_js

    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    place = core.registry.places.get(request.path_params["place_id"])
    if place is None or place.kind not in PLAN_KINDS or not scope.unit_visible(core.registry.unit_of(place.id)):
        raise ApiError(404, "place_not_found", "not_found")
    data = await plan_data(core, scope, place)
    highlight = [d for d in request.query_params.get("device", "").split(",") if d]
    return render(request, "plan.html", plan=data, editable=can_edit(who),
                  page_js=_page_js(request, view="plan", place_id=place.id, editable=can_edit(who),
                                   highlight=highlight))


def api_routes() -> list[Route]:
    return [
        Route("/api/plans", api_list),
        Route("/api/plans/{place_id}", api_plan),
        Route("/api/plans/{place_id}/image", api_image, methods=["GET", "PUT"]),
        Route("/api/plans/{place_id}/devices/{device_id}", api_position, methods=["PUT", "DELETE"]),
    ]


def page_routes() -> list[Route]:
    return [Route("/plans", plans_page), Route("/plans/{place_id}", plan_page)]
