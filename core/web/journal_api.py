"""The journal over HTTP, for consumers outside the process (a GB/T 26875.3 gateway of
another vendor, an out-of-process detector's supervisor, a data pipeline).

An outside consumer does what an in-process ``DurableConsumer`` does: it reads
entries after its cursor in batches, handles them idempotently (an entry is
identified by its ``seq``), then stores its new cursor.  After a crash it reads
again from the stored cursor: at-least-once, never a gap.

* ``GET /api/journal?after=SEQ&limit=N&types=A,B&lanes=alarm,telemetry&wait=S`` —
  committed entries with ``seq > after``, oldest first; ``wait`` (seconds, ≤ 30)
  holds the request until at least one entry exists (long poll).
* ``GET /api/journal/cursors`` — the stored cursors of outside consumers.
* ``PUT /api/journal/cursors/{name}`` ``{"seq": N}`` — store consumer ``name``'s
  cursor.  A cursor never moves back (a late retry cannot undo progress).

Only system roles (admin, integrator) may read the journal: it holds every unit.
Outside cursors are stored as ``remote:<name>``, apart from the core's own.
"""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from firebus.sdk.events import Event, Lane

from ..journal import SQL_CURSOR
from .api import _body, _int_param
from .app import ApiError, check_csrf, require, web

MAX_LIMIT = 5000
MAX_WAIT_S = 30.0
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LANES = {str(lane): lane for lane in Lane}


async def _system(request: Request) -> Any:
    who = await require(request, api=True)
    if not who.is_system:
        raise ApiError(403, "forbidden", "the journal is readable by system roles only (admin, integrator)")
    return who


def _entry(event: Event) -> dict[str, Any]:
    ctx = event.context
    return {
        "seq": event.seq,
        "type": event.type,
        "lane": str(event.lane),
        "time": event.time_fired,
        "context": {"id": ctx.id, "parent_id": ctx.parent_id, "actor": str(ctx.actor), "actor_id": ctx.actor_id},
        "data": msgspec.to_builtins(event.data),
    }


async def read(request: Request) -> JSONResponse:
    await _system(request)
    core = web(request).core
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 500, 1, MAX_LIMIT)
    raw_wait = request.query_params.get("wait") or "0"
    try:
        wait = float(raw_wait)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"wait must be seconds, got {raw_wait!r}") from None
    if not 0 <= wait <= MAX_WAIT_S:
        raise ApiError(400, "bad_parameter", f"wait must be between 0 and {MAX_WAIT_S:g} seconds")
    types = [t for t in (request.query_params.get("types") or "").split(",") if t] or None
    lanes = None
    if request.query_params.get("lanes"):
        names = [n for n in request.query_params["lanes"].split(",") if n]
        unknown = [n for n in names if n not in _LANES]
        if unknown:
            raise ApiError(400, "bad_parameter", f"unknown lane {unknown[0]!r}; one of: {', '.join(_LANES)}")
        lanes = [_LANES[n] for n in names]
    deadline = time.monotonic() + wait
    while True:
        entries = await core.journal.read(after, limit, types=types, lanes=lanes)
        if entries or time.monotonic() >= deadline or web(request).closing.is_set():
            break
        # Polling the committed seq (a memory read) is cheap; a query runs only once it moved.
        seen = core.storage.last_seq
        while core.storage.last_seq == seen and time.monotonic() < deadline and not web(request).closing.is_set():
            await anyio.sleep(0.05)
    last = core.storage.last_seq
    return JSONResponse({
        "entries": [_entry(e) for e in entries],
        "last_seq": last,
        "next_after": entries[-1].seq if entries else after,
    })


async def cursors(request: Request) -> JSONResponse:
    await _system(request)
    stored = await web(request).core.journal.cursors()
    return JSONResponse({"cursors": {k[len("remote:"):]: v for k, v in stored.items() if k.startswith("remote:")}})


async def put_cursor(request: Request) -> JSONResponse:
    who = await _system(request)
    check_csrf(request, who, request.headers.get("x-csrf-token"))
    name = request.path_params["name"]
    if not _NAME.match(name):
        raise ApiError(400, "bad_name", "a cursor name is 1–64 characters of A–Z a–z 0–9 _ . -")
    body = await _body(request)
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ApiError(400, "bad_field", "seq must be a non-negative integer")
    core = web(request).core
    if seq > core.storage.last_seq:
        raise ApiError(400, "bad_field", f"seq {seq} is beyond the journal's last entry ({core.storage.last_seq})")
    key = f"remote:{name}"
    # version = seq: the store keeps the larger, so a retried older PUT cannot move it back.
    await core.storage.execute(SQL_CURSOR, core.journal.cursor_row(key, seq, (), seq, time.time()),
                               lane=Lane.ALARM)
    stored = await core.journal.cursor(key)
    return JSONResponse({"name": name, "seq": stored[0] if stored else seq})


def routes() -> list[Route]:
    return [
        Route("/api/journal", read),
        Route("/api/journal/cursors", cursors),
        Route("/api/journal/cursors/{name}", put_cursor, methods=["PUT"]),
    ]
