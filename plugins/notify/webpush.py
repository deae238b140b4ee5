"""``webpush``: browser Web Push (RFC 8030) with VAPID (RFC 8292), payload encrypted aes128gcm
(RFC 8291) to each browser's subscription keys.

Where it works: browsers deliver through their vendor's push service (FCM for Chrome and
most Android browsers, which mainland China blocks; Mozilla's, Apple's), so this is one path
among several, never the only one.  The app's service worker registers a browser with
``POST /-/plugins/notify/webpush/subscriptions`` (routes in ``webpush_web``); a person's
contact on this channel is the firebus user whose browsers receive their messages.

The VAPID key pair is made once and kept in ``notify_webpush_keys``: browsers subscribed
with its public key, and a new key would orphan every subscription.  A push service answering
404 or 410 says the subscription is gone: it is removed.
"""

from __future__ import annotations

import base64
import time
from typing import Any, ClassVar
from urllib.parse import urlsplit

import msgspec

from firebus.sdk import Lane

from .channel import Channel
from .media import public_still
from .message import ChannelContext, DeliveryError, Message

_enc = msgspec.json.Encoder()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WebPushOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # VAPID "sub": who runs this server, for the push service to reach (mailto: or https:).
    subject: str
    ttl: int = 86_400  # seconds the push service keeps a message for a browser that is offline
    # Push endpoints must be https; http only for a lab or a test push service on this machine.
    allow_http_endpoints: bool = False
    timeout: float = 15.0


class PushPayload(msgspec.Struct, omit_defaults=True):
    """What the service worker gets (decrypted): enough to show the notification and open the link."""

    id: str
    kind: str
    title: str
    body: str
    url: str = ""
    alarm_id: str = ""
    category: str = ""
    severity: int = 0
    tag: str = ""  # the notification tag: a later message of the same alarm replaces the earlier one
    image: str = ""  # the alarm's still (signed link): the Notification's ``image``


class WebPushChannel(Channel):
    type_key: ClassVar[str] = "webpush"
    Options: ClassVar[type[msgspec.Struct]] = WebPushOptions

    def __init__(self, key: str, options: WebPushOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        if not options.subject.startswith(("mailto:", "https://")):
            raise ValueError("subject must be a mailto: address or an https:// URL (RFC 8292)")
        self.vapid: Any = None
        self.public_key = ""

    @property
    def storage(self) -> Any:
        return self.ctx.storage

    async def start(self) -> None:
        """Load the VAPID key pair, making it on first start."""
        from py_vapid import Vapid02

        row = await self.storage.fetchone("SELECT private_key, public_key FROM notify_webpush_keys WHERE id = 1")
        if row is None:
            vapid = Vapid02()
            vapid.generate_keys()
            public = b64url(self._raw_public(vapid))
            await self.storage.execute(
                "INSERT OR IGNORE INTO notify_webpush_keys (id, private_key, public_key, created_ts) VALUES (1, ?, ?, ?)",
                (vapid.private_pem().decode(), public, self.ctx.time()), lane=Lane.ALARM)
            row = await self.storage.fetchone("SELECT private_key, public_key FROM notify_webpush_keys WHERE id = 1")
        assert row is not None
        self.vapid = Vapid02.from_pem(row[0].encode())
        self.public_key = row[1]

    @staticmethod
    def _raw_public(vapid: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return vapid.public_key.public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)

    def endpoint_problem(self, endpoint: str) -> str | None:
        """Why a browser's endpoint is refused (None: fine)."""
        parts = urlsplit(endpoint)
        if parts.scheme == "https" and parts.hostname:
            return None
        if parts.scheme == "http" and parts.hostname and self.options.allow_http_endpoints:
            return None
        return "endpoint must be an https:// URL of a push service"

    def payload(self, message: Message) -> bytes:
        return _enc.encode(PushPayload(
            id=message.id, kind=message.kind, title=message.title, body=message.text, url=message.url,
            alarm_id=message.alarm_id, category=message.category, severity=message.severity,
            tag=f"firebus-{message.alarm_id}" if message.alarm_id else f"firebus-{message.id}",
            image=str(still["url"]) if (still := public_still(message)) is not None else ""))

    async def send(self, message: Message) -> None:
        if self.vapid is None:
            raise DeliveryError("web push keys are not loaded yet")
        if not message.address:
            raise DeliveryError(f"{message.recipient} has no firebus user on {self.key}", permanent=True)
        rows = await self.storage.fetchall(
            "SELECT endpoint, p256dh, auth FROM notify_webpush_subscriptions WHERE user = ?", (message.address,))
        if not rows:
            raise DeliveryError(f"user {message.address!r} has registered no browser for web push", permanent=True)
        data = self.payload(message)
        delivered, errors = 0, []
        for endpoint, p256dh, auth in rows:
            try:
                if await self._push(endpoint, p256dh, auth, data, message):
                    delivered += 1
            except DeliveryError as exc:
                errors.append(str(exc))
        if delivered:
            return  # one browser showed it; a failed other one is retried with the next message
        if errors:
            raise DeliveryError("; ".join(errors)[:500])
        raise DeliveryError(f"every browser of {message.address!r} unsubscribed", permanent=True)

    async def _push(self, endpoint: str, p256dh: str, auth: str, data: bytes, message: Message) -> bool:
        """True: accepted; False: the subscription is gone (removed); raises to retry."""
        import httpx
        from pywebpush import WebPusher, WebPushException

        try:
            encoded = WebPusher({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}).encode(
                data, content_encoding="aes128gcm")
        except (WebPushException, ValueError) as exc:
            await self._forget(endpoint, f"bad keys: {exc}")
            return False
        parts = urlsplit(endpoint)
        # exp from the wall clock: the push service checks it against its own (≤ 24 h, RFC 8292).
        claims = {"aud": f"{parts.scheme}://{parts.netloc}", "sub": self.options.subject,
                  "exp": int(time.time()) + 12 * 3600}
        headers = {
            **self.vapid.sign(claims),
            "TTL": str(self.options.ttl),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "high" if message.severity >= 50 or message.category == "fire" else "normal",
        }
        try:
            r = await self.ctx.http.post(endpoint, content=encoded["body"], headers=headers,
                                         timeout=self.options.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"push service {parts.netloc}: {type(exc).__name__}: {exc or 'no answer'}") from exc
        if r.status_code in (404, 410):
            await self._forget(endpoint, f"HTTP {r.status_code}")
            return False
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"push service {parts.netloc}: HTTP {r.status_code}: {r.text[:200]}")
        await self.storage.execute("UPDATE notify_webpush_subscriptions SET last_ok_ts = ? WHERE endpoint = ?",
                                   (self.ctx.time(), endpoint), lane=Lane.ALARM)
        return True

    async def _forget(self, endpoint: str, why: str) -> None:
        self.ctx.logger.info("notify: web push subscription %s removed (%s)", urlsplit(endpoint).netloc, why)
        await self.storage.execute("DELETE FROM notify_webpush_subscriptions WHERE endpoint = ?", (endpoint,),
                                   lane=Lane.ALARM)


class PushSubscriptionKeys(msgspec.Struct):
    p256dh: str
    auth: str


class PushSubscription(msgspec.Struct):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: str
    keys: PushSubscriptionKeys
    expirationTime: float | None = None

