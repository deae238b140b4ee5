"""Routes under ``/-/plugins/app/``: the shell, its files, the manifest, the service worker,
the session the shell reads, and the signed alarm links.

The shell and its files are the same for every user (the service worker caches them);
who is signed in, their role and the session's anti-forgery token come from
``api/session``, read like any other API answer.  Every route is open to every signed-in
role; what the app shows is scoped by the APIs it calls (the core's ``/api/alarms``, the
inspection plugin's hazards), never by the app.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from firebus.sdk import CoreAPI, caller, nav_link, signed_in

from . import links

BASE = "/-/plugins/app/"
#: files the shell loads (name → content type); nothing else under static/ is served
STATIC = {
    "app.js": "text/javascript", "dom.js": "text/javascript", "i18n.js": "text/javascript",
    "net.js": "text/javascript", "alarms.js": "text/javascript", "hazards.js": "text/javascript",
    "more.js": "text/javascript", "push.js": "text/javascript", "app.css": "text/css",
    "icon-192.png": "image/png", "icon-512.png": "image/png", "icon-maskable-512.png": "image/png",
}
#: revalidate every time (the service worker keeps the offline copy, not the HTTP cache)
FRESH = {"cache-control": "no-cache"}


def static_bytes(name: str) -> bytes:
    return resources.files("firebus.plugins.app").joinpath("static", name).read_bytes()


def manifest() -> dict[str, Any]:
    """The web app manifest (W3C Web Application Manifest): installable on Android and iOS."""
    icon = BASE + "static/"
    return {
        "id": BASE,
        "name": "firebus 消防监控",
        "short_name": "firebus",
        "description": "报警、隐患、巡检与报告 · alarms, hazards, patrol and reports",
        "start_url": BASE,
        "scope": BASE,
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": "#b71c1c",
        "background_color": "#ffffff",
        "lang": "zh-CN",
        "dir": "ltr",
        "categories": ["utilities", "productivity"],
        "icons": [
            {"src": icon + "icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": icon + "icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": icon + "icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }


def routes(core: CoreAPI) -> list[Route]:
    site = core.plugin_config("site") or {}
    tz = str(site.get("timezone") or "Asia/Shanghai")

    async def shell(request: Request) -> Response:
        return Response(static_bytes("index.html"), media_type="text/html; charset=utf-8", headers=FRESH)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": {"code": "not_found", "message": f"no file {name!r}"}}, 404)
        return Response(static_bytes(name), media_type=STATIC[name], headers=FRESH)

    async def webmanifest(request: Request) -> Response:
        body = json.dumps(manifest(), ensure_ascii=False).encode()
        return Response(body, media_type="application/manifest+json", headers=FRESH)

    async def service_worker(request: Request) -> Response:
        # Served from the app's own folder so its default scope is the app; the header says so
        # explicitly for a browser that is asked for the scope at registration.
        return Response(static_bytes("sw.js"), media_type="text/javascript",
                        headers={**FRESH, "service-worker-allowed": BASE})

    async def session(request: Request) -> Response:
        who = caller(request)
        if who is None:  # the core lets no one in without a session; kept for a direct mount
            return JSONResponse({"error": {"code": "unauthenticated", "message": "log in first"}}, 401)
        lang = request.cookies.get("firebus_lang")
        return JSONResponse({
            "name": who.name, "role": who.role, "units": list(who.units), "all_units": who.all_units,
            "can_act": who.can_act, "csrf": who.csrf, "lang": lang if lang in ("zh", "en") else "zh",
            "tz": tz, "site": str(site.get("name") or ""),
        }, headers={"cache-control": "no-store"})

    opened = [
        nav_link(Route("/", shell), "手机应用", "App"),
        Route("/static/{name}", static),
        Route("/manifest.webmanifest", webmanifest),
        Route("/sw.js", service_worker),
        Route("/api/session", session),
    ]
    return [signed_in(r) for r in opened] + links.routes(core, tz)
