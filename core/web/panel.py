"""Panel pages (server-rendered Jinja; panel.js adds the live parts)."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from firebus.sdk.vocab import PlaceKind

from . import views
from .api import perform
from .app import (
    LOGIN_CSRF_COOKIE, ApiError, MAX_BODY, check_csrf, client_address, is_tls, language, render, require,
    session_cookie_name, web,
)
from .auth import AuthError, Role
from .human import Human
from .priority import SECTIONS
from .i18n import ALARM_BOOL_CLASSES, DEVICE_TYPES, js_strings


async def form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", "form too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "forms are application/x-www-form-urlencoded")
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[0] for k, v in parsed.items()}


def _safe_next(target: str | None) -> str:
    # Only same-site paths: no open redirect through ?next=.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page_js(request: Request, **extra: Any) -> str:
    # Times in the site's zone, like the server-rendered ones (not the browser's zone).
    tz = web(request).core.site.site.timezone
    return json.dumps({"strings": js_strings(language(request)), "lang": language(request), "tz": tz,
                       "alarm_classes": sorted(ALARM_BOOL_CLASSES), **extra}, ensure_ascii=False)


# -- login / logout / password ---------------------------------------------------------------


async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", login_csrf=token, next=_safe_next(request.query_params.get("next")),
                      error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_tls(request), path="/login")
    return response


async def login_submit(request: Request) -> Response:
    state = web(request)
    data = await form(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    if not cookie or not secrets.compare_digest(cookie, data.get("csrf", "")):
        raise ApiError(403, "csrf", "the login form expired; reload the page")
    name = data.get("username", "").strip()
    password = data.get("password", "")
    address = client_address(request)
    account = name.casefold()
    next_url = _safe_next(data.get("next"))
    wait = state.throttle.retry_after(account, address)
    if wait > 0:
        await state.auth.log("login_throttled", name, address, f"retry after {wait:.0f}s")
        response = render(request, "login.html", http_status=429, login_csrf=cookie, next=next_url,
                          error=("throttled", {"s": int(wait) + 1}))
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await state.auth.authenticate(name, password)
    if user is None:
        state.throttle.failed(account, address)
        await state.auth.log("login_failed", name, address)
        return render(request, "login.html", http_status=401, login_csrf=cookie, next=next_url,
                      error=("login_failed", {}))
    state.throttle.succeeded(account, address)
    raw, _ = await state.auth.create_session(user, address=address, user_agent=request.headers.get("user-agent", ""))
    await state.auth.log("login_ok", user.name, address)
    response = RedirectResponse("/password" if user.must_change else next_url, status_code=303)
    response.set_cookie(
        session_cookie_name(request), raw, httponly=True, samesite="lax", secure=is_tls(request), path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    who = await require(request, api=False)
    check_csrf(request, who, (await form(request)).get("csrf"))
    if who.session is not None:
        await web(request).auth.end_session(who.session.id_hash, hashed=True)
    await web(request).auth.log("logout", who.name, client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/")
    return response


async def password_page(request: Request) -> Response:
    await require(request, api=False)
    return render(request, "password.html", error=None, done=False)


async def password_submit(request: Request) -> Response:
    who = await require(request, api=False)
    data = await form(request)
    check_csrf(request, who, data.get("csrf"))
    state = web(request)
    if data.get("new", "") != data.get("repeat", ""):
        return render(request, "password.html", http_status=400, error="passwords_differ", done=False)
    if await state.auth.authenticate(who.name, data.get("current", "")) is None:
        await state.auth.log("password_change_failed", who.name, client_address(request))
        return render(request, "password.html", http_status=400, error="login_failed", done=False)
    try:
        await state.auth.set_password(who.user.id, data.get("new", ""),
                                      keep_session=who.session.id_hash if who.session else None)
    except AuthError as exc:
        return render(request, "password.html", http_status=400, error=str(exc), done=False)
    await state.auth.log("password_changed", who.name, client_address(request))
    return RedirectResponse("/", status_code=303)


# -- pages -----------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    return render(request, "overview.html", units=views.unit_overview(core, scope), can_act=who.can_act,
                  page_js=_page_js(request, view="overview", can_act=who.can_act))


async def alarms_page(request: Request) -> Response:
    who = await require(request, api=False)
    status = request.query_params.get("status") or "open"
    if status not in ("active", "open", "all"):
        status = "open"
    return render(request, "alarms.html", status=status, can_act=who.can_act,
                  page_js=_page_js(request, view="alarms", status=status, can_act=who.can_act))


async def console_page(request: Request) -> Response:
    """The duty desk's full-screen alarm console (console.js does the live part)."""
    who = await require(request, api=False)
    sections = [[key, list(cats)] for key, cats in SECTIONS]
    return render(request, "console.html", sections=sections,
                  page_js=_page_js(request, view="console", can_act=who.can_act, sections=sections))


async def alarm_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    alarm = await core.alarms.get(request.path_params["alarm_id"])
    if alarm is None or not scope.alarm_visible(alarm):
        raise ApiError(404, "alarm_not_found", "not_found")
    lang = language(request)
    data = views.alarm_dict(core, alarm, lang)
    history = Human(lang).history(await core.alarms.history(alarm.id), data["point_unit"], data["point_class"])
    plan_place = data["floor"]["id"] if data["floor"] else None
    if plan_place and not await core.storage.fetchone("SELECT 1 FROM plan_images WHERE place_id = ?", (plan_place,)):
        plan_place = None
    return render(request, "alarm.html", alarm=data, history=history, can_act=who.can_act, plan_place=plan_place,
                  page_js=_page_js(request, view="alarm", alarm_id=alarm.id, plan_place=plan_place,
                                   highlight=[d["id"] for d in data["devices"]]))


async def alarm_action(request: Request) -> Response:
    """Form fallback for ack / silence / verdict (panel.js uses the JSON API)."""
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    alarm = await core.alarms.get(request.path_params["alarm_id"])
    if alarm is None or not scope.alarm_visible(alarm):
        raise ApiError(404, "alarm_not_found", "not_found")
    if not who.can_act:
        raise ApiError(403, "forbidden", "forbidden")
    data = await form(request)
    check_csrf(request, who, data.get("csrf"))
    action = request.path_params["action"]
    if action not in ("ack", "silence", "verdict"):
        raise ApiError(404, "not_found", "not_found")
    await perform(request, who, alarm.id, action, {"note": data.get("note", ""), "verdict": data.get("verdict")})
    return RedirectResponse(f"/alarms/{alarm.id}", status_code=303)


async def devices_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    unit_id = None
    ref = request.query_params.get("unit")
    if ref:
        unit = views.unit_by_ref(core, ref)
        if unit is None or not scope.unit_visible(unit.id):
            raise ApiError(404, "unit_not_found", "not_found")
        unit_id = unit.id
    status = request.query_params.get("status") or None
    if status not in (None, *views.STATUSES):
        status = None
    rows = views.list_devices(core, scope, unit_id=unit_id, status=status)
    return render(request, "devices.html", devices=rows, status=status, units=scope.units(), unit_id=unit_id,
                  page_js=_page_js(request, view="devices"))


async def device_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    device = core.registry.devices.get(request.path_params["device_id"])
    if device is None or not scope.unit_visible(device.unit_id):
        raise ApiError(404, "device_not_found", "not_found")
    detail = await views.device_detail(core, device, scope, language(request))
    commission = device.discovered and str(who.role) in ("admin", "integrator")
    locations = []
    if commission:
        for place in core.registry.places.values():
            unit_id = core.registry.unit_of(place.id)
            if place.kind is PlaceKind.LOCATION and scope.unit_visible(unit_id):
                unit = views.place_brief(core, unit_id)
                label = " · ".join(x for x in ((unit["name"] if unit else ""), views.location_path(core, place.id)) if x)
                locations.append({"id": place.id, "label": label})
    return render(request, "device.html", device=detail, commission=commission,
                  locations=sorted(locations, key=lambda x: x["label"]), device_types=DEVICE_TYPES,
                  page_js=_page_js(request, view="device", device_id=device.id, can_act=who.can_act,
                                   points=[{"id": p["id"], "name": p["name"], "unit": p["unit"]} for p in detail["points"]]))


async def places_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    return render(request, "places.html", tree=views.place_tree(core, views.Scope(core, who)))


async def plugins_page(request: Request) -> Response:
    who = await require(request, api=False)
    if not who.is_system:
        raise ApiError(403, "forbidden", "forbidden")
    return render(request, "plugins.html", plugins=web(request).core.plugins.listing())


async def notifications_page(request: Request) -> Response:
    who = await require(request, api=False)
    core = web(request).core
    scope = views.Scope(core, who)
    raw_offset = request.query_params.get("offset", "")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    rows, total = await views.notification_log(core, scope, limit=100, offset=offset)
    channels = await views.channel_health(core) if who.is_system else []
    return render(request, "notifications.html", rows=rows, total=total, offset=offset, channels=channels,
                  page_js=_page_js(request, view="notifications"))


async def health_page(request: Request) -> Response:
    who = await require(request, api=False)
    if not who.is_system:
        raise ApiError(403, "forbidden", "forbidden")
    core = web(request).core
    return render(request, "health.html", metrics=views.metrics(core), health=views.health(core))


async def users_page(request: Request) -> Response:
    who = await require(request, api=False)
    if who.role is not Role.ADMIN:
        raise ApiError(403, "forbidden", "forbidden")
    state = web(request)
    return render(request, "users.html", users=await state.auth.list_users(), tokens=await state.auth.list_tokens(),
                  log=await state.auth.auth_log(50))


async def favicon(request: Request) -> Response:
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/password", password_page, methods=["GET"]),
        Route("/password", password_submit, methods=["POST"]),
        Route("/", overview),
        Route("/console", console_page),
        Route("/alarms", alarms_page),
        Route("/alarms/{alarm_id}", alarm_page),
        Route("/alarms/{alarm_id}/{action}", alarm_action, methods=["POST"]),
        Route("/devices", devices_page),
        Route("/devices/{device_id}", device_page),
        Route("/places", places_page),
        Route("/plugins", plugins_page),
        Route("/notifications", notifications_page),
        Route("/health", health_page),
        Route("/users", users_page),
        Route("/favicon.ico", favicon),
    ]


__all__ = ["routes", "HTMLResponse"]
