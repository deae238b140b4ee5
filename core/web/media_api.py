"""Media of alarms over HTTP: ``GET /api/alarms/{id}/media`` and ``GET /api/media/{id}``.

Authorised exactly like the alarm (``api._visible_alarm``: the caller's scope decides): a
medium is visible when at least one alarm it is attached to is; anything else is 404, as
if it did not exist.  Bytes are sent with their stored content type, ``nosniff`` (the
security headers) and ``Range`` support (Starlette's FileResponse), so a ``<video>``
element can seek in a clip.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .api import _visible_alarm, _who
from .app import ApiError, web


def media_dict(info: Any) -> dict[str, Any]:
    return {"id": info.id, "content_type": info.content_type, "bytes": info.bytes, "kind": str(info.kind),
            "ts": info.ts, "device_id": info.device_id, "start_ts": info.start_ts, "end_ts": info.end_ts,
            "created_ts": info.created_ts, "url": f"/api/media/{info.id}"}


async def alarm_media(request: Request) -> JSONResponse:
    _, scope = await _who(request)
    found = await _visible_alarm(request, scope)
    items = [media_dict(m) for m in await web(request).core.media.of_alarm(found.id)]
    return JSONResponse({"items": items, "total": len(items)})


async def medium(request: Request) -> Response:
    _, scope = await _who(request)
    core = web(request).core
    media_id = request.path_params["media_id"]
    not_found = ApiError(404, "media_not_found", f"no medium {media_id!r}")
    visible = False
    for alarm_id in await core.media.alarms_of(media_id):
        alarm = await core.alarms.get(alarm_id)
        if alarm is not None and scope.alarm_visible(alarm):
            visible = True
            break
    if not visible:
        raise not_found
    got = await core.media.get(media_id)
    if got is None:
        raise not_found
    info, path = got
    # Immutable content under a never-reused id: private caching is safe (the panel refetches
    # nothing when a page is reopened); no shared cache may keep it.
    return FileResponse(path, media_type=info.content_type,
                        headers={"cache-control": "private, max-age=86400, immutable"})


def routes() -> list[Route]:
    return [
        Route("/api/alarms/{alarm_id}/media", alarm_media),
        Route("/api/media/{media_id}", medium),
    ]
