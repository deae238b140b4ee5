"""``GET /-/plugins/notify/media/<token>/<name>``: an alarm's still (or clip) for whoever holds
the signed link in a message — a phone not signed in, a vendor's server fetching a card's
picture.

The token (``media.sign_media``, key ``core.secret("notify-media")``) names one medium of one
alarm and an expiry (``notify.links.ttl``); it grants those bytes and nothing else.  Refused:
403 for a forged or mangled token, 410 for an expired one, 404 when the medium is no longer
attached to that alarm or its file is gone.  ``<name>`` is only for the reader (a file name
with the right suffix); the token alone decides.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from firebus.sdk.web import public

from .media import verify_media

# Bilingual: whoever opens the link may read either language, and there is no page to choose one.
REFUSED = {
    403: "链接无效。 / This link is not valid.",
    410: "链接已过期，请在平台上查看告警。 / This link has expired; open the alarm on the platform.",
    404: "图片已不存在。 / This picture is no longer kept.",
}


def _refused(status: int) -> Response:
    return PlainTextResponse(REFUSED[status], status_code=status,
                             headers={"cache-control": "no-store", "x-robots-tag": "noindex"})


def routes(service_of: Callable[[], Any]) -> list[Route]:
    async def medium(request: Request) -> Response:
        service = service_of()
        key = service.media.key if service is not None else None
        if key is None:
            return _refused(404)
        token = request.path_params["token"]
        now = service.clock.time()
        claim = verify_media(key, token, now)
        if claim is None:
            # The same signature with the clock put back tells an expired link from a forged one.
            late = verify_media(key, token, 0.0)
            return _refused(410 if late is not None and late[2] <= now else 403)
        alarm_id, media_id, _ = claim
        store = service.media.store
        if store is None or alarm_id not in await store.alarms_of(media_id):
            return _refused(404)
        got = await store.get(media_id)
        if got is None:
            return _refused(404)
        info, path = got
        return FileResponse(path, media_type=info.content_type,
                            headers={"cache-control": "private, max-age=3600", "x-robots-tag": "noindex"})

    # Public: the token is the credential (firebus.sdk.web.public).
    return [public(Route("/media/{token}/{name}", medium))]
