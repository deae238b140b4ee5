"""Web Push registration for signed-in users (the app's service worker calls these).

``GET /webpush/key`` → ``{"public_key": "<base64url>"}`` (the ``applicationServerKey``);
``POST /webpush/subscriptions`` with the browser's ``PushSubscription`` JSON registers that
browser for the caller; ``DELETE`` with the same JSON (or just ``{"endpoint": …}``) removes it.
A session caller sends its CSRF token (``X-CSRF-Token``); a bearer token needs none.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from firebus.sdk import Lane, caller, signed_in

from .webpush import PushSubscription, WebPushChannel, unb64url


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def routes(service_of: Callable[[], Any]) -> list[Route]:
    def channel() -> tuple[Any, WebPushChannel] | None:
        service = service_of()
        if service is None:
            return None
        found = next((e.notifier for e in service.channels.entries.values()
                      if isinstance(e.notifier, WebPushChannel) and e.notifier.vapid is not None), None)
        return (service, found) if found is not None else None

    _none = ("not_found", "web push is not configured on this site (notify.channels: a channel of type webpush) "
                          "/ 本站未配置浏览器推送")

    async def key(request: Request) -> JSONResponse:
        found = channel()
        if found is None:
            return _error(404, *_none)
        return JSONResponse({"public_key": found[1].public_key})

    async def subscriptions(request: Request) -> JSONResponse:
        found = channel()
        if found is None:
            return _error(404, *_none)
        service, push = found
        who = caller(request)
        assert who is not None  # signed_in: the core let only signed-in callers through
        if not who.csrf_ok(request.headers.get("x-csrf-token")):
            return _error(403, "csrf", "missing or wrong anti-forgery token (X-CSRF-Token header)")
        body = await request.body()
        storage = service.core.storage
        if request.method == "DELETE":
            try:
                endpoint = msgspec.json.decode(body, type=dict[str, Any]).get("endpoint")
            except msgspec.DecodeError:
                endpoint = None
            if not isinstance(endpoint, str) or not endpoint:
                return _error(400, "bad_request", "body must be JSON with the subscription's endpoint")
            row = await storage.fetchone("SELECT user FROM notify_webpush_subscriptions WHERE endpoint = ?",
                                         (endpoint,))
            if row is None or (row[0] != who.name and who.role != "admin"):
                return _error(404, "not_found", "no such subscription of yours")
            await storage.execute("DELETE FROM notify_webpush_subscriptions WHERE endpoint = ?", (endpoint,),
                                  lane=Lane.ALARM)
            return JSONResponse({"removed": endpoint})
        try:
            sub = msgspec.json.decode(body, type=PushSubscription)
        except msgspec.ValidationError as exc:
            return _error(400, "bad_request", f"not a PushSubscription: {exc}")
        except msgspec.DecodeError:
            return _error(400, "bad_request", "body must be the browser's PushSubscription as JSON")
        problem = push.endpoint_problem(sub.endpoint)
        if problem:
            return _error(400, "bad_endpoint", problem)
        try:
            p256dh, auth = unb64url(sub.keys.p256dh), unb64url(sub.keys.auth)
        except ValueError:
            p256dh, auth = b"", b""
        if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
            return _error(400, "bad_keys", "keys.p256dh must be a P-256 point (65 bytes) and keys.auth 16 bytes, "
                                           "base64url")
        # A browser is one person's: the last user to register it there owns it.
        await storage.execute(
            "INSERT INTO notify_webpush_subscriptions (endpoint, user, p256dh, auth, created_ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (endpoint) DO UPDATE SET user = excluded.user, p256dh = excluded.p256dh, auth = excluded.auth",
            (sub.endpoint, who.name, sub.keys.p256dh, sub.keys.auth, service.clock.time()), lane=Lane.ALARM)
        person = service.person_of_user(who.name)
        return JSONResponse({"endpoint": sub.endpoint, "user": who.name,
                             "person": person.name if person is not None else None}, 201)

    return [
        signed_in(Route("/webpush/key", key)),
        signed_in(Route("/webpush/subscriptions", subscriptions, methods=["POST", "DELETE"])),
    ]
