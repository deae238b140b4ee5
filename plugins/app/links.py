"""``GET /-/plugins/app/a/{token}``: the alarm a push message's signed link names, readable
without signing in.

The token (``firebus.sdk.links``, signed by the notify plugin with ``core.secret("links")``)
grants one alarm's summary — what, where, when, state — and nothing else: no actions, no
other alarm, no device ids.  A link whose signature does not match is refused with 403, an
expired one with 410, each with a page that says so in Chinese or English.  Acting on the
alarm needs signing in ("sign in to act" leads to the app's alarm page).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from firebus.sdk import CoreAPI
from firebus.sdk import links as sdk_links
from firebus.sdk.web import public

from .i18n import LANGS, t


CSS = (
    "body{font-family:system-ui,'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif;margin:0;color:#222;background:#fafafa}"
    "header{background:#b71c1c;color:#fff;padding:.75rem 1rem;display:flex;justify-content:space-between;align-items:center}"
    "header h1{font-size:1.15rem;margin:0}header a{color:#fff}main{padding:1rem;max-width:36rem}"
    "dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem .9rem;margin:1rem 0}dt{color:#666}dd{margin:0}"
    ".cat{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;background:#eee}"
    ".cat-fire{background:#b71c1c;color:#fff}.cat-gas{background:#e65100;color:#fff}"
    ".act{display:inline-block;margin-top:1rem;padding:.7rem 1.2rem;background:#b71c1c;color:#fff;border-radius:.4rem;"
    "text-decoration:none;font-weight:bold}.refused h2{color:#b71c1c}"
)


def _lang(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get("firebus_lang")
    return chosen if chosen in LANGS else "zh"


def _page(request: Request, lang: str, title: str, body: str, status: int) -> HTMLResponse:
    other = "en" if lang == "zh" else "zh"
    path = html.escape(request.url.path)
    doc = (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
           '<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
           f'<title>{html.escape(title)} · firebus</title><link rel="stylesheet" href="/-/plugins/app/link.css"></head>'
           f'<body><header><h1>{html.escape(title)}</h1><a id="lang" href="{path}?lang={other}">{t(lang, "language")}</a>'
           f"</header><main>{body}</main></body></html>")
    return HTMLResponse(doc, status_code=status, headers={"x-robots-tag": "noindex"})


def _refused(request: Request, lang: str, kind: str, status: int) -> HTMLResponse:
    body = (f'<section class="refused" data-refused="{kind}"><h2>{html.escape(t(lang, kind + "_title"))}</h2>'
            f'<p>{html.escape(t(lang, kind + "_text"))}</p>'
            f'<a class="act" href="/login?next={quote("/-/plugins/app/", safe="/")}">{html.escape(t(lang, "sign_in"))}</a>'
            "</section>")
    return _page(request, lang, t(lang, kind + "_title"), body, status)


def _place_names(core: Any, place_id: str | None) -> list[str]:
    """Unit → … → location names, top first (at most 10 levels, like the registry's path)."""
    names: list[str] = []
    while place_id and len(names) < 10:
        place = core.registry.place(place_id)
        if place is None:
            break
        names.append(place.name or place.key)
        place_id = place.parent_id
    return list(reversed(names))


def _device_name(core: Any, alarm: dict[str, Any]) -> str:
    if alarm.get("point_id"):
        info = core.registry.point_info(alarm["point_id"])
        if info is not None:
            return info.device_name
    if alarm.get("device_id"):
        points = core.registry.points_of_device(alarm["device_id"])
        if points:
            return points[0].device_name
    return ""


def summary(core: Any, alarm: dict[str, Any], lang: str, tz: str) -> dict[str, str]:
    """What, where, when, state of a stored alarm, in ``lang`` (also what the tests read)."""
    category = str(alarm.get("category") or "")
    what = (alarm.get("message_zh") or alarm.get("message")) if lang == "zh" else (alarm.get("message") or alarm.get("message_zh"))
    location_id = alarm.get("location_id") or alarm.get("unit_id")
    where = " / ".join(_place_names(core, location_id))
    try:
        zone: Any = ZoneInfo(tz)
    except Exception:
        zone = dt.timezone.utc
    when = dt.datetime.fromtimestamp(float(alarm.get("start_ts") or 0), zone).strftime("%Y-%m-%d %H:%M:%S")
    status = str(alarm.get("status") or "active_unack")
    state = t(lang, "st_" + status)
    if alarm.get("silenced") and alarm.get("active", True):
        state += " · " + t(lang, "silenced")
    if alarm.get("late"):  # shown only by a reading uploaded after newer ones: start_ts is when it happened
        state += " · " + t(lang, "late_alarm")
    out = {"category": category, "category_name": t(lang, "cat_" + category), "what": str(what or ""),
           "where": where, "when": when, "state": state, "device": _device_name(core, alarm), "verdict": ""}
    if alarm.get("verdict"):
        out["verdict"] = t(lang, "v_" + str(alarm["verdict"]))
    return out


def routes(core: CoreAPI, tz: str) -> list[Route]:
    async def alarm_link(request: Request) -> Response:
        lang = _lang(request)
        token = request.path_params["token"]
        key = await core.secret("links")
        now = core.clock.time()
        claim = sdk_links.verify(key, token, now)
        if claim is None:
            # The same signature with the clock put back tells an expired link from a forged one.
            late = sdk_links.verify(key, token, 0.0)
            if late is not None and late.expires < now:
                return _refused(request, lang, "expired", 410)
            return _refused(request, lang, "bad", 403)
        row = await core.storage.fetchone("SELECT data FROM alarms WHERE id = ?", (claim.alarm_id,))
        if row is None:
            return _refused(request, lang, "gone", 404)
        s = summary(core, json.loads(row[0]), lang, tz)
        rows = [("what", s["what"]), ("where", s["where"]), ("device", s["device"]), ("when", s["when"]),
                ("state", s["state"]), ("verdict", s["verdict"])]
        items = "".join(f'<dt>{html.escape(t(lang, k))}</dt><dd data-field="{k}">{html.escape(v)}</dd>'
                        for k, v in rows if v)
        target = quote(f"/-/plugins/app/?alarm={claim.alarm_id}", safe="/?=")
        body = (f'<section data-alarm="{html.escape(claim.alarm_id)}"><span class="cat cat-{html.escape(s["category"])}">'
                f'{html.escape(s["category_name"])}</span><dl>{items}</dl>'
                f'<a class="act" id="sign-in" href="/login?next={quote(target, safe="/")}">{html.escape(t(lang, "sign_in"))}</a>'
                "</section>")
        return _page(request, lang, t(lang, "link_title"), body, 200)

    async def link_css(request: Request) -> Response:
        return Response(CSS, media_type="text/css", headers={"cache-control": "public, max-age=3600"})

    # Public: the phone that opens a pushed link is often not signed in; the token is the credential.
    return [public(Route("/a/{token}", alarm_link)), public(Route("/link.css", link_css))]
