"""Routes under ``/-/plugins/inspection/``: the phone patrol page, the hazard board and the JSON API.

Every route is open to every signed-in role (``firebus.sdk.signed_in``) and scopes
by the caller: a unit's people see only their units' checkpoints, tasks, records
and hazards; anything else is 404, as if it did not exist.  Writes need a role
that may act (admin, integrator, unit manager, duty officer) and, when
authenticated by the session cookie, the ``X-CSRF-Token`` header.  Errors are
``{"error": {"code", "message", "message_zh"}}``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from functools import wraps
from importlib import resources
from typing import Any, Awaitable, Callable

import anyio
import anyio.to_process
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from firebus.sdk import Caller, caller, nav_link, signed_in

from . import printing
from .hazards import Refused
from .i18n import LANGS, t, table
from .model import ActionIn, DutyIn, HazardIn, RecordIn
from .schedule import month_bounds

Handler = Callable[[Request], Awaitable[Response]]
STATIC = {"patrol.js": "text/javascript", "patrol.css": "text/css", "hazards.js": "text/javascript"}


def _err(status: int, code: str, message: str, message_zh: str = "") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "message_zh": message_zh or message}}, status)


def routes(service_of: Callable[[], Any], site: dict[str, Any]) -> list[Route]:
    site_info = site.get("site") or {}
    default_lang = site_info.get("language") if site_info.get("language") in LANGS else "zh"

    def endpoint(write: bool = False) -> Callable[[Callable[..., Awaitable[Response]]], Handler]:
        def wrap(fn: Callable[..., Awaitable[Response]]) -> Handler:
            @wraps(fn)
            async def handler(request: Request) -> Response:
                who = caller(request)
                if who is None:
                    return _err(401, "unauthenticated", "log in or send 'Authorization: Bearer <token>'", "请先登录")
                service = service_of()
                if service is None:
                    return _err(503, "not_running", "the inspection service is not running", "巡检服务未运行")
                if write:
                    if not who.can_act:
                        return _err(403, "forbidden", f"role {who.role} may read, not write", f"角色 {who.role} 只能查看")
                    if not who.csrf_ok(request.headers.get("x-csrf-token")):
                        return _err(403, "csrf", "missing or wrong X-CSRF-Token header", "缺少或错误的防伪令牌")
                try:
                    return await fn(request, who, service)
                except Refused as exc:
                    return _err(exc.status, exc.code, exc.message, exc.message_zh)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    return _err(400, "bad_request", f"body: {exc}", f"请求内容不正确：{exc}")
                except ValueError as exc:
                    return _err(400, "bad_request", str(exc), str(exc))
            return handler
        return wrap

    def units(who: Caller) -> set[str] | None:
        return None if who.all_units else set(who.units)

    def lang_of(request: Request) -> str:
        chosen = request.query_params.get("lang") or request.cookies.get("firebus_lang")
        return chosen if chosen in LANGS else default_lang

    async def body_of(request: Request, cls: type) -> Any:
        raw = await request.body()
        if not raw:
            raise Refused(400, "bad_request", "the body must be JSON", "请求内容须为 JSON")
        return msgspec.json.decode(raw, type=cls)

    def time_param(request: Request, name: str, default: float | None) -> float | None:
        from .service import parse_ts

        return parse_ts(request.query_params.get(name), name, default)

    # -- pages --------------------------------------------------------------------------------

    def page(request: Request, who: Caller, title_key: str, script: str, extra: dict[str, Any]) -> Response:
        lang = lang_of(request)
        cfg = {"lang": lang, "text": table(lang), "csrf": who.csrf, "user": who.name, "role": who.role,
               "can_act": who.can_act, "base": "/-/plugins/inspection", "tz": str(service_tz(service_of())), **extra}
        other = "en" if lang == "zh" else "zh"
        data = json.dumps(cfg, ensure_ascii=False).replace("</", "<\\/")
        body = f"""<!doctype html><html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(t(lang, title_key))} · firebus</title>
<link rel="stylesheet" href="/-/plugins/inspection/static/patrol.css"></head>
<body><header><h1>{html.escape(t(lang, title_key))}</h1><span id="net" class="net"></span>
<a class="lang" href="?lang={other}">{html.escape(t(lang, 'language'))}</a></header>
<main id="app"></main>
<script id="cfg" type="application/json">{data}</script>
<script src="/-/plugins/inspection/static/{script}"></script></body></html>"""
        response = Response(body, media_type="text/html")
        if request.query_params.get("lang") in LANGS:
            response.set_cookie("firebus_lang", lang, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    @endpoint()
    async def patrol_page(request: Request, who: Caller, service: Any) -> Response:
        return page(request, who, "patrol_title", "patrol.js", {"code": request.query_params.get("code", "")})

    @endpoint()
    async def hazards_page(request: Request, who: Caller, service: Any) -> Response:
        return page(request, who, "hazards_title", "hazards.js", {})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _err(404, "not_found", f"no file {name}")
        data = resources.files("firebus.plugins.inspection").joinpath(name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={"cache-control": "no-cache"})

    # -- catalogue, checkpoints ---------------------------------------------------------------

    @endpoint()
    async def get_catalogue(request: Request, who: Caller, service: Any) -> Response:
        return JSONResponse({"items": [msgspec.to_builtins(i) for i in service.items.values()]})

    def checkpoint_json(service: Any, key: str) -> dict[str, Any]:
        cp = service.checkpoints[key]
        return {"key": cp.key, "name": cp.name, "location": cp.location, "unit": service.unit_of(cp.key),
                "tags": [{"kind": tg.kind.value, "code": tg.code} for tg in cp.tags], "items": list(cp.items)}

    @endpoint()
    async def get_checkpoints(request: Request, who: Caller, service: Any) -> Response:
        seen = units(who)
        return JSONResponse({"items": [checkpoint_json(service, k) for k in service.checkpoints
                                       if seen is None or service.unit_of(k) in seen]})

    @endpoint()
    async def resolve(request: Request, who: Caller, service: Any) -> Response:
        q = request.query_params
        key = service.resolve(q.get("checkpoint", ""), q.get("kind") or None, q.get("code"))
        seen = units(who)
        if seen is not None and service.unit_of(key) not in seen:
            raise Refused(404, "checkpoint_not_found", f"no checkpoint {key!r}", f"没有点位 {key}")
        out = checkpoint_json(service, key)
        out["due_items"] = await service.due_items(key, service.clock.time())
        return JSONResponse(out)

    # -- tasks ----------------------------------------------------------------------------------

    @endpoint()
    async def get_tasks(request: Request, who: Caller, service: Any) -> Response:
        status = request.query_params.get("status") or None
        if status not in (None, "open", "done", "missed"):
            raise Refused(400, "bad_request", "status: open, done or missed", "状态须为 open、done 或 missed")
        since = time_param(request, "from", None)
        until = time_param(request, "to", None)
        limit = int(request.query_params.get("limit", "200"))
        if not 1 <= limit <= 1000:
            raise Refused(400, "bad_request", "limit: 1 … 1000", "limit 须在 1 到 1000 之间")
        items = await service.list_tasks(units(who), status, since, until, limit)
        if request.query_params.get("mine") == "1" and not who.is_system:
            items = [x for x in items if x["role"] == who.role]
        return JSONResponse({"items": items, "now": service.clock.time()})

    @endpoint()
    async def get_missed(request: Request, who: Caller, service: Any) -> Response:
        since = time_param(request, "from", None)
        items = await service.list_tasks(units(who), "missed", since, None, 1000)
        return JSONResponse({"items": [{**x, "skipped": [s["checkpoint"] for s in x["stops"] if not s["record_id"]]}
                                       for x in items]})

    # -- records, photos ------------------------------------------------------------------------

    @endpoint(write=True)
    async def post_record(request: Request, who: Caller, service: Any) -> Response:
        body = await body_of(request, RecordIn)
        record, created = await service.add_record(body, who.name, units(who))
        return JSONResponse({**record, "duplicate": not created}, 201 if created else 200)

    @endpoint()
    async def get_records(request: Request, who: Caller, service: Any) -> Response:
        month = request.query_params.get("month")
        if month:
            since, until = month_bounds(month, service.tz)
        else:
            now = service.clock.time()
            since = time_param(request, "from", now - 86400) or 0.0
            until = time_param(request, "to", now + 1) or now + 1
        items = await service.records(units(who), since, until, request.query_params.get("checkpoint", ""))
        return JSONResponse({"items": items})

    @endpoint()
    async def get_record(request: Request, who: Caller, service: Any) -> Response:
        rec = await service.record(request.path_params["id"])
        seen = units(who)
        if rec is None or (seen is not None and rec["unit"] not in seen):
            raise Refused(404, "not_found", "no such record", "没有此记录")
        return JSONResponse(rec)

    @endpoint(write=True)
    async def put_photo(request: Request, who: Caller, service: Any) -> Response:
        data = await request.body()
        seen = units(who)
        unit = next(iter(sorted(seen)), None) if seen else None
        created = await service.add_photo(request.path_params["id"], request.headers.get("content-type", ""), data,
                                          who.name, unit)
        return JSONResponse({"id": request.path_params["id"], "bytes": len(data), "duplicate": not created},
                            201 if created else 200)

    @endpoint()
    async def get_photo(request: Request, who: Caller, service: Any) -> Response:
        found = await service.photo(request.path_params["id"])
        seen = units(who)
        if found is None or (seen is not None and not seen & await service.photo_units(request.path_params["id"], found[2])):
            raise Refused(404, "not_found", "no such photo", "没有此照片")
        return Response(found[1], media_type=found[0], headers={"cache-control": "private, max-age=86400"})

    # -- hazards --------------------------------------------------------------------------------

    @endpoint()
    async def get_hazards(request: Request, who: Caller, service: Any) -> Response:
        state = request.query_params.get("state") or None
        if state not in (None, "open", "assigned", "rectifying", "submitted", "closed"):
            raise Refused(400, "bad_request", "state: open, assigned, rectifying, submitted or closed", "状态不正确")
        items = await service.hazards(units(who), state, request.query_params.get("overdue") == "1")
        return JSONResponse({"items": items, "now": service.clock.time()})

    @endpoint(write=True)
    async def post_hazard(request: Request, who: Caller, service: Any) -> Response:
        body = await body_of(request, HazardIn)
        return JSONResponse(await service.create_hazard(body, who.name, who.role, units(who)), 201)

    @endpoint()
    async def get_hazard(request: Request, who: Caller, service: Any) -> Response:
        hazard = await service.hazard(request.path_params["id"])
        seen = units(who)
        if hazard is None or (seen is not None and hazard["unit"] not in seen):
            raise Refused(404, "not_found", "no such hazard", "没有此隐患")
        return JSONResponse(hazard)

    @endpoint(write=True)
    async def post_action(request: Request, who: Caller, service: Any) -> Response:
        body = await body_of(request, ActionIn)
        return JSONResponse(await service.act(request.path_params["id"], body, who.name, who.role, units(who)))

    # -- duty records ---------------------------------------------------------------------------

    @endpoint(write=True)
    async def post_duty(request: Request, who: Caller, service: Any) -> Response:
        body = await body_of(request, DutyIn)
        rec, created = await service.add_duty(body, who.name, units(who))
        return JSONResponse({**rec, "duplicate": not created}, 201 if created else 200)

    @endpoint()
    async def get_duty(request: Request, who: Caller, service: Any) -> Response:
        month = request.query_params.get("month") or dt.datetime.fromtimestamp(service.clock.time(), service.tz).strftime("%Y-%m")
        since, until = month_bounds(month, service.tz)
        return JSONResponse({"items": await service.duty(units(who), since, until)})

    # -- printing -------------------------------------------------------------------------------

    @endpoint()
    async def labels_pdf(request: Request, who: Caller, service: Any) -> Response:
        seen = units(who)
        wanted = set(request.query_params.getlist("checkpoint"))
        unit = request.query_params.get("unit")
        base = str(request.base_url).rstrip("/")
        labels = label_list(service, base, lambda key: (seen is None or service.unit_of(key) in seen)
                            and (not wanted or key in wanted) and (not unit or service.unit_of(key) == unit))
        if not labels:
            raise Refused(404, "not_found", "no checkpoint with a QR tag matches", "没有带二维码的点位")
        data = await anyio.to_process.run_sync(printing.labels_pdf, labels, t(lang_of(request), "labels_title"))
        return Response(data, media_type="application/pdf",
                        headers={"content-disposition": 'inline; filename="inspection-labels.pdf"'})

    @endpoint()
    async def export(request: Request, who: Caller, service: Any) -> Response:
        kind, fmt = request.path_params["kind"], request.path_params["fmt"]
        if kind not in ("patrol", "duty", "hazards") or fmt not in ("csv", "pdf"):
            raise Refused(404, "not_found", "exports: patrol|duty|hazards . csv|pdf", "没有此导出")
        month = request.query_params.get("month") or ""
        if not month:
            raise Refused(400, "bad_request", "month=YYYY-MM is required", "请给出月份 month=YYYY-MM")
        header, rows = await form_data(service, kind, month, units(who), request.query_params.get("unit") or None)
        name = f"{kind}-{month}.{fmt}"
        if fmt == "csv":
            return Response(printing.to_csv(header, rows), media_type="text/csv; charset=utf-8",
                            headers={"content-disposition": f'attachment; filename="{name}"'})
        title = printing.both({"patrol": "form_patrol", "duty": "form_duty", "hazards": "form_hazards"}[kind])
        site_name = str(site_info.get("name") or "")
        generated = dt.datetime.fromtimestamp(service.clock.time(), service.tz).strftime("%Y-%m-%d %H:%M")
        data = await anyio.to_process.run_sync(printing.form_pdf, title, site_name, month, header, rows, generated)
        return Response(data, media_type="application/pdf", headers={"content-disposition": f'inline; filename="{name}"'})

    table_routes = [
        nav_link(Route("/patrol", patrol_page), "巡检", "Patrol"),
        nav_link(Route("/hazards", hazards_page), "隐患", "Hazards"),
        Route("/static/{name}", static),
        Route("/api/catalogue", get_catalogue),
        Route("/api/checkpoints", get_checkpoints),
        Route("/api/resolve", resolve),
        Route("/api/tasks", get_tasks),
        Route("/api/tasks/missed", get_missed),
        Route("/api/records", post_record, methods=["POST"]),
        Route("/api/scans", post_record, methods=["POST"]),
        Route("/api/records", get_records, methods=["GET"]),
        Route("/api/records/{id}", get_record),
        Route("/api/photos/{id}", put_photo, methods=["PUT"]),
        Route("/api/photos/{id}", get_photo, methods=["GET"]),
        Route("/api/hazards", get_hazards, methods=["GET"]),
        Route("/api/hazards", post_hazard, methods=["POST"]),
        Route("/api/hazards/{id}", get_hazard),
        Route("/api/hazards/{id}/actions", post_action, methods=["POST"]),
        Route("/api/duty", get_duty, methods=["GET"]),
        Route("/api/duty", post_duty, methods=["POST"]),
        Route("/labels.pdf", labels_pdf),
        Route("/export/{kind}.{fmt}", export),
    ]
    return [signed_in(r) for r in table_routes]


def service_tz(service: Any) -> str:
    return str(getattr(service, "tz", "") or "Asia/Shanghai")


def label_list(service: Any, base: str, keep: Callable[[str], bool]) -> list[dict[str, str]]:
    out = []
    for key, cp in service.checkpoints.items():
        if not keep(key):
            continue
        for tag in cp.tags:
            if tag.kind.value == "qr":
                out.append({"code": tag.code, "url": printing.label_url(base, tag.code), "name": cp.name or key,
                            "place": cp.location, "unit": service.unit_of(key) or ""})
    return out


async def form_data(service: Any, kind: str, month: str, seen: set[str] | None,
                    unit: str | None) -> tuple[list[str], list[list[str]]]:
    since, until = month_bounds(month, service.tz)
    if kind == "patrol":
        records = await service.records(seen, since, until)
    elif kind == "duty":
        records = await service.duty(seen, since, until)
    else:
        records = [h for h in await service.hazards(seen, None, False, 100_000)
                   if h["created_ts"] < until and (h["closed_ts"] is None or h["closed_ts"] >= since)]
    if unit:
        records = [r for r in records if r["unit"] == unit]
    names = {k: (cp.name or k) for k, cp in service.checkpoints.items()}
    names.update({k: f"{i.name_zh} {i.name_en}" for k, i in service.items.items()})
    return printing.form_rows(kind, records, service.tz, names)
