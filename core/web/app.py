"""The Starlette application: panel pages, JSON API, event stream, static files.

``create_app(core)`` is all a runner needs; ``serve`` (server.py) runs it with
uvicorn inside the core's task group.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope as AsgiScope, Send

from .auth import AuthStore, Principal
from .i18n import LANGUAGES, translate
from .throttle import LoginThrottle

log = logging.getLogger("firebus.web")

SESSION_COOKIE = "firebus_session"
SESSION_COOKIE_TLS = "__Host-firebus_session"  # [ASVS 3.3.1/3.3.3]: Secure, Path=/, no Domain
LOGIN_CSRF_COOKIE = "firebus_login_csrf"
LANG_COOKIE = "firebus_lang"
MAX_BODY = 64 * 1024
#: Plan images are the one large body (core/web/plans.py checks the exact limit).
MAX_UPLOAD = 5 * 1024 * 1024 + 1024


class ApiError(Exception):
    """A clear 4xx: ``code`` is stable for programs, ``message`` is for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LoginRequired(Exception):
    pass


class WebState:
    """Everything the handlers share; kept on ``app.state.web``."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.auth = AuthStore(core.storage)
        self.throttle = LoginThrottle()
        self.closing = anyio.Event()
        self.tz = _zone(core.site.site.timezone)
        self.default_lang = core.site.site.language if core.site.site.language in LANGUAGES else "zh"
        self.env = Environment(
            loader=PackageLoader("firebus.core.web", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        from .filters import install

        install(self.env, self.tz)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:
        return None


def web(request: Request) -> WebState:
    return request.app.state.web


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def session_cookie_name(request: Request) -> str:
    return SESSION_COOKIE_TLS if is_tls(request) else SESSION_COOKIE


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def principal(request: Request) -> Principal | None:
    """The bearer token's or the session cookie's user, or None."""
    if "principal" in request.state._state:
        return request.state.principal
    state = web(request)
    found: Principal | None = None
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            found = await _basic(state, request, value.strip())
        elif scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "bad_authorization", "use 'Authorization: Bearer <token>'")
        else:
            found = await state.auth.token(value.strip())
            if found is None:
                raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked")
    else:
        raw = request.cookies.get(session_cookie_name(request), "")
        if raw:
            found = await state.auth.session(raw)
    request.state.principal = found
    return found


async def _basic(state: WebState, request: Request, value: str) -> Principal:
    """HTTP Basic, for clients that speak nothing else (the ntfy Android app): ``user:password``,
    or an API token as the password.  Throttled like the login form.  ``via="basic"`` is not
    ``"token"``: a browser replays Basic credentials on its own, so writes still need a CSRF token."""
    import base64
    import binascii

    from .auth import TOKEN_PREFIX

    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise ApiError(401, "bad_authorization", "Basic credentials must be base64 of 'user:password'")
    if password.startswith(TOKEN_PREFIX):
        found = await state.auth.token(password)
        if found is None:
            raise ApiError(401, "invalid_token", "the token is unknown, expired or revoked")
        return found
    address, account = client_address(request), user.casefold()
    wait = state.throttle.retry_after(account, address)
    if wait > 0:
        raise ApiError(429, "throttled", f"too many failed logins; retry in {int(wait) + 1} s")
    who = await state.auth.authenticate(user, password)
    if who is None:
        state.throttle.failed(account, address)
        await state.auth.log("login_failed", user, address, "basic")
        raise ApiError(401, "login_failed", "wrong user name or password")
    state.throttle.succeeded(account, address)
    if who.must_change:
        raise ApiError(403, "password_change_required", "change the one-time password at /password first")
    return Principal(user=who, via="basic")


async def require(request: Request, *, api: bool) -> Principal:
    found = await principal(request)
    if found is None:
        if api:
            raise ApiError(401, "unauthenticated", "log in or send 'Authorization: Bearer <token>'")
        raise LoginRequired()
    if found.user.must_change and found.via == "session" and request.url.path not in ("/password", "/logout"):
        # A one-time password opens nothing but the page that replaces it.
        if api:
            raise ApiError(403, "password_change_required", "change the one-time password at /password first")
        raise LoginRequired()  # handled: redirect to the password page
    return found


def check_csrf(request: Request, who: Principal, supplied: str | None) -> None:
    """Session-authenticated writes must carry the session's anti-forgery token [ASVS 3.5.1]."""
    if who.via == "token":
        return  # a bearer token is not sent by browsers on their own: no CSRF exposure
    expected = who.csrf or ""
    if not supplied or not secrets.compare_digest(supplied, expected):
        raise ApiError(403, "csrf", "missing or wrong anti-forgery token (X-CSRF-Token header or csrf field)")


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return chosen if chosen in LANGUAGES else web(request).default_lang


def render(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    state = web(request)
    lang = language(request)
    who = request.state._state.get("principal")
    from .human import Human

    html = state.env.get_template(template).render(
        request=request, lang=lang, t=lambda key, **kw: translate(lang, key, **kw), h=Human(lang), me=who,
        csrf=who.csrf if who else "", site=state.core.site.site, path=request.url.path,
        plugin_links=[link for link in _NAV_LINKS.get(id(state.core), [])
                      if who is not None and (link["open"] or who.is_system)],
        **context,
    )
    response = HTMLResponse(html, status_code=http_status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=is_tls(request), httponly=True)
    return response


# -- errors ----------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if _wants_json(request):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status, headers=headers)
    return render(request, "error.html", http_status=exc.status, status_code=exc.status, message=exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else code
    if _wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, exc.status_code)
    return render(request, "error.html", http_status=exc.status_code, status_code=exc.status_code, message=message)


async def _login_required(request: Request, exc: Exception) -> Response:
    who = request.state._state.get("principal")
    if who is not None and who.user.must_change:
        return RedirectResponse("/password", status_code=303)
    target = request.url.path + (("?" + request.url.query) if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Generic message out, details to the log [ASVS 16.5.1]; fail closed.
    log.exception("web: unhandled error on %s %s", request.method, request.url.path)
    if _wants_json(request):
        return JSONResponse({"error": {"code": "internal", "message": "internal error (logged)"}}, 500)
    return HTMLResponse("<h1>500</h1><p>internal error (logged)</p>", 500)


# -- security headers --------------------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeaders:
    """CSP, nosniff, framing and caching headers on every response [ASVS 3.4.3–3.4.6]."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
                ]
                if scope.get("scheme") == "https":
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)


class BodyLimit:
    """Refuse request bodies over ``MAX_BODY`` before reading them (no memory blow-up)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            limit = MAX_UPLOAD if path.startswith("/api/plans/") and path.endswith("/image") else MAX_BODY
            for key, value in scope.get("headers", []):
                if key == b"content-length" and value.isdigit() and int(value) > limit:
                    response = JSONResponse({"error": {"code": "too_large", "message": f"body over {limit} bytes"}}, 413)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def create_app(core: Any) -> Starlette:
    """The panel + API for a running ``Core`` (its storage must be open, with WEB_MIGRATIONS)."""
    from . import api, commission, journal_api, media_api, panel, plans, stream

    routes = [
        *commission.routes(),  # before api's: /api/alarms/ack must not match /api/alarms/{alarm_id}
        *api.routes(),
        *journal_api.routes(),
        *media_api.routes(),
        *plans.api_routes(),
        *stream.routes(),
        *panel.routes(),
        *plans.page_routes(),
        Mount("/static", StaticFiles(packages=[("firebus.core.web", "static")]), name="static"),
        *_plugin_mounts(core),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            LoginRequired: _login_required,
            Exception: _server_error,
        },
    )
    app.state.web = WebState(core)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app


#: plugin pages for the navigation, per core (collected with the mounts, read by render())
_NAV_LINKS: dict[int, list[dict[str, Any]]] = {}


def _plugin_mounts(core: Any) -> list[Mount]:
    """Plugins' own routes under ``/-/plugins/<name>/`` (Datasette's URL namespace), system roles only."""
    mounts = []
    try:
        results = core.plugins.call_each("firebus_register_routes", core=core)
    except Exception:
        log.exception("web: collecting plugin routes failed")
        return []
    links: list[dict[str, Any]] = []
    for name, plugin_routes in results:
        if plugin_routes:
            routes = list(plugin_routes)
            open_routes = [r for r in routes if getattr(r, "firebus_access", "") == "signed_in"]
            public_routes = [r for r in routes if getattr(r, "firebus_access", "") == "public"]
            for r in routes:
                label = getattr(r, "firebus_nav", None)
                if label and "{" not in getattr(r, "path", "{"):
                    links.append({"href": f"/-/plugins/{name}{r.path}", "zh": label[0], "en": label[1],
                                  "open": r in open_routes})
            mounts.append(Mount(f"/-/plugins/{name}", app=_SystemOnly(Starlette(routes=routes), open_routes,
                                                                     public_routes)))
    _NAV_LINKS[id(core)] = links
    return mounts


class _SystemOnly:
    """System roles only, except routes the plugin opened with ``firebus.sdk.web.signed_in``
    (every signed-in role) or ``firebus.sdk.web.public`` (anyone, HTTP only);
    the caller goes to the plugin in ``scope["firebus.caller"]`` (``firebus.sdk.web.caller``)."""

    def __init__(self, app: ASGIApp, open_routes: list[Any] | None = None,
                 public_routes: list[Any] | None = None) -> None:
        self.app = app
        self.open_routes = open_routes or []
        # ``firebus.sdk.web.public``: reachable signed out; the route checks its own credential
        # (a signed link's token) and gets the caller only when someone is signed in.
        self.public_routes = public_routes or []

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):  # a plugin's WebSocket is guarded like its pages
            from starlette.requests import HTTPConnection
            from starlette.routing import Match

            from firebus.sdk.web import SCOPE_KEY, Caller

            # scope["app"] is the panel app: principal() works
            request: Any = Request(scope, receive) if scope["type"] == "http" else HTTPConnection(scope)
            try:
                who = await principal(request)
            except ApiError:
                who = None
            if who is not None and who.user.must_change and who.via == "session":
                who = None  # a one-time password opens nothing but the page that replaces it
            opened = any(r.matches(scope)[0] is Match.FULL for r in self.open_routes)
            public = any(r.matches(scope)[0] is Match.FULL for r in self.public_routes)
            if who is None and opened and scope["type"] == "http" and request.method == "GET" \
                    and "text/html" in request.headers.get("accept", ""):
                from urllib.parse import quote

                target = request.url.path + (("?" + request.url.query) if request.url.query else "")
                await RedirectResponse(f"/login?next={quote(target, safe='/')}", 303)(scope, receive, send)
                return
            if who is not None:
                from .views import effective_units  # direct units and all under the user's organisations

                scope[SCOPE_KEY] = Caller(
                    name=who.name, role=str(who.role), units=effective_units(request.app.state.web.core, who.user),
                    orgs=tuple(who.user.orgs), all_units=who.all_units,
                    can_act=who.can_act, is_system=who.is_system, via=who.via, csrf=who.csrf or "",
                )
            if public and scope["type"] == "http":
                await self.app(scope, receive, send)
                return
            if (who is None or not (who.is_system or opened)) and scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers 403
                return
            if who is None or not (who.is_system or opened):
                await JSONResponse({"error": {"code": "forbidden", "message": "system roles only"}}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
