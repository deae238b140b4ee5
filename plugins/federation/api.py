"""The centre's HTTP API for commands (``firebus federation centre --http HOST:PORT``).

    POST /api/sites/{site_id}/alarms/{alarm_id}/commands   {"kind", "note"?, "id"?, "expires_in_s"?}
         201 the command (new), 200 the command (same id issued before with the same content)
    GET  /api/commands?site=&alarm=&limit=&offset=          {"items", "total", "limit", "offset", "next_offset"}
    GET  /api/commands/{id}                                 the command with its result
    GET  /api/sites                                         {"items": [{"site_id", "orgs"}], "total"}
    GET  /api/sites/{site_id}/alarms?status=&limit=&offset= the latest transition of each alarm of the site
    GET  /api/sites/{site_id}/state?limit=&offset=          the present value of each point of the site
    GET  /api/alarms?site=&status=&limit=&offset=           … of every site the caller sees
    GET  /api/organisations                                 the organisation trees the caller may look at

Every request carries ``Authorization: Bearer <token>`` (``firebus federation user add``).
Errors are ``{"error": {"code", "message", "message_zh"}}``; a site or command the
caller may not see is 404, as if it did not exist (scope: ``access.py``, by site and by
organisation).  docs/federation.md has the table.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .access import CentreUser
from .desk import CommandDesk, DeskError
from .panel import panel_routes

MAX_BODY = 16 * 1024
MAX_LIMIT = 500
MAX_STATE_LIMIT = 10_000


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise DeskError(400, "bad_parameter", f"{name} must be an integer from {lo} to {hi}",
                        f"{name} 必须是 {lo} 到 {hi} 之间的整数")
    return value


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise DeskError(413, "too_large", f"body over {MAX_BODY} bytes", f"请求体超过 {MAX_BODY} 字节")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise DeskError(415, "unsupported_media_type", "send the body as application/json",
                        "请求体须为 application/json")
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise DeskError(400, "bad_json", "body must be a JSON object", "请求体必须是 JSON 对象")
    return data


def create_app(desk: CommandDesk) -> Starlette:
    async def who(request: Request) -> CentreUser:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        user = await desk.user_of_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise DeskError(401, "unauthorized", "a valid bearer token is required", "需要有效的 Bearer 令牌")
        return user

    def handler(fn: Callable[[Request, CentreUser], Awaitable[tuple[Any, int]]]) -> Callable[..., Any]:
        async def run(request: Request) -> JSONResponse:
            try:
                data, status = await fn(request, await who(request))
            except DeskError as exc:
                return JSONResponse(exc.body(), exc.status,
                                    headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
            except Exception as exc:  # no traceback reaches a user; the log has it
                desk.note_error(exc)
                return JSONResponse(DeskError(503, "unavailable", "the centre cannot answer now (database or NATS)",
                                              "中心暂时无法响应（数据库或 NATS）").body(), 503)
            return JSONResponse(data, status)
        return run

    async def issue(request: Request, user: CentreUser) -> tuple[Any, int]:
        body = await _body(request)
        unknown = sorted(set(body) - {"kind", "note", "id", "expires_in_s"})
        if unknown:
            raise DeskError(400, "bad_field", f"unknown field(s) {unknown}", f"未知字段 {unknown}")
        view, new = await desk.issue(user, request.path_params["site_id"], request.path_params["alarm_id"],
                                     body.get("kind"), note=body.get("note", ""), command_id=body.get("id"),
                                     expires_in_s=body.get("expires_in_s"))
        return view, 201 if new else 200

    async def listing(request: Request, user: CentreUser) -> tuple[Any, int]:
        limit, offset = _int(request, "limit", 100, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 10**9)
        items, total = await desk.list(user, site_id=request.query_params.get("site") or None,
                                       alarm_id=request.query_params.get("alarm") or None, limit=limit, offset=offset)
        nxt = offset + len(items) if offset + len(items) < total else None
        return {"items": items, "total": total, "limit": limit, "offset": offset, "next_offset": nxt}, 200

    async def one(request: Request, user: CentreUser) -> tuple[Any, int]:
        found = await desk.get(user, request.path_params["command_id"])
        if found is None:
            raise DeskError(404, "command_not_found", "no such command", "没有此命令")
        return found, 200

    def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
        nxt = offset + len(items) if offset + len(items) < total else None
        return {"items": items, "total": total, "limit": limit, "offset": offset, "next_offset": nxt}

    async def sites(request: Request, user: CentreUser) -> tuple[Any, int]:
        items = await desk.sites(user)
        return {"items": items, "total": len(items)}, 200

    async def organisations(request: Request, user: CentreUser) -> tuple[Any, int]:
        return {"items": await desk.organisations(user)}, 200

    async def alarms(request: Request, user: CentreUser) -> tuple[Any, int]:
        limit, offset = _int(request, "limit", 100, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 10**9)
        items, total = await desk.alarms(user, site_id=request.query_params.get("site") or None,
                                         status=request.query_params.get("status") or None, limit=limit, offset=offset)
        return page(items, total, limit, offset), 200

    async def site_alarms(request: Request, user: CentreUser) -> tuple[Any, int]:
        limit, offset = _int(request, "limit", 100, 1, MAX_LIMIT), _int(request, "offset", 0, 0, 10**9)
        items, total = await desk.site_alarms(user, request.path_params["site_id"],
                                              status=request.query_params.get("status") or None,
                                              limit=limit, offset=offset)
        return page(items, total, limit, offset), 200

    async def state(request: Request, user: CentreUser) -> tuple[Any, int]:
        limit = _int(request, "limit", 1000, 1, MAX_STATE_LIMIT)
        offset = _int(request, "offset", 0, 0, 10**9)
        items, total = await desk.state(user, request.path_params["site_id"], limit=limit, offset=offset)
        return page(items, total, limit, offset), 200

    return Starlette(routes=[
        Route("/api/sites/{site_id}/alarms/{alarm_id}/commands", handler(issue), methods=["POST"]),
        Route("/api/commands", handler(listing)),
        Route("/api/commands/{command_id}", handler(one)),
        Route("/api/sites", handler(sites)),
        Route("/api/sites/{site_id}/alarms", handler(site_alarms)),
        Route("/api/sites/{site_id}/state", handler(state)),
        Route("/api/alarms", handler(alarms)),
        Route("/api/organisations", handler(organisations)),
        *panel_routes(desk),  # the supervision panel (panel.py): /panel/…
    ])
