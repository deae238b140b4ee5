"""``GET /api/events``: server-sent events of alarm, state and availability changes.

One bus subscriber per open stream.  Alarm events arrive on the bus's alarm lane
(never dropped); state changes on the telemetry lane with DROP_OLDEST (a live view
wants the newest value, not a backlog).  Each event is filtered by the stream's
scope before it is queued, so a unit user's stream never carries another unit's
data.  A client that falls ``MAX_PENDING`` events behind is sent ``resync`` and
disconnected: the browser reconnects and reloads its lists, instead of the server
holding an unbounded queue for a stalled phone.  The session is re-checked every
``RECHECK_S``: a logout elsewhere or a disabled user ends the stream.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from firebus.sdk.context import new_id
from firebus.sdk.core_api import OverflowPolicy
from firebus.sdk.events import AlarmEvent, AvailabilityChanged, Event, StateChanged

from . import views
from .app import ApiError, require, session_cookie_name, web

KINDS = {"alarm": AlarmEvent, "state": StateChanged, "availability": AvailabilityChanged}
MAX_PENDING = 2000
KEEPALIVE_S = 15.0
RECHECK_S = 30.0


def _alarm(core: Any, data: AlarmEvent) -> dict[str, Any]:
    device = core.registry.devices.get(data.device_id) if data.device_id else None
    point = core.registry.point_info(data.point_id) if data.point_id else None
    return {
        "alarm_id": data.alarm_id, "transition": str(data.transition), "category": str(data.category),
        "severity": int(data.severity), "status": data.status, "rule": data.rule, "device_id": data.device_id,
        "point_id": data.point_id, "unit_id": data.unit_id, "value": data.value, "message": data.message,
        "count": data.count, "ts": data.ts,
        "device_name": device.name if device else "",
        "point_unit": point.unit if point else "",
        "point_class": point.point_class if point else "",
        "location_path": views.location_path(core, data.location_id or (device.location_id if device else None)),
        "unit_name": (u["name"] if (u := views.place_brief(core, data.unit_id)) else ""),
    }


async def events(request: Request) -> StreamingResponse:
    who = await require(request, api=True)
    state = web(request)
    core = state.core
    scope = views.Scope(core, who)
    wanted = request.query_params.get("types") or "alarm,state,availability"
    kinds = [k.strip() for k in wanted.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ApiError(400, "bad_parameter", f"types is a comma list of {sorted(KINDS)}; unknown: {unknown}")
    types = [KINDS[k] for k in kinds]
    pending: deque[tuple[str, dict[str, Any]]] = deque()
    overflow = False
    wake_send, wake_recv = anyio.create_memory_object_stream[None](1)

    def on_event(event: Event) -> None:
        nonlocal overflow
        data = event.data
        if isinstance(data, AlarmEvent):
            if not scope.unit_visible(data.unit_id):
                return
            item = ("alarm", _alarm(core, data))
        elif isinstance(data, StateChanged):
            if not scope.device_visible(data.device_id):
                return
            item = ("state", {"point_id": data.point_id, "device_id": data.device_id, "key": data.point_key,
                              "value": data.new_value, "fault": data.fault, "ts": data.ts})
        elif isinstance(data, AvailabilityChanged):
            if not scope.device_visible(data.device_id):
                return
            item = ("availability", {"device_id": data.device_id, "availability": str(data.availability),
                                     "reason": data.reason})
        else:
            return
        if len(pending) >= MAX_PENDING:
            overflow = True
        else:
            pending.append(item)
        try:
            wake_send.send_nowait(None)
        except anyio.WouldBlock:
            pass

    unsubscribe = core.bus.subscribe(
        f"web-events-{new_id()}", on_event, types=types, maxsize=1000, overflow=OverflowPolicy.DROP_OLDEST
    )
    raw_session = request.cookies.get(session_cookie_name(request), "")
    token = request.headers.get("authorization", "").partition(" ")[2].strip()

    async def still_allowed() -> bool:
        again = await (state.auth.token(token) if who.via == "token" else state.auth.session(raw_session))
        return again is not None

    async def body() -> AsyncIterator[str]:
        seq = 0
        checked = anyio.current_time()
        try:
            yield "retry: 3000\n: connected\n\n"
            while not state.closing.is_set():
                with anyio.move_on_after(KEEPALIVE_S):
                    await wake_recv.receive()
                if state.closing.is_set():
                    break
                if anyio.current_time() - checked > RECHECK_S:
                    checked = anyio.current_time()
                    if not await still_allowed():
                        yield "event: logout\ndata: {}\n\n"
                        break
                if overflow:
                    yield "event: resync\ndata: {}\n\n"
                    break
                if not pending:
                    yield ": keep-alive\n\n"
                    continue
                chunks = []
                while pending:
                    kind, item = pending.popleft()
                    seq += 1
                    chunks.append(f"id: {seq}\nevent: {kind}\ndata: {json.dumps(item, ensure_ascii=False, default=str)}\n\n")
                yield "".join(chunks)
        finally:
            unsubscribe()

    return StreamingResponse(
        body(), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def routes() -> list[Route]:
    return [Route("/api/events", events)]
