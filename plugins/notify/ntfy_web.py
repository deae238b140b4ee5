"""The ntfy subscribe API under ``/-/plugins/notify/ntfy`` (the server URL the ntfy app is given).

``GET /<topics>/json`` (newline-delimited JSON), ``/sse`` (Server-Sent Events), ``/raw``
(message text only), ``/ws`` (WebSocket, one JSON object per frame) and ``/auth``, with ntfy's
``poll=1`` and ``since=<all|latest|id|unix time|duration>`` as query parameters or ``X-Poll`` /
``X-Since`` headers.  ``<topics>`` is one topic or several separated by commas.

Who may read: the core authenticates (Bearer API token, Basic user:password or Basic with the
token as password, or the panel session); a topic is then readable by the firebus user of the
person it belongs to (``notify.people[].user``, default the person's name) and by admins.
"""

from __future__ import annotations

import secrets
import string
from typing import Any, AsyncIterator, Callable

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from firebus.sdk import caller, signed_in

from .ntfy import TOPIC, NtfyChannel, NtfyEvent, replay

_enc = msgspec.json.Encoder()
_ALPHABET = string.ascii_letters + string.digits
_TRUE = {"1", "yes", "true"}
MEDIA = {
    "json": "application/x-ndjson; charset=utf-8",
    "sse": "text/event-stream; charset=utf-8",
    "raw": "text/plain; charset=utf-8",
}


class NtfyRefused(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        # ntfy's error shape ({"code": 40301, "http": 403, "error": "..."}), so the app shows the reason.
        return JSONResponse({"code": self.code, "http": self.status, "error": self.message}, self.status)


def _id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def _param(conn: Any, name: str, *aliases: str) -> str | None:
    """ntfy takes each parameter as a query parameter or an ``X-`` header, case-insensitive."""
    query = {k.lower(): v for k, v in conn.query_params.items()}
    for key in (name, *aliases):
        if key in query:
            return query[key]
    return conn.headers.get(f"x-{name}")


def routes(service_of: Callable[[], Any]) -> list[Any]:
    def channels() -> tuple[Any, list[NtfyChannel]]:
        service = service_of()
        found = [e.notifier for e in service.channels.entries.values()
                 if isinstance(e.notifier, NtfyChannel)] if service is not None else []
        if not found:
            raise NtfyRefused(404, 40401, "no ntfy channel is configured on this site "
                                          "(notify.channels: a channel of type ntfy) / 本站未配置 ntfy 通道")
        return service, found

    def authorise(conn: Any) -> tuple[Any, NtfyChannel, frozenset[str]]:
        service, found = channels()
        who = caller(conn)
        if who is None:
            raise NtfyRefused(401, 40101, "sign in: Basic user:password or Bearer token / 请登录")
        raw = conn.path_params["topics"]
        topics = frozenset(t for t in raw.split(",") if t)
        bad = sorted(t for t in topics if not TOPIC.match(t))
        if not topics or bad:
            raise NtfyRefused(400, 40009, f"invalid topic {', '.join(bad) or raw!r}: letters, digits, - and _, "
                                          "at most 64 / 主题名无效")
        if who.role != "admin":
            keys = {c.key for c in found}
            for topic in sorted(topics):
                owner = next((p for p in service.cfg.people
                              if any(k in keys and v == topic for k, v in p.contacts.items())), None)
                if owner is None or service.user_of(owner) != who.name:
                    raise NtfyRefused(403, 40301, f"topic {topic!r} is not yours: only the user of the person it "
                                                  "belongs to, or an admin, may read it / 无权订阅该主题")
        return service, found[0], topics

    async def prepare(conn: Any) -> tuple[Any, NtfyChannel, frozenset[str], bool, Any, Any, list[Any]]:
        service, channel, topics = authorise(conn)
        poll = (_param(conn, "poll", "po") or "").lower() in _TRUE
        since = _param(conn, "since", "si")
        if poll and not since:
            since = "all"  # ntfy: poll defaults to since=all
        # Open before reading the store: a message sent in between is in one or the other.
        sub, receive = channel.hub.open(topics)
        try:
            past = await replay(service.core.storage, topics, since, service.clock.time())
        except Exception:
            channel.hub.close_one(sub)
            raise
        return service, channel, topics, poll, sub, receive, past

    async def events(service: Any, channel: NtfyChannel, topics: frozenset[str], poll: bool, sub: Any,
                     receive: Any, past: list[tuple[int, NtfyEvent]]) -> AsyncIterator[NtfyEvent]:
        topic = ",".join(sorted(topics))

        def control(kind: str) -> NtfyEvent:
            return NtfyEvent(id=_id(), time=int(service.clock.time()), event=kind, topic=topic)

        try:
            if not poll:
                yield control("open")
            shown = set()
            for seq, event in past:
                shown.add(seq)
                yield event
            if poll:
                return
            while True:
                item = None
                with anyio.move_on_after(channel.keepalive_s):
                    try:
                        item = await receive.receive()
                    except (anyio.EndOfStream, anyio.ClosedResourceError):
                        return  # the service stops, or this reader fell behind: the app reconnects with since=
                if item is None:
                    yield control("keepalive")
                elif item[0] not in shown:
                    yield item[1]
        finally:
            channel.hub.close_one(sub)

    def line(fmt: str, event: NtfyEvent) -> bytes:
        if fmt == "raw":
            return ((event.message or "").replace("\n", " ") + "\n").encode() if event.event == "message" else b"\n"
        data = _enc.encode(event)
        if fmt == "sse":
            head = b"" if event.event == "message" else f"event: {event.event}\n".encode()
            return head + b"data: " + data + b"\n\n"
        return data + b"\n"

    def stream(fmt: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            try:
                args = await prepare(request)
            except NtfyRefused as exc:
                return exc.response()

            async def body() -> AsyncIterator[bytes]:
                async for event in events(*args):
                    yield line(fmt, event)

            return StreamingResponse(body(), media_type=MEDIA[fmt],
                                     headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"})

        return handler

    async def auth(request: Request) -> Response:
        try:
            authorise(request)
        except NtfyRefused as exc:
            return exc.response()
        return JSONResponse({"success": True})

    async def websocket(ws: WebSocket) -> None:
        try:
            args = await prepare(ws)
        except NtfyRefused as exc:
            await ws.close(code=1008, reason=exc.message[:120])
            return
        await ws.accept()
        async with anyio.create_task_group() as tg:
            async def until_closed() -> None:
                try:
                    while True:
                        await ws.receive_text()  # the app sends nothing; a close ends the stream
                except (WebSocketDisconnect, RuntimeError):
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(until_closed)
            try:
                async for event in events(*args):
                    await ws.send_text(_enc.encode(event).decode())
            except (WebSocketDisconnect, RuntimeError):
                pass
            tg.cancel_scope.cancel()
        try:
            await ws.close()
        except (WebSocketDisconnect, RuntimeError):
            pass  # already closed by the client

    return [
        signed_in(Route("/ntfy/{topics}/json", stream("json"))),
        signed_in(Route("/ntfy/{topics}/sse", stream("sse"))),
        signed_in(Route("/ntfy/{topics}/raw", stream("raw"))),
        signed_in(Route("/ntfy/{topics}/auth", auth)),
        signed_in(WebSocketRoute("/ntfy/{topics}/ws", websocket)),
    ]
