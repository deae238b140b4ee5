"""Read-only views for the panel (mounted by the core under ``/-/plugins/notify/``, system roles only),
plus a test send so an installer can check a robot's URL and secret from the panel."""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from firebus.sdk import new_id

from .message import Message
from .outbox import Entry

_OUTBOX_COLS = ("id", "alarm_id", "kind", "step", "recipient", "channel", "status", "attempts", "last_error",
                "created_ts", "next_ts", "sent_ts")
_STATUSES = {"pending", "inflight", "sent", "failed", "held", "digested", "cancelled"}


def routes(service_of: Callable[[], Any]) -> list[Route]:
    def service_or_404() -> Any:
        service = service_of()
        if service is None:
            raise LookupError("notify is not configured on this site")
        return service

    async def channels(request: Request) -> JSONResponse:
        try:
            service = service_or_404()
            return JSONResponse({"channels": service.channels.snapshot(), "media": service.media.metrics()})
        except LookupError as exc:
            return JSONResponse({"error": {"code": "not_found", "message": str(exc)}}, 404)

    async def outbox(request: Request) -> JSONResponse:
        try:
            service = service_or_404()
        except LookupError as exc:
            return JSONResponse({"error": {"code": "not_found", "message": str(exc)}}, 404)
        where, params = ["1"], []
        if alarm_id := request.query_params.get("alarm_id"):
            where.append("alarm_id = ?")
            params.append(alarm_id)
        if status := request.query_params.get("status"):
            if status not in _STATUSES:
                return JSONResponse({"error": {"code": "bad_request", "message": f"unknown status {status!r}"}}, 400)
            where.append("status = ?")
            params.append(status)
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return JSONResponse({"error": {"code": "bad_request", "message": "limit must be a number"}}, 400)
        rows = await service.core.storage.fetchall(
            f"SELECT {', '.join(_OUTBOX_COLS)} FROM notify_outbox WHERE {' AND '.join(where)} "
            "ORDER BY created_ts DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return JSONResponse({"notifications": [dict(zip(_OUTBOX_COLS, r)) for r in rows]})

    async def test_send(request: Request) -> JSONResponse:
        try:
            service = service_or_404()
        except LookupError as exc:
            return JSONResponse({"error": {"code": "not_found", "message": str(exc)}}, 404)
        key = request.path_params["channel"]
        entry = service.channels.get(key)
        if entry is None:
            return JSONResponse({"error": {"code": "not_found", "message": f"no channel {key!r}"}}, 404)
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return JSONResponse({"error": {"code": "bad_request", "message": "body must be JSON"}}, 400)
        address = str(body.get("address", "")) if isinstance(body, dict) else ""
        if not entry.group and not address:
            return JSONResponse({"error": {"code": "bad_request",
                                           "message": f"{key} is a personal channel: give an address"}}, 400)
        now = service.clock.time()
        message = Message(
            id=new_id(), kind="test", channel=key, recipient="*" if entry.group else "test", address=address,
            title="firebus 测试消息 / test message", text=f"通道 {key} 工作正常。Channel {key} works.",
            language=str(service.cfg.language), ts=now,
        )
        await service.outbox.add([Entry(f"test|{message.id}", message, None, "pending", now, 0)])
        return JSONResponse({"notification_id": message.id}, 202)

    from .media_web import routes as media_routes
    from .ntfy_web import routes as ntfy_routes
    from .webpush_web import routes as webpush_routes

    return [
        *ntfy_routes(service_of),
        *media_routes(service_of),
        *webpush_routes(service_of),
        Route("/channels", channels),
        Route("/outbox", outbox),
        Route("/channels/{channel}/test", test_send, methods=["POST"]),
    ]
