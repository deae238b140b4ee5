"""Routes under ``/-/plugins/supervision/``: three pages and their JSON API.

Every route is open to every signed-in role (``firebus.sdk.signed_in``) and scoped by the
caller: only units in ``Caller.units`` (``Caller.sees``) appear anywhere, an organisation
filter narrows that further, and a unit outside the scope answers 404 like a missing one.
Urging needs ``Caller.can_urge`` (supervisor, fire inspector, admin); answering, the
unit's manager or duty officer (or admin).  Session-authenticated writes carry
``X-CSRF-Token``.  Errors are ``{"error": {"code", "message", "message_zh", "field"}}``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
from functools import wraps
from importlib import resources
from typing import Any, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from firebus.sdk import Caller, caller, nav_link, signed_in

from .i18n import LANGS, kind_label, t
from .svg import GRADE_COLOURS, NO_GRADE, bars, heatmap, trend, unit_map
from .urges import ANSWER_ROLES, AnswerIn, Refused, UrgeIn

log = logging.getLogger("firebus.plugin.supervision")
BASE = "/-/plugins/supervision"
STATIC = {"supervision.css": "text/css", "supervision.js": "text/javascript"}
GRADES = ("A", "B", "C", "D")
#: sort keys of "units at a glance": name → how a row is ranked (None always last)
SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda r: r["name"],
    "grade": lambda r: r["grade"],
    "score": lambda r: r["score"],
    "open_alarms": lambda r: r["open_alarms"],
    "alarms_month": lambda r: r["alarms_month"],
    "pre_alarms_month": lambda r: r["pre_alarms_month"],
    "hazards_open": lambda r: r["hazards_open"],
    "overdue": lambda r: r["overdue"],
    "online_rate": lambda r: r["online_rate"],
    "ack_median_s": lambda r: r["response"]["ack_median_s"],
    "ack_p90_s": lambda r: r["response"]["ack_p90_s"],
    "clear_median_s": lambda r: r["response"]["clear_median_s"],
    "false_share": lambda r: r["verdicts"]["false_share"],
    "last_inspection_ts": lambda r: r["last_inspection_ts"],
}
Handler = Callable[[Request], Awaitable[Response]]


def _err(status: int, code: str, message: str, message_zh: str = "", field: str = "") -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "message_zh": message_zh or message}
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status)


def field_of(exc: msgspec.ValidationError) -> str:
    """The body field a msgspec error is about (``$.due``, a missing or an unknown field)."""
    text = str(exc)
    at = re.search(r"at `\$\.([^`]+)`", text)
    if at:
        return at.group(1)
    named = re.search(r"(?:missing required|unknown) field `([^`]+)`", text)
    return named.group(1) if named else ""


def bad(field: str, message: str, message_zh: str) -> Refused:
    return Refused(400, "bad_field", f"{field}: {message}", f"{field}：{message_zh}", field)


class Query(msgspec.Struct, frozen=True):
    """The glance table's filters and order, from the query string (the page and the API alike)."""

    sort: str = "open_alarms"
    desc: bool = True
    grade: str = ""
    kind: str = ""
    org: str = ""
    min_open: int = 0
    overdue: bool = False


def parse_query(request: Request) -> Query:
    q = request.query_params
    sort = q.get("sort") or "open_alarms"
    if sort not in SORTS:
        raise bad("sort", f"one of {', '.join(SORTS)}", f"须为 {', '.join(SORTS)} 之一")
    desc = q.get("desc", "1" if sort != "name" else "0")
    if desc not in ("0", "1"):
        raise bad("desc", "0 or 1", "须为 0 或 1")
    grade = q.get("grade") or ""
    if grade and grade not in (*GRADES, "none"):
        raise bad("grade", "A, B, C, D or none", "须为 A、B、C、D 或 none")
    raw_min = q.get("min_open") or "0"
    try:
        min_open = int(raw_min)
    except ValueError:
        raise bad("min_open", f"a whole number, got {raw_min!r}", "须为整数") from None
    if not 0 <= min_open <= 100_000:
        raise bad("min_open", "0 … 100000", "须在 0 到 100000 之间")
    overdue = q.get("overdue") or "0"
    if overdue not in ("0", "1"):
        raise bad("overdue", "0 or 1", "须为 0 或 1")
    return Query(sort=sort, desc=desc == "1", grade=grade, kind=q.get("kind") or "", org=q.get("org") or "",
                 min_open=min_open, overdue=overdue == "1")


def apply_query(rows: list[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    out = [r for r in rows
           if (not query.grade or (r["grade"] or "none") == query.grade)
           and (not query.kind or r["kind"] == query.kind)
           and r["open_alarms"] >= query.min_open
           and (not query.overdue or (r["overdue"] or 0) > 0)]
    key = SORTS[query.sort]
    present = [r for r in out if key(r) is not None]
    missing = [r for r in out if key(r) is None]
    # grades sort A < D: "desc" puts the worst first, as for the other figures
    present.sort(key=lambda r: (key(r), r["name"]), reverse=query.desc)
    return present + sorted(missing, key=lambda r: r["name"])


def routes(state_of: Callable[[], Any]) -> list[Route]:
    def endpoint(write: bool = False) -> Callable[[Callable[..., Awaitable[Response]]], Handler]:
        def wrap(fn: Callable[..., Awaitable[Response]]) -> Handler:
            @wraps(fn)
            async def handler(request: Request) -> Response:
                who = caller(request)
                if who is None:
                    return _err(401, "unauthenticated", "log in or send 'Authorization: Bearer <token>'", "请先登录")
                state = state_of()
                if state is None:
                    return _err(503, "not_running", "the supervision service is not running", "监管服务未运行")
                if write and not who.csrf_ok(request.headers.get("x-csrf-token")):
                    return _err(403, "csrf", "missing or wrong X-CSRF-Token header", "缺少或错误的防伪令牌")
                try:
                    return await fn(request, who, state)
                except Refused as exc:
                    return _err(exc.status, exc.code, exc.message, exc.message_zh, exc.field)
                except msgspec.ValidationError as exc:
                    field = field_of(exc)
                    return _err(400, "bad_field", f"{field or 'body'}: {exc}", f"{field or '请求内容'}：{exc}", field)
                except msgspec.DecodeError as exc:
                    return _err(400, "bad_body", f"the body must be a JSON object: {exc}", "请求内容须为 JSON 对象")
                except Exception:  # logged with its traceback; the user gets a message, never the traceback
                    log.exception("supervision: %s %s failed", request.method, request.url.path)
                    return _err(500, "internal", "the request failed; the log has the details", "请求失败，详情见日志")
            return handler
        return wrap

    # -- scope ------------------------------------------------------------------------------

    def org_choices(who: Caller, state: Any) -> list[Any]:
        tree = state.orgs()
        if tree is None:
            return []
        keys = [o.key for o in tree] if who.all_units else list(tree.visible(who.orgs))
        return [tree.get(k) for k in keys]

    def scope(who: Caller, state: Any, org: str = "") -> list[str]:
        keys = [k for k in state.facts.units if who.sees(k)]
        if org:
            if org not in {o.key for o in org_choices(who, state)}:
                raise Refused(404, "org_not_found", f"org: no organisation {org!r} in your scope",
                              f"org：您的范围内没有组织 {org}", "org")
            under = state.orgs().units_under(org)
            keys = [k for k in keys if k in under]
        return keys

    def lang_of(request: Request, state: Any) -> str:
        chosen = request.query_params.get("lang") or request.cookies.get("firebus_lang")
        return chosen if chosen in LANGS else state.facts.language

    def months_param(request: Request, state: Any) -> list[str]:
        raw = request.query_params.get("months") or str(state.cfg.months)
        try:
            n = int(raw)
        except ValueError:
            raise bad("months", f"a whole number, got {raw!r}", "须为整数") from None
        if not 1 <= n <= 60:
            raise bad("months", "1 … 60", "须在 1 到 60 之间")
        return state.facts.months_back(state.core.clock.time(), n)

    async def rows_for(request: Request, who: Caller, state: Any) -> tuple[Query, list[dict[str, Any]], list[dict[str, Any]]]:
        query = parse_query(request)
        now = state.core.clock.time()
        everything = await state.aggregator.units(scope(who, state, query.org), now)
        return query, everything, apply_query(everything, query)

    # -- JSON -------------------------------------------------------------------------------

    @endpoint()
    async def api_units(request: Request, who: Caller, state: Any) -> Response:
        query, everything, rows = await rows_for(request, who, state)
        return JSONResponse({"items": rows, "total": len(rows), "in_scope": len(everything),
                             "now": state.core.clock.time(), "query": msgspec.to_builtins(query),
                             "window_days": state.cfg.window_days, "assessed": state.aggregator.assessed})

    @endpoint()
    async def api_unit(request: Request, who: Caller, state: Any) -> Response:
        key = request.path_params["key"]
        if key not in scope(who, state):
            raise Refused(404, "unit_not_found", f"no unit {key!r}", f"没有单位 {key}")
        now = state.core.clock.time()
        [row] = await state.aggregator.units([key], now)
        months = state.facts.months_back(now, state.cfg.months)
        ww = await state.aggregator.where_when([key], months)
        row["by_month"] = {m: {"alarms": ww["alarms"]["month"][m], "pre_alarms": ww["pre_alarms"]["month"][m],
                               "hazards": ww["hazards"]["month"][m]} for m in months}
        row["urges"] = await state.urges.list({key})
        if state.orgs() is not None:
            row["orgs"] = [o for o in state.orgs().orgs_of_unit(key)
                           if o in {c.key for c in org_choices(who, state)}]
        return JSONResponse(row)

    @endpoint()
    async def api_map(request: Request, who: Caller, state: Any) -> Response:
        _, everything, rows = await rows_for(request, who, state)
        slim = [{"key": r["key"], "name": r["name"], "kind": r["kind"], "grade": r["grade"], "score": r["score"],
                 "open_alarms": r["open_alarms"], "geo": r["geo"]} for r in rows]
        return JSONResponse({"placed": [r for r in slim if r["geo"]], "unplaced": [r for r in slim if not r["geo"]]})

    @endpoint()
    async def api_where(request: Request, who: Caller, state: Any) -> Response:
        keys = scope(who, state, request.query_params.get("org") or "")
        unit = request.query_params.get("unit") or ""
        if unit:
            if unit not in keys:
                raise Refused(404, "unit_not_found", f"unit: no unit {unit!r} in your scope",
                              f"unit：您的范围内没有单位 {unit}", "unit")
            keys = [unit]
        data = await state.aggregator.where_when(keys, months_param(request, state))
        data["units"] = keys
        data["weekdays"] = "0 = Monday … 6 = Sunday; hours 0–23, site time zone " + str(state.facts.tz)
        return JSONResponse(data)

    @endpoint()
    async def api_orgs(request: Request, who: Caller, state: Any) -> Response:
        return JSONResponse({"items": [{"key": o.key, "name": o.name, "name_en": o.name_en, "kind": str(o.kind),
                                        "parent": o.parent, "units": sorted(set(o.units) & set(scope(who, state)))}
                                       for o in org_choices(who, state)]})

    @endpoint()
    async def api_urges(request: Request, who: Caller, state: Any) -> Response:
        status = request.query_params.get("status") or None
        if status not in (None, "open", "answered"):
            raise bad("status", "open or answered", "须为 open 或 answered")
        unit = request.query_params.get("unit") or None
        keys = set(scope(who, state, request.query_params.get("org") or ""))
        if unit is not None and unit not in keys:
            raise Refused(404, "unit_not_found", f"unit: no unit {unit!r} in your scope",
                          f"unit：您的范围内没有单位 {unit}", "unit")
        items = await state.urges.list(keys, status=status, unit=unit)
        return JSONResponse({"items": items, "total": len(items)})

    @endpoint()
    async def api_urge(request: Request, who: Caller, state: Any) -> Response:
        urge = await state.urges.get(request.path_params["id"])
        if urge is None or not who.sees(urge["unit"]):
            raise Refused(404, "urge_not_found", f"no urge {request.path_params['id']!r}", "没有该督办")
        return JSONResponse(urge)

    async def body_of(request: Request, cls: type) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise Refused(400, "bad_body", "the body must be a JSON object", "请求内容须为 JSON 对象")
        return msgspec.json.decode(raw, type=cls)

    @endpoint(write=True)
    async def post_urge(request: Request, who: Caller, state: Any) -> Response:
        if not who.can_urge:
            raise Refused(403, "forbidden", f"role {who.role} may not urge units (supervisor, fire_inspector, admin)",
                          f"角色 {who.role} 不能发起督办")
        body = await body_of(request, UrgeIn)
        units = None if who.all_units else set(who.units)
        return JSONResponse(await state.urges.create(body, who.name, who.role, units), 201)

    @endpoint(write=True)
    async def post_answer(request: Request, who: Caller, state: Any) -> Response:
        uid = request.path_params["id"]
        urge = await state.urges.get(uid)
        if urge is None or not who.sees(urge["unit"]):
            raise Refused(404, "urge_not_found", f"no urge {uid!r}", f"没有督办 {uid}")
        if who.role not in ANSWER_ROLES:
            raise Refused(403, "forbidden", f"role {who.role} may not answer for the unit (unit_manager, "
                          "duty_officer, admin)", f"角色 {who.role} 不能代表单位回复")
        body = await body_of(request, AnswerIn)
        units = None if who.all_units else set(who.units)
        return JSONResponse(await state.urges.answer(uid, body, who.name, units))

    # -- pages ------------------------------------------------------------------------------

    def fmt_s(lang: str, s: float | None) -> str:
        if s is None:
            return "—"
        s = round(s)
        if s < 60:
            return f"{s} 秒" if lang == "zh" else f"{s} s"
        if s < 3600:
            m, r = divmod(s, 60)
            return (f"{m} 分 {r} 秒" if lang == "zh" else f"{m} min {r} s") if r else (f"{m} 分" if lang == "zh" else f"{m} min")
        h, r = divmod(s, 3600)
        return f"{h} 小时 {r // 60} 分" if lang == "zh" else f"{h} h {r // 60} min"

    def fmt_ts(state: Any, ts: float | None) -> str:
        return dt.datetime.fromtimestamp(ts, state.facts.tz).strftime("%Y-%m-%d %H:%M") if ts else "—"

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%".replace(".0%", "%")

    def page(request: Request, who: Caller, state: Any, lang: str, title_key: str, body: str) -> Response:
        e = html.escape
        other = "en" if lang == "zh" else "zh"
        qs = dict(request.query_params)
        qs["lang"] = other
        from urllib.parse import urlencode

        tabs = "".join(
            f'<a href="{BASE}{path}" class="{"on" if key == title_key else ""}">{e(t(lang, key))}</a>'
            for path, key in (("/", "title_glance"), ("/where", "title_where"), ("/urges", "title_urges")))
        cfg = json.dumps({"csrf": who.csrf, "lang": lang, "base": BASE}).replace("</", "<\\/")
        out = f"""<!doctype html><html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(t(lang, title_key))} · firebus</title>
<link rel="stylesheet" href="{BASE}/static/supervision.css"></head><body>
<header><a class="home" href="/">firebus</a><h1>{e(t(lang, 'nav'))} · {e(t(lang, title_key))}</h1>
<span class="who">{e(who.name)}</span><a class="lang" href="?{e(urlencode(qs))}">{e(t(lang, 'language'))}</a></header>
<nav class="tabs">{tabs}</nav><main>{body}</main>
<script id="cfg" type="application/json">{cfg}</script><script src="{BASE}/static/supervision.js"></script></body></html>"""
        response = Response(out, media_type="text/html")
        if request.query_params.get("lang") in LANGS:
            response.set_cookie("firebus_lang", lang, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    def grade_badge(grade: str | None, lang: str) -> str:
        colour = GRADE_COLOURS.get(grade or "", NO_GRADE)
        label = grade or t(lang, "not_assessed")
        return f'<span class="grade g-{grade or "none"}" data-colour="{colour}">{html.escape(label)}</span>'

    @endpoint()
    async def glance_page(request: Request, who: Caller, state: Any) -> Response:
        lang = lang_of(request, state)
        e = html.escape
        query, everything, rows = await rows_for(request, who, state)
        orgs = org_choices(who, state)
        kinds = sorted({r["kind"] for r in everything if r["kind"]})

        def opt(value: str, label: str, chosen: str) -> str:
            return f'<option value="{e(value)}"{" selected" if value == chosen else ""}>{e(label)}</option>'

        form = ['<form class="filters" method="get">', f'<input type="hidden" name="lang" value="{lang}">']
        if orgs:
            form.append(f'<label>{e(t(lang, "org"))} <select name="org">{opt("", t(lang, "all"), query.org)}'
                        + "".join(opt(o.key, o.label(lang), query.org) for o in orgs) + "</select></label>")
        form.append(f'<label>{e(t(lang, "grade"))} <select name="grade">{opt("", t(lang, "all"), query.grade)}'
                    + "".join(opt(g, g, query.grade) for g in GRADES)
                    + opt("none", t(lang, "not_assessed"), query.grade) + "</select></label>")
        form.append(f'<label>{e(t(lang, "kind"))} <select name="kind">{opt("", t(lang, "all"), query.kind)}'
                    + "".join(opt(k, kind_label(lang, "ukind", k), query.kind) for k in kinds) + "</select></label>")
        form.append(f'<label>{e(t(lang, "min_open"))} <input type="number" min="0" name="min_open" '
                    f'value="{query.min_open}"></label>')
        form.append(f'<label><input type="checkbox" name="overdue" value="1"{" checked" if query.overdue else ""}> '
                    f'{e(t(lang, "only_overdue"))}</label>')
        form.append(f'<input type="hidden" name="sort" value="{query.sort}"><input type="hidden" name="desc" '
                    f'value="{int(query.desc)}"><button>{e(t(lang, "apply"))}</button></form>')

        def head(key: str, label_key: str) -> str:
            params = dict(request.query_params)
            params.update(sort=key, desc="0" if (query.sort == key and query.desc) else "1")
            from urllib.parse import urlencode

            arrow = (" ▼" if query.desc else " ▲") if query.sort == key else ""
            return f'<th><a href="?{e(urlencode(params))}">{e(t(lang, label_key))}{arrow}</a></th>'

        cols = [("name", "unit"), ("grade", "grade"), ("open_alarms", "open_alarms"), ("alarms_month", "alarms_month"),
                ("pre_alarms_month", "pre_alarms_month"), ("hazards_open", "hazards_open"), ("overdue", "overdue"),
                ("online_rate", "online_rate"), ("ack_median_s", "ack_median"), ("ack_p90_s", "ack_p90"),
                ("clear_median_s", "clear_median"), ("false_share", "false_share"),
                ("last_inspection_ts", "last_inspection")]
        body_rows = []
        for r in rows:
            resp = r["response"]
            na = t(lang, "not_assessed")
            score = "" if r["score"] is None else f'<small>{r["score"]:.1f}</small>'
            cells = [
                f'<td class="name"><a href="{BASE}/where?unit={e(r["key"])}&amp;lang={lang}">{e(r["name"])}</a>'
                f'<small>{e(kind_label(lang, "ukind", r["kind"]))}</small></td>',
                f'<td>{grade_badge(r["grade"], lang)}{score}</td>',
                f'<td class="n{" hot" if r["open_alarms"] else ""}">{r["open_alarms"]}</td>',
                f'<td class="n">{r["alarms_month"]}</td>', f'<td class="n">{r["pre_alarms_month"]}</td>',
                f'<td class="n">{na if r["hazards_open"] is None else r["hazards_open"]}</td>',
                f'<td class="n{" hot" if r["overdue"] else ""}">{na if r["overdue"] is None else r["overdue"]}</td>',
                f'<td class="n">{pct(r["online_rate"])}<small>{r["online"]}/{r["devices"]}</small></td>',
                f'<td class="n">{e(fmt_s(lang, resp["ack_median_s"]))}</td>',
                f'<td class="n">{e(fmt_s(lang, resp["ack_p90_s"]))}</td>',
                f'<td class="n">{e(fmt_s(lang, resp["clear_median_s"]))}</td>',
                f'<td class="n">{pct(r["verdicts"]["false_share"])}</td>',
                f'<td>{e(fmt_ts(state, r["last_inspection_ts"]) if r["last_inspection_ts"] else t(lang, "never"))}</td>',
            ]
            labelled = [c.replace("<td", f'<td data-label="{e(t(lang, label))}"', 1) for c, (_, label) in zip(cells, cols)]
            body_rows.append(f'<tr data-unit="{e(r["key"])}">{"".join(labelled)}</tr>')
        table = (f'<div class="scroll"><table class="glance"><thead><tr>{"".join(head(k, l) for k, l in cols)}</tr></thead>'
                 f'<tbody>{"".join(body_rows)}</tbody></table></div>' if rows
                 else f'<p class="empty">{e(t(lang, "no_units"))}</p>')
        unplaced = [r for r in rows if not r["geo"]]
        mapped = unit_map(rows, t(lang, "map"), BASE + "/where?unit={key}&lang=" + lang)
        legend = "".join(f'<span class="grade g-{g}">{g}</span>' for g in GRADES) + \
            f'<span class="grade g-none">{e(t(lang, "not_assessed"))}</span>'
        missing = ("<p><b>" + e(t(lang, "no_geo")) + "</b>: " + ("、" if lang == "zh" else ", ").join(e(r["name"]) for r in unplaced) + "</p>"
                   if unplaced else "")
        body = (f'<p class="explain">{e(t(lang, "explain_glance", days=int(state.cfg.window_days)))}</p>'
                + "".join(form) + table
                + f'<section class="map"><h2>{e(t(lang, "map"))}</h2><div class="legend">{legend}</div>{mapped}{missing}</section>')
        return page(request, who, state, lang, "title_glance", body)

    @endpoint()
    async def where_page(request: Request, who: Caller, state: Any) -> Response:
        lang = lang_of(request, state)
        e = html.escape
        org = request.query_params.get("org") or ""
        keys = scope(who, state, org)
        unit = request.query_params.get("unit") or ""
        if unit:
            if unit not in keys:
                raise Refused(404, "unit_not_found", f"unit: no unit {unit!r} in your scope",
                              f"unit：您的范围内没有单位 {unit}", "unit")
            keys = [unit]
        months = months_param(request, state)
        data = await state.aggregator.where_when(keys, months)
        days = [t(lang, f"weekday_{d}") for d in range(7)]
        h = t(lang, "hour")

        def ranked(counts: dict[str, int], prefix: str) -> list[tuple[str, int]]:
            return [(kind_label(lang, prefix, k), n) for k, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n]

        orgs = org_choices(who, state)
        picker = ""
        if orgs:
            options = f'<option value="">{e(t(lang, "all"))}</option>' + "".join(
                f'<option value="{e(o.key)}"{" selected" if o.key == org else ""}>{e(o.label(lang))}</option>' for o in orgs)
            picker = (f'<form class="filters" method="get"><input type="hidden" name="lang" value="{lang}">'
                      + (f'<input type="hidden" name="unit" value="{e(unit)}">' if unit else "")
                      + f'<label>{e(t(lang, "org"))} <select name="org">{options}</select></label>'
                      f'<label>{e(t(lang, "months"))} <input type="number" name="months" min="1" max="60" '
                      f'value="{len(months)}"></label><button>{e(t(lang, "apply"))}</button></form>')
        a, p, hz = data["alarms"], data["pre_alarms"], data["hazards"]
        places = {}
        for src in (a, p, hz):
            for k, n in src["place_kind"].items():
                places[k] = places.get(k, 0) + n
        which = (f'<h2 class="unit">{e(t(lang, "unit"))}: {e(state.facts.units[unit].name)} '
                 f'<a href="?lang={lang}">{e(t(lang, "all"))}</a></h2>' if unit else "")
        body = "".join([
            which,
            f'<p class="explain">{e(t(lang, "explain_where", n=len(months), first=months[0], last=months[-1]))}</p>',
            picker,
            '<div class="grid">',
            f'<section><h2>{e(t(lang, "heat_alarms"))}</h2>{heatmap(a["heat"], days, t(lang, "heat_alarms"), h)}</section>',
            f'<section><h2>{e(t(lang, "heat_pre"))}</h2>{heatmap(p["heat"], days, t(lang, "heat_pre"), h)}</section>',
            f'<section><h2>{e(t(lang, "heat_hazards"))}</h2>{heatmap(hz["heat"], days, t(lang, "heat_hazards"), h)}</section>',
            f'<section><h2>{e(t(lang, "trend"))}</h2>'
            + trend(months, [(t(lang, "alarms"), "#c62828", list(a["month"].values())),
                             (t(lang, "pre_alarms"), "#f9a825", list(p["month"].values())),
                             (t(lang, "hazards"), "#1e88e5", list(hz["month"].values()))], t(lang, "trend"))
            + "</section>",
            f'<section><h2>{e(t(lang, "by_place"))} · {e(t(lang, "alarms"))}+{e(t(lang, "pre_alarms"))}+{e(t(lang, "hazards"))}</h2>'
            f'{bars(ranked(places, "pkind"), t(lang, "by_place"))}</section>',
            f'<section><h2>{e(t(lang, "by_unit_kind"))} · {e(t(lang, "alarms"))}</h2>'
            f'{bars(ranked(a["unit_kind"], "ukind"), t(lang, "by_unit_kind"))}</section>',
            "</div>",
        ])
        return page(request, who, state, lang, "title_where", body)

    @endpoint()
    async def urges_page(request: Request, who: Caller, state: Any) -> Response:
        lang = lang_of(request, state)
        e = html.escape
        keys = scope(who, state)
        items = await state.urges.list(set(keys))
        names = {k: u.name for k, u in state.facts.units.items()}
        parts = []
        if who.can_urge and keys:
            options = "".join(f'<option value="{e(k)}">{e(names[k])}</option>' for k in keys)
            parts.append(
                f'<form id="urge-form" class="card"><h2>{e(t(lang, "urge_new"))}</h2>'
                f'<label>{e(t(lang, "unit"))} <select name="unit">{options}</select></label>'
                f'<label>{e(t(lang, "urge_text"))} <textarea name="text" rows="3" required></textarea></label>'
                f'<label>{e(t(lang, "urge_due"))} <input type="datetime-local" name="due"></label>'
                f'<button>{e(t(lang, "urge_send"))}</button><output data-ok="{e(t(lang, "sent"))}" '
                f'data-fail="{e(t(lang, "failed"))}"></output></form>')
        if not items:
            parts.append(f'<p class="empty">{e(t(lang, "no_urges"))}</p>')
        for u in items:
            status = "status_answered" if u["status"] == "answered" else ("status_overdue" if u["overdue"] else "status_open")
            answer = ""
            if u["status"] == "answered":
                answer = (f'<blockquote>{e(u["answer"] or "")}<cite>{e(u["answered_by"] or "")} · '
                          f'{e(fmt_ts(state, u["answered_ts"]))}</cite></blockquote>')
            elif who.role in ANSWER_ROLES:
                answer = (f'<form class="answer" data-id="{e(u["id"])}"><textarea name="text" rows="2" required '
                          f'aria-label="{e(t(lang, "answer"))}"></textarea><button>{e(t(lang, "answer_send"))}</button>'
                          f'<output data-fail="{e(t(lang, "failed"))}"></output></form>')
            due = f' · {e(t(lang, "urge_due"))} {e(fmt_ts(state, u["due"]))}' if u["due"] else ""
            parts.append(
                f'<article class="card urge s-{status}" data-id="{e(u["id"])}"><header><b>{e(names.get(u["unit"], u["unit"]))}</b>'
                f'<span class="status">{e(t(lang, status))}</span></header><p>{e(u["text"])}</p>'
                f'<small>{e(t(lang, "by"))} {e(u["by"])} · {e(fmt_ts(state, u["ts"]))}{due}</small>{answer}</article>')
        return page(request, who, state, lang, "title_urges", "".join(parts))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return _err(404, "not_found", f"no file {name}", f"没有文件 {name}")
        data = resources.files("firebus.plugins.supervision").joinpath(name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={"cache-control": "no-cache"})

    table = [
        nav_link(Route("/", glance_page), "监管", "Supervision"),
        Route("/where", where_page),
        Route("/urges", urges_page),
        Route("/static/{name}", static),
        Route("/api/units", api_units),
        Route("/api/units/{key}", api_unit),
        Route("/api/map", api_map),
        Route("/api/where", api_where),
        Route("/api/orgs", api_orgs),
        Route("/api/urges", api_urges, methods=["GET"]),
        Route("/api/urges", post_urge, methods=["POST"]),
        Route("/api/urges/{id}", api_urge, methods=["GET"]),
        Route("/api/urges/{id}/answer", post_answer, methods=["POST"]),
    ]
    return [signed_in(r) for r in table]
