"""The centre's supervision panel: the same HTTP server as the API (``--http HOST:PORT``).

    GET  /                                   → /panel/
    GET  /panel/sign-in?m=&next=             the sign-in form (a centre user's token)
    POST /panel/sign-in                      token=… → HttpOnly, SameSite=Strict cookie, 303 to ``next``
    POST /panel/sign-out                     the cookie removed, 303 to the sign-in page
    GET  /panel/                             overview: the sites in scope by organisation, open alarms by category
    GET  /panel/alarms?site=&org=&category=  open alarms across the sites in scope, fire first, then newest first
    GET  /panel/sites/{site_id}              one site: open alarms, command buttons, commands, latest state
    POST /panel/sites/{site_id}/alarms/{alarm_id}/commands   kind=acknowledge|silence|clear, note=, csrf=
    GET  /panel/static/{name}                the stylesheets and the script

Every page takes ``?part=1`` for its live part alone: the script fetches it every
``POLL_S`` seconds (every second while a command waits for its site) and swaps it in.
The cookie holds the token (``firebus federation user add``); it is checked at every
request as the API checks ``Authorization: Bearer``, so the scope (access.py) is the
API's, and a site outside it is 404 here too.  Commands go through the command desk
(desk.py), as the API's do.  Every word is in ``TEXT`` (zh and en); the shared words
come from the supervision plugin's vocabulary and ``firebus.sdk.orgs``; the alarm
category, status and role labels are those of the site panel (a test keeps them equal).
No traceback reaches the page: the error is logged and the page says what happened.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from firebus.plugins.supervision.i18n import TEXT as SUPERVISION_TEXT
from firebus.sdk.orgs import ORG_KIND_NAMES
from firebus.sdk.vocab import vocabulary_labels

from .access import CentreUser, scoped_where, token_hash
from .desk import CommandDesk, DeskError

BASE = "/panel"
COOKIE = "firebus_centre"
LANG_COOKIE = "firebus_lang"
LANGS = ("zh", "en")
COOKIE_MAX_AGE = 12 * 3600  # a shift; the token itself stays valid until ``user add`` replaces it
POLL_S = 3.0
STALE_S = 300.0  # no entry from a site for this long: "silent"
MAX_FORM = 16 * 1024
MAX_ROWS = 500
MAX_POINTS = 500
COMMANDS_SHOWN = 20
#: category order of the badges (fire first, as the site panel's console sections)
CATEGORIES = ("fire", "gas", "electrical_alarm", "electrical_pre_alarm", "supervisory", "fault", "offline")
KINDS = ("acknowledge", "silence", "clear")
PENDING = ("unsent", "sent")
OPEN = "coalesce(status, '') <> 'cleared_ack'"

#: category, status and role names: the SDK's (firebus.sdk.vocab), as the site panel shows them
SITE_LABELS: dict[str, tuple[str, str]] = vocabulary_labels()
#: words shared with the supervision pages (plugins/supervision/i18n.py)
SHARED = ("open_alarms", "org", "filter", "all", "apply", "language", "total", "status", "none")

TEXT: dict[str, tuple[str, str]] = {
    **{k: SUPERVISION_TEXT[k] for k in SHARED},
    **SITE_LABELS,
    **{f"okind_{k.value}": v for k, v in ORG_KIND_NAMES.items()},
    "brand": ("firebus 联网监管中心", "firebus centre"),
    "overview": ("总览", "Overview"),
    "alarms": ("报警", "Alarms"),
    "site": ("站点", "Site"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("访问令牌", "Access token"),
    "token_help": ("请输入管理员用 firebus federation user add 为您生成的令牌。",
                   "Enter the token an administrator made for you with firebus federation user add."),
    "m_needed": ("请先登录。", "Please sign in."),
    "m_expired": ("登录已失效（令牌已被更换或停用），请重新登录。",
                  "Your sign-in is no longer valid (the token was replaced or withdrawn); sign in again."),
    "m_unknown": ("令牌无效，请核对后重试。", "Unknown token; check it and try again."),
    "m_signed_out": ("您已退出。", "You have signed out."),
    "sites_n": ("站点", "Sites"),
    "fire_sites": ("有火警的站点", "Sites with fire"),
    "silent_sites": ("无数据的站点", "Silent sites"),
    "last_seen": ("最后收到", "Last entry"),
    "link_ok": ("通信正常", "Reporting"),
    "link_silent": ("已 {age}无数据", "Silent for {age}"),
    "never_reported": ("尚未上报", "Not reported yet"),
    "no_alarm": ("无未处理报警", "No open alarms"),
    "no_open": ("没有未处理的报警。", "No open alarms."),
    "no_sites": ("您的范围内没有站点。", "No sites in your scope."),
    "other_sites": ("不属于您所辖组织的站点", "Sites outside your organisations"),
    "time": ("时间", "Time"),
    "raised": ("报警时间", "Raised"),
    "category": ("类别", "Category"),
    "message": ("说明", "Message"),
    "where": ("设备 / 测点", "Device / point"),
    "actions": ("操作", "Actions"),
    "kind_acknowledge": ("确认", "Acknowledge"),
    "kind_silence": ("消音", "Silence"),
    "kind_clear": ("复位", "Reset"),
    "note": ("备注（可选）", "Note (optional)"),
    "commands": ("远程命令", "Commands"),
    "no_commands": ("暂无命令。", "No commands yet."),
    "command": ("命令", "Command"),
    "alarm": ("报警", "Alarm"),
    "issued_by": ("发出人", "By"),
    "issued_at": ("发出时间", "Issued"),
    "result": ("结果", "Result"),
    "state_unsent": ("待发出（等待 NATS）", "Waiting to be sent (NATS)"),
    "state_sent": ("已发出，等待站点回复", "Sent, waiting for the site"),
    "state_applied": ("站点已执行", "Applied by the site"),
    "state_refused": ("站点已拒绝", "Refused by the site"),
    "read_only": ("您的角色只能查看，不能发送命令。", "Your role can look but not send commands."),
    "cmd_submitted": ("已提交{kind}命令，等待站点回复。", "{kind} submitted; waiting for the site."),
    "points": ("测点最新值", "Latest state (points)"),
    "no_points": ("该站点尚无测点数据。", "No point values from this site yet."),
    "point": ("测点", "Point"),
    "device": ("设备", "Device"),
    "point_class": ("类型", "Class"),
    "value": ("数值", "Value"),
    "fault": ("故障", "Fault"),
    "reading_time": ("读数时间", "Reading time"),
    "showing": ("显示 {n} 条，共 {total} 条", "Showing {n} of {total}"),
    "organisations_of": ("所属组织", "Organisations"),
    "not_found": ("没有此站点，或不在您的范围内。", "No such site, or not in your scope."),
    "page_not_found": ("没有此页面。", "No such page."),
    "unavailable": ("中心暂时无法响应（数据库或 NATS），请稍后再试。",
                    "The centre cannot answer now (database or NATS); try again shortly."),
    "stale_page": ("页面已过期，请刷新后重试。", "This page is out of date; reload it and try again."),
    "nats_down": ("中心与 NATS 断开：站点新数据和命令暂停，恢复后自动继续。",
                  "The centre has lost NATS: new data and commands wait until it is back."),
    "refresh_failed": ("刷新失败，正在重试…", "Refresh failed, retrying…"),
    "sending": ("正在提交…", "Submitting…"),
    "back": ("返回总览", "Back to the overview"),
    "ago": ("{age}前", "{age} ago"),
    "u_s": ("{n} 秒", "{n} s"),
    "u_min": ("{n} 分钟", "{n} min"),
    "u_h": ("{n} 小时", "{n} h"),
    "u_d": ("{n} 天", "{n} d"),
    "unknown_category": ("其他", "Other"),
}

STATIC_DIR = Path(__file__).with_name("panel")
STATIC: dict[str, tuple[Callable[[], bytes], str]] = {
    "supervision.css": (lambda: resources.files("firebus.plugins.supervision").joinpath("supervision.css")
                        .read_bytes(), "text/css; charset=utf-8"),
    "centre.css": (lambda: (STATIC_DIR / "centre.css").read_bytes(), "text/css; charset=utf-8"),
    "centre.js": (lambda: (STATIC_DIR / "centre.js").read_bytes(), "text/javascript; charset=utf-8"),
}

e = html.escape


def t(lang: str, key: str, **kw: Any) -> str:
    zh, en = TEXT.get(key, (key, key))
    text = en if lang == "en" else zh
    return text.format(**kw) if kw else text


def cat_label(lang: str, category: str | None) -> str:
    key = f"cat_{category}"
    return t(lang, key) if key in TEXT else (category or t(lang, "unknown_category"))


def status_label(lang: str, status: str | None) -> str:
    key = f"st_{status}"
    return t(lang, key) if key in TEXT else (status or "—")


def csrf_of(token: str) -> str:
    """The anti-forgery value of a signed-in browser: derived from its token, kept nowhere."""
    return hmac.new(token_hash(token), b"firebus-centre-panel-csrf", hashlib.sha256).hexdigest()[:32]


def fmt_ts(ts: float | None) -> str:
    """The centre's local time (the centre machine's time zone)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "—"


def fmt_age(lang: str, seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return t(lang, "u_s", n=s)
    if s < 7200:
        return t(lang, "u_min", n=s // 60)
    if s < 2 * 86400:
        return t(lang, "u_h", n=s // 3600)
    return t(lang, "u_d", n=s // 86400)


def lang_of(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGS else "zh"


def safe_next(target: str | None) -> str:
    """Only the panel's own paths (no open redirect through ``next``)."""
    if not target or not target.startswith(BASE + "/") or target.startswith("//") or "\\" in target:
        return BASE + "/"
    return target


def same_origin(request: Request) -> bool:
    """A browser's POST carries Origin; one from another site is refused (SameSite=Strict too)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == request.headers.get("host", "")


async def form_of(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_FORM:
        raise DeskError(413, "too_large", f"body over {MAX_FORM} bytes", f"请求体超过 {MAX_FORM} 字节")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise DeskError(415, "unsupported_media_type", "send the form as application/x-www-form-urlencoded",
                        "表单须为 application/x-www-form-urlencoded")
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items()}


class Page:
    """What one request renders with: the user, the language, the request."""

    def __init__(self, request: Request, user: CentreUser | None, lang: str, token: str = "") -> None:
        self.request, self.user, self.lang, self.token = request, user, lang, token

    def t(self, key: str, **kw: Any) -> str:
        return t(self.lang, key, **kw)

    def other_lang_href(self) -> str:
        qs = {k: v for k, v in self.request.query_params.items() if k != "part"}
        qs["lang"] = "en" if self.lang == "zh" else "zh"
        return f"{self.request.url.path}?{urlencode(qs)}"


def document(p: Page, title: str, body: str, *, tab: str = "", status: int = 200, live: str = "") -> Response:
    """A whole page: the supervision pages' header and tabs, the live part, the script."""
    user = p.user
    tabs = ""
    who = ""
    if user is not None:
        tabs = '<nav class="tabs">' + "".join(
            f'<a href="{BASE}{path}" class="{"on" if key == tab else ""}">{e(p.t(key))}</a>'
            for path, key in (("/", "overview"), ("/alarms", "alarms"))) + "</nav>"
        who = (f'<span class="who" id="who">{e(user.name)} · {e(p.t("role_" + str(user.role)))}</span>'
               f'<form method="post" action="{BASE}/sign-out" class="inline">'
               f'<input type="hidden" name="csrf" value="{e(csrf_of(p.token))}">'
               f'<button class="small" id="sign-out">{e(p.t("sign_out"))}</button></form>')
    cfg = json.dumps({"lang": p.lang, "poll_ms": int(POLL_S * 1000), "signin": f"{BASE}/sign-in",
                      "csrf": csrf_of(p.token) if p.token else "",
                      "t": {k: p.t(k) for k in ("refresh_failed", "sending")}}, ensure_ascii=False).replace("</", "<\\/")
    live_div = f'<div id="live" data-live="1">{live}</div>' if live else ""
    out = f"""<!doctype html><html lang="{'zh-CN' if p.lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{e(title)} · {e(p.t('brand'))}</title>
<link rel="stylesheet" href="{BASE}/static/supervision.css"><link rel="stylesheet" href="{BASE}/static/centre.css">
</head><body>
<header><a class="home" href="{BASE}/">{e(p.t('brand'))}</a><h1>{e(title)}</h1>{who}
<a class="lang" id="lang" href="{e(p.other_lang_href())}">{e(p.t('language'))}</a></header>
{tabs}<main><p id="refresh" class="warn" role="status" hidden></p>{body}{live_div}</main>
<script id="cfg" type="application/json">{cfg}</script>
<script src="{BASE}/static/centre.js" defer></script></body></html>"""
    response = Response(out, status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Referrer-Policy": "same-origin"})
    if p.request.query_params.get("lang") in LANGS:
        response.set_cookie(LANG_COOKIE, p.lang, max_age=365 * 86400, samesite="lax", httponly=True,
                            secure=p.request.url.scheme == "https")
    return response


def error_page(p: Page, status: int, message: str) -> Response:
    if p.request.query_params.get("part") == "1":
        return Response(f'<p class="err" role="alert">{e(message)}</p>', status,
                        media_type="text/html; charset=utf-8")
    back = f'<p><a href="{BASE}/">{e(p.t("back"))}</a></p>' if p.user is not None else ""
    return document(p, p.t("brand"), f'<section class="error"><p class="err" role="alert" id="error">'
                                     f'{e(message)}</p>{back}</section>', status=status)


def desk_message(p: Page, exc: DeskError) -> str:
    if exc.code == "site_not_found":
        return p.t("not_found")
    return exc.en if p.lang == "en" else exc.zh


# -- reads the pages need beyond the API's (scoped exactly as desk.py scopes) ---------------------


async def site_stats(desk: CommandDesk, sites: list[str]) -> dict[str, dict[str, Any]]:
    """Per site: open alarms by category (count, unacknowledged) and its newest entry's time."""
    out: dict[str, dict[str, Any]] = {s: {"open": {}, "last": None} for s in sites}
    if not sites:
        return out
    for site, cat, n, unack in await desk.query(
            "SELECT site_id, coalesce(category, ''), count(*), count(*) FILTER (WHERE status LIKE '%%_unack') "
            f"FROM alarms_current WHERE site_id = ANY(%s) AND {OPEN} GROUP BY 1, 2", (sites,)):
        out[site]["open"][cat] = (int(n), int(unack))
    for site, last in await desk.query(
            "SELECT s, greatest("
            "(SELECT extract(epoch FROM j.ts)::float8 FROM journal j WHERE j.site_id = s ORDER BY j.seq DESC LIMIT 1), "
            "(SELECT extract(epoch FROM t.ts)::float8 FROM telemetry t WHERE t.site_id = s ORDER BY t.seq DESC LIMIT 1))"
            " FROM unnest(%s::text[]) AS s", (sites,)):
        out[site]["last"] = last
    return out


ALARM_COLUMNS = ("site_id", "alarm_id", "category", "status", "transition", "message", "message_zh", "device_id",
                 "point_id", "ts", "raised")


async def open_alarms(desk: CommandDesk, user: CentreUser, *, sites: list[str] | None = None,
                      category: str | None = None, limit: int = MAX_ROWS) -> tuple[list[dict[str, Any]], int]:
    """Open alarms (not closed) of the sites ``user`` sees: fire first, then newest raised first."""
    cond, args = scoped_where(user, "c.site_id", {"c.category": category})
    where = [cond, OPEN]
    if sites is not None:
        where.append("c.site_id = ANY(%s)")
        args.append(sites)
    sql_where = " AND ".join(where)
    total = (await desk.query(f"SELECT count(*) FROM alarms_current c WHERE {sql_where}", tuple(args)))[0][0]
    rows = await desk.query(
        "SELECT * FROM (SELECT c.site_id, c.alarm_id, c.category, c.status, c.transition, c.message, c.message_zh, "
        "c.device_id, c.point_id, extract(epoch FROM c.ts)::float8, "
        "(SELECT extract(epoch FROM min(a.ts))::float8 FROM alarms a WHERE a.site_id = c.site_id "
        " AND a.alarm_id = c.alarm_id) AS raised "
        f"FROM alarms_current c WHERE {sql_where}) x "
        "ORDER BY (x.category IS DISTINCT FROM 'fire'), x.raised DESC, x.site_id, x.alarm_id LIMIT %s",
        (*args, limit))
    return [dict(zip(ALARM_COLUMNS, r)) for r in rows], int(total)


# -- pieces ----------------------------------------------------------------------------------------


def category_chips(p: Page, open_: dict[str, tuple[int, int]]) -> str:
    if not open_:
        return f'<span class="ok">{e(p.t("no_alarm"))}</span>'
    order = [c for c in CATEGORIES if c in open_] + sorted(c for c in open_ if c not in CATEGORIES)
    return "".join(f'<span class="cat cat-{e(c)}{" unack" if open_[c][1] else ""}" data-category="{e(c)}">'
                   f'{e(cat_label(p.lang, c))} <b>{open_[c][0]}</b></span>' for c in order)


def link_state(p: Page, last: float | None, now: float) -> str:
    if last is None:
        return f'<span class="link never">{e(p.t("never_reported"))}</span>'
    age = now - last
    seen = f'<span class="muted">{e(p.t("last_seen"))} {e(fmt_ts(last))}</span>'
    if age > STALE_S:
        return (f'<span class="link silent" data-link="silent">{e(p.t("link_silent", age=fmt_age(p.lang, age)))}'
                f'</span> {seen}')
    return f'<span class="link up" data-link="up">{e(p.t("link_ok"))}</span> {seen}'


def site_href(site: str, **query: str) -> str:
    return f"{BASE}/sites/{quote(site, safe='')}" + (f"?{urlencode(query)}" if query else "")


def alarm_rows(p: Page, items: list[dict[str, Any]], *, with_site: bool, can_command: bool, token: str) -> str:
    rows = []
    for a in items:
        cat = a["category"] or ""
        msg = (a["message_zh"] or a["message"]) if p.lang == "zh" else (a["message"] or a["message_zh"])
        where = " / ".join(x for x in (a["device_id"], a["point_id"]) if x) or "—"
        site_cell = (f'<td class="site"><a href="{site_href(a["site_id"])}#alarm-{e(a["alarm_id"])}">'
                     f'{e(a["site_id"])}</a></td>' if with_site else "")
        actions = ""
        if can_command:
            status = a["status"] or ""
            kinds = [k for k, ok in (("acknowledge", status.endswith("_unack")),
                                     ("silence", status.startswith("active")),
                                     ("clear", status.startswith("active"))) if ok]
            buttons = "".join(f'<button class="act {k}" name="kind" value="{k}" data-kind="{k}">'
                              f'{e(p.t("kind_" + k))}</button>' for k in kinds)
            actions = (f'<td class="acts"><form class="cmd" method="post" '
                       f'action="{site_href(a["site_id"])}/alarms/{quote(a["alarm_id"], safe="")}/commands">'
                       f'<input type="hidden" name="csrf" value="{e(csrf_of(token))}">'
                       f'<input name="note" maxlength="1000" placeholder="{e(p.t("note"))}" '
                       f'aria-label="{e(p.t("note"))}">{buttons}</form></td>') if kinds else '<td class="acts"></td>'
        rows.append(
            f'<tr class="alarm row-{e(cat)} st-{e(a["status"] or "")}" id="alarm-{e(a["alarm_id"])}" '
            f'data-site="{e(a["site_id"])}" data-alarm="{e(a["alarm_id"])}" data-category="{e(cat)}">'
            f'<td class="n">{e(fmt_ts(a["raised"] or a["ts"]))}</td>{site_cell}'
            f'<td><span class="cat cat-{e(cat)}">{e(cat_label(p.lang, cat))}</span></td>'
            f'<td>{e(status_label(p.lang, a["status"]))}</td><td>{e(msg or "")}</td><td>{e(where)}</td>{actions}</tr>')
    head = [p.t("raised")] + ([p.t("site")] if with_site else []) + [p.t("category"), p.t("status"), p.t("message"),
                                                                       p.t("where")]
    if can_command:
        head.append(p.t("actions"))
    return ('<div class="scroll"><table class="list alarms"><thead><tr>' +
            "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def org_label(p: Page, node: dict[str, Any]) -> str:
    name = (node.get("name_en") or node["name"]) if p.lang == "en" else node["name"]
    kind = node.get("kind", "")
    kind_text = t(p.lang, f"okind_{kind}") if f"okind_{kind}" in TEXT else kind
    return f'<span class="oname">{e(name)}</span> <span class="kind">{e(kind_text)}</span>'


# -- the panel -------------------------------------------------------------------------------------


def panel_routes(desk: CommandDesk) -> list[Route]:
    """The panel's routes, to mount in the centre's Starlette app next to the API's."""

    Handler = Callable[[Page], Awaitable[Response]]

    def signed_in(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            lang = lang_of(request)
            token = request.cookies.get(COOKIE, "")
            p = Page(request, None, lang, token)
            try:
                user = await desk.user_of_token(token) if token else None
                if user is None:
                    if request.query_params.get("part") == "1" or \
                            "application/json" in request.headers.get("accept", ""):  # the script: it goes itself
                        response: Response = JSONResponse(DeskError(
                            401, "unauthorized", t("en", "m_expired"), t("zh", "m_expired")).body(), 401)
                    else:
                        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        if request.method != "GET":  # a form posted: back to its page afterwards
                            site = request.path_params.get("site_id")
                            here = site_href(site) if site else BASE + "/"
                        q = {"m": "expired" if token else "needed", "next": here}
                        response = RedirectResponse(f"{BASE}/sign-in?{urlencode(q)}", 303)
                    if token:
                        response.delete_cookie(COOKIE, path="/")
                    return response
                p.user = user
                return await fn(p)
            except DeskError as exc:
                return error_page(p, exc.status, desk_message(p, exc))
            except Exception as exc:  # no traceback reaches a user; the log has it
                desk.note_error(exc)
                return error_page(p, 503, p.t("unavailable"))
        return run

    def nats_banner(p: Page) -> str:
        nc = desk.nc
        if nc is not None and not nc.is_connected:
            return f'<p class="banner-warn" role="alert" id="nats-down">{e(p.t("nats_down"))}</p>'
        return ""

    def live(p: Page, part: str) -> Response | None:
        if p.request.query_params.get("part") == "1":
            return Response(part, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
        return None

    # -- sign-in -----------------------------------------------------------------------------

    def sign_in_page(p: Page, message_key: str | None, nxt: str, status: int = 200) -> Response:
        msg = (f'<p class="{"err" if message_key in ("m_expired", "m_unknown") else "note"}" role="alert" '
               f'id="sign-in-message">{e(p.t(message_key))}</p>') if message_key else ""
        body = (f'<section class="narrow">{msg}<form method="post" action="{BASE}/sign-in" id="sign-in-form">'
                f'<input type="hidden" name="next" value="{e(nxt)}">'
                f'<label>{e(p.t("token"))}<input type="password" name="token" id="token" required maxlength="512" '
                f'autocomplete="current-password" autofocus></label>'
                f'<p class="muted">{e(p.t("token_help"))}</p>'
                f'<button type="submit" id="sign-in-button">{e(p.t("sign_in"))}</button></form></section>')
        return document(p, p.t("sign_in"), body, status=status)

    async def sign_in_form(request: Request) -> Response:
        p = Page(request, None, lang_of(request))
        m = request.query_params.get("m")
        key = {"expired": "m_expired", "needed": "m_needed", "signed_out": "m_signed_out"}.get(m or "")
        return sign_in_page(p, key, safe_next(request.query_params.get("next")))

    async def sign_in(request: Request) -> Response:
        p = Page(request, None, lang_of(request))
        try:
            if not same_origin(request):
                return error_page(p, 403, p.t("stale_page"))
            form = await form_of(request)
            nxt = safe_next(form.get("next"))
            token = form.get("token", "").strip()
            user = await desk.user_of_token(token) if 0 < len(token) <= 512 else None
        except DeskError as exc:
            return error_page(p, exc.status, desk_message(p, exc))
        except Exception as exc:
            desk.note_error(exc)
            return error_page(p, 503, p.t("unavailable"))
        if user is None:
            return sign_in_page(p, "m_unknown", nxt, 401)
        response = RedirectResponse(nxt, 303)
        response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def sign_out(request: Request) -> Response:
        p = Page(request, None, lang_of(request))
        if not same_origin(request):
            return error_page(p, 403, p.t("stale_page"))
        response = RedirectResponse(f"{BASE}/sign-in?m=signed_out", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- overview ------------------------------------------------------------------------------

    async def overview(p: Page) -> Response:
        assert p.user is not None
        known = await desk.sites(p.user)
        known_ids = [s["site_id"] for s in known]
        trees = await desk.organisations(p.user)
        stats = await site_stats(desk, known_ids)
        now = time.time()

        def site_li(site: str) -> str:
            if site not in stats:  # listed for an organisation, nothing received yet
                return (f'<li class="site never" data-site="{e(site)}"><span class="sid">{e(site)}</span> '
                        f'<span class="link never">{e(p.t("never_reported"))}</span></li>')
            st = stats[site]
            fire = " has-fire" if "fire" in st["open"] else ""
            return (f'<li class="site{fire}" data-site="{e(site)}"><a class="sid" href="{site_href(site)}">'
                    f'{e(site)}</a> {category_chips(p, st["open"])} {link_state(p, st["last"], now)}</li>')

        def subtree_counts(node: dict[str, Any]) -> tuple[int, int]:
            under = [s for s in node["sites_under"] if s in stats]
            n = sum(c for s in under for c, _ in stats[s]["open"].values())
            fire = sum(stats[s]["open"].get("fire", (0, 0))[0] for s in under)
            return n, fire

        def org_li(node: dict[str, Any]) -> str:
            n, fire = subtree_counts(node)
            badge = (f'<span class="cat cat-fire">{e(cat_label(p.lang, "fire"))} <b>{fire}</b></span>' if fire else "")
            inner = "".join(site_li(s) for s in node["sites"]) + "".join(org_li(c) for c in node["children"])
            return (f'<li class="org" data-org="{e(node["key"])}"><div class="orow">{org_label(p, node)} '
                    f'<span class="muted">{e(p.t("sites_n"))} {len(node["sites_under"])} · '
                    f'{e(p.t("open_alarms"))} {n}</span> {badge}</div>'
                    f'{"<ul>" + inner + "</ul>" if inner else ""}</li>')

        grouped = {s for tree in trees for s in tree["sites_under"]}
        rest = [s for s in known_ids if s not in grouped]
        tree_html = "".join(org_li(tree) for tree in trees)
        if rest:
            tree_html += (f'<li class="org other"><div class="orow"><span class="oname">{e(p.t("other_sites"))}'
                          f'</span></div><ul>{"".join(site_li(s) for s in rest)}</ul></li>')
        total_open = sum(c for s in stats.values() for c, _ in s["open"].values())
        fire_sites = sum(1 for s in stats.values() if "fire" in s["open"])
        silent = sum(1 for s in stats.values() if s["last"] is None or now - s["last"] > STALE_S)
        cards = "".join(f'<div class="card-n {cls}" id="n-{cls}"><b>{n}</b><span>{e(p.t(key))}</span></div>'
                        for cls, key, n in (("sites", "sites_n", len(known_ids)), ("open", "open_alarms", total_open),
                                            ("fire", "fire_sites", fire_sites), ("silent", "silent_sites", silent)))
        part = (nats_banner(p) + f'<div class="cards">{cards}</div>' +
                (f'<section><ul class="tree" id="tree">{tree_html}</ul></section>' if known_ids or trees else
                 f'<p class="muted" id="no-sites">{e(p.t("no_sites"))}</p>'))
        return live(p, part) or document(p, p.t("overview"), "", tab="overview", live=part)

    # -- alarms ----------------------------------------------------------------------------------

    async def alarms(p: Page) -> Response:
        assert p.user is not None
        q = p.request.query_params
        site, org, category = q.get("site") or "", q.get("org") or "", q.get("category") or ""
        known = [s["site_id"] for s in await desk.sites(p.user)]
        trees = await desk.organisations(p.user)
        flat: list[tuple[int, dict[str, Any]]] = []

        def walk(node: dict[str, Any], depth: int) -> None:
            flat.append((depth, node))
            for child in node["children"]:
                walk(child, depth + 1)

        for tree in trees:
            walk(tree, 0)
        sites: list[str] | None = None
        if site:
            sites = [site] if site in known else []
        if org:
            under: list[str] = next((n["sites_under"] for _, n in flat if n["key"] == org), [])
            sites = [s for s in (sites if sites is not None else known) if s in under]
        items, total = await open_alarms(desk, p.user, sites=sites, category=category or None)
        table = (alarm_rows(p, items, with_site=True, can_command=False, token=p.token) if items else
                 f'<p class="muted" id="no-open">{e(p.t("no_open"))}</p>')
        shown = (f'<p class="muted">{e(p.t("showing", n=len(items), total=total))}</p>' if total > len(items) else "")
        part = nats_banner(p) + table + shown
        partial = live(p, part)
        if partial is not None:
            return partial

        def options(name: str, values: list[tuple[str, str]], chosen: str) -> str:
            return (f'<label>{e(p.t(name))} <select name="{name}" id="f-{name}"><option value="">{e(p.t("all"))}'
                    "</option>" + "".join(f'<option value="{e(v)}"{" selected" if v == chosen else ""}>{e(label)}'
                                          "</option>" for v, label in values) + "</select></label>")

        orgs_opts = [(n["key"], "\u3000" * d + ((n.get("name_en") or n["name"]) if p.lang == "en" else n["name"]))
                     for d, n in flat]
        form = (f'<form class="filters" method="get" action="{BASE}/alarms" id="filters">'
                + options("site", [(s, s) for s in known], site)
                + (options("org", orgs_opts, org) if flat else "")
                + options("category", [(c, cat_label(p.lang, c)) for c in CATEGORIES], category)
                + (f'<input type="hidden" name="lang" value="{p.lang}">' if q.get("lang") else "")
                + f'<button type="submit" id="apply">{e(p.t("apply"))}</button></form>')
        return document(p, p.t("alarms"), form, tab="alarms", live=part)

    # -- one site --------------------------------------------------------------------------------

    async def site_page(p: Page) -> Response:
        assert p.user is not None
        site = p.request.path_params["site_id"]
        points, points_total = await desk.state(p.user, site, limit=MAX_POINTS)  # 404 outside the scope
        items, total = await open_alarms(desk, p.user, sites=[site])
        commands, _ = await desk.list(p.user, site_id=site, limit=COMMANDS_SHOWN)
        stats = (await site_stats(desk, [site]))[site]
        covering: list[str] = next((s["orgs"] for s in await desk.sites(p.user) if s["site_id"] == site), [])
        trees = await desk.organisations(p.user)
        names: dict[str, str] = {}

        def walk(node: dict[str, Any]) -> None:
            names[node["key"]] = org_label(p, node)
            for child in node["children"]:
                walk(child)

        for tree in trees:
            walk(tree)
        now = time.time()
        facts = (f'<dl class="facts"><dt>{e(p.t("organisations_of"))}</dt><dd id="site-orgs">'
                 f'{"、".join(names.get(o, e(o)) for o in covering) or e(p.t("none"))}</dd>'
                 f'<dt>{e(p.t("last_seen"))}</dt><dd>{link_state(p, stats["last"], now)}</dd>'
                 f'<dt>{e(p.t("open_alarms"))}</dt><dd>{category_chips(p, stats["open"])}</dd></dl>')
        can = p.user.can_command
        alarms_html = (alarm_rows(p, items, with_site=False, can_command=can, token=p.token) if items else
                       f'<p class="muted" id="no-open">{e(p.t("no_open"))}</p>')
        if total > len(items):
            alarms_html += f'<p class="muted">{e(p.t("showing", n=len(items), total=total))}</p>'
        if not can:
            alarms_html += f'<p class="muted" id="read-only">{e(p.t("read_only"))}</p>'
        pending = any(c["state"] in PENDING for c in commands)
        cmd_rows = []
        for c in commands:
            r = c["result"] or {}
            said = (r.get("message_zh") or r.get("message")) if p.lang == "zh" else (r.get("message") or
                                                                                      r.get("message_zh"))
            reason = f'<span class="why">{e(said or "")}</span>' if c["state"] == "refused" else ""
            after = (f' <span class="muted">→ {e(status_label(p.lang, r.get("alarm_status")))}</span>'
                     if c["state"] == "applied" and r.get("alarm_status") else "")
            cmd_rows.append(
                f'<tr class="command state-{e(c["state"])}" id="cmd-{e(c["id"])}" data-state="{e(c["state"])}" '
                f'data-kind="{e(c["kind"])}" data-alarm="{e(c["alarm_id"])}">'
                f'<td class="n">{e(fmt_ts(c["issued_at"]))}</td><td>{e(p.t("kind_" + c["kind"]) if c["kind"] in KINDS else c["kind"])}</td>'
                f'<td><a href="#alarm-{e(c["alarm_id"])}">{e(c["alarm_id"])}</a></td><td>{e(c["issued_by"])}</td>'
                f'<td><span class="state">{e(p.t("state_" + c["state"]) if "state_" + c["state"] in TEXT else c["state"])}'
                f'</span>{after} {reason}</td></tr>')
        commands_html = (('<div class="scroll"><table class="list commands"><thead><tr>' + "".join(
            f"<th>{e(p.t(k))}</th>" for k in ("issued_at", "command", "alarm", "issued_by", "result")) +
            "</tr></thead><tbody>" + "".join(cmd_rows) + "</tbody></table></div>") if cmd_rows else
            f'<p class="muted" id="no-commands">{e(p.t("no_commands"))}</p>')
        point_rows = "".join(
            f'<tr data-point="{e(pt["point_id"])}"><td>{e(pt["point_id"])}</td><td>{e(pt["device_id"] or "—")}</td>'
            f'<td>{e(pt["point_class"] or pt["point_key"] or "—")}</td>'
            f'<td class="n">{e(json.dumps(pt["value"], ensure_ascii=False) if not isinstance(pt["value"], (int, float, str)) or isinstance(pt["value"], bool) else str(pt["value"]))}</td>'
            f'<td>{e(pt["fault"] or "")}</td><td class="n">{e(fmt_ts(pt["vts"]))}</td></tr>' for pt in points)
        points_html = (('<div class="scroll"><table class="list points"><thead><tr>' + "".join(
            f"<th>{e(p.t(k))}</th>" for k in ("point", "device", "point_class", "value", "fault", "reading_time")) +
            "</tr></thead><tbody>" + point_rows + "</tbody></table></div>") if points else
            f'<p class="muted" id="no-points">{e(p.t("no_points"))}</p>')
        if points_total > len(points):
            points_html += f'<p class="muted">{e(p.t("showing", n=len(points), total=points_total))}</p>'
        part = (nats_banner(p) + f'<section>{facts}</section>'
                f'<section id="open"><h2>{e(p.t("open_alarms"))}</h2>{alarms_html}</section>'
                f'<section id="commands"{" data-pending=1" if pending else ""}><h2>{e(p.t("commands"))}</h2>'
                f'<p id="flash" class="note" role="status" hidden></p>{commands_html}</section>'
                f'<section id="points"><h2>{e(p.t("points"))}</h2>{points_html}</section>')
        return live(p, part) or document(p, f'{p.t("site")} {site}', "", tab="", live=part)

    async def command(p: Page) -> Response:
        assert p.user is not None
        request = p.request
        wants_json = "application/json" in request.headers.get("accept", "")
        form = await form_of(request)
        if not same_origin(request) or not hmac.compare_digest(form.get("csrf", ""), csrf_of(p.token)):
            raise DeskError(403, "stale_page", t("en", "stale_page"), t("zh", "stale_page"))
        site, alarm = request.path_params["site_id"], request.path_params["alarm_id"]
        view, _ = await desk.issue(p.user, site, alarm, form.get("kind"), note=form.get("note", ""))
        if wants_json:
            kind = p.t("kind_" + view["kind"])
            return JSONResponse({"id": view["id"], "state": view["state"],
                                 "message": p.t("cmd_submitted", kind=kind)}, 201)
        return RedirectResponse(site_href(site) + f"#cmd-{view['id']}", 303)

    def json_errors(fn: Handler) -> Handler:
        """A command posted by the script gets its refusal as JSON in the page's language."""
        async def run(p: Page) -> Response:
            try:
                return await fn(p)
            except DeskError as exc:
                if "application/json" in p.request.headers.get("accept", ""):
                    return JSONResponse({"error": {"code": exc.code, "message": desk_message(p, exc)}}, exc.status)
                raise
        return run

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("", 404)
        read, media = STATIC[name]
        return Response(read(), media_type=media, headers={"Cache-Control": "max-age=300"})

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{BASE}/", 303)

    async def missing(request: Request) -> Response:
        p = Page(request, None, lang_of(request))
        return error_page(p, 404, p.t("page_not_found"))

    return [
        Route("/", root),
        Route(BASE, root),
        Route(f"{BASE}/sign-in", sign_in_form, methods=["GET"]),
        Route(f"{BASE}/sign-in", sign_in, methods=["POST"]),
        Route(f"{BASE}/sign-out", sign_out, methods=["POST"]),
        Route(f"{BASE}/", signed_in(overview)),
        Route(f"{BASE}/alarms", signed_in(alarms)),
        Route(f"{BASE}/sites/{{site_id}}", signed_in(site_page)),
        Route(f"{BASE}/sites/{{site_id}}/alarms/{{alarm_id}}/commands", signed_in(json_errors(command)),
              methods=["POST"]),
        Route(f"{BASE}/static/{{name}}", static),
        Route(f"{BASE}/{{rest:path}}", missing),
    ]


__all__ = ["BASE", "COOKIE", "SITE_LABELS", "TEXT", "panel_routes"]
