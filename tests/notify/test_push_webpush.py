"""Web Push end to end: a browser's subscription registered over the API, an alarm pushed to a
real local HTTP "push service" that checks the VAPID signature and decrypts the aes128gcm
payload with the subscription's private key, the way a browser's push service and the
browser would."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from .test_push_ntfy import BASE, basic, open_site

pytestmark = pytest.mark.anyio

WEBPUSH = '    - {key: web, type: webpush, options: {subject: "mailto:ops@example.org", allow_http_endpoints: true}}'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Browser:
    """A browser's push keys: the subscription it hands out, and what only it can decrypt."""

    def __init__(self, endpoint: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = bytes(range(16))
        public = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        self.subscription = {"endpoint": endpoint, "expirationTime": None,
                             "keys": {"p256dh": b64(public), "auth": b64(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


async def test_a_registered_browser_gets_the_alarm_encrypted_and_vapid_signed(tmp_path, receiver) -> None:
    receiver.respond = lambda req: (410, {}) if req.path == "/push/gone" else (201, {})
    async with open_site(tmp_path, extra_channels=WEBPUSH, extra_contacts=", web: wang",
                         extra_route_channels=", web") as site:
        wang = {"Authorization": f"Bearer {site.tokens['wang']}"}
        api = f"{site.url}/-/plugins/notify/webpush"
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"{api}/key", headers=wang)
            assert r.status_code == 200
            public_key = r.json()["public_key"]
            assert len(base64.urlsafe_b64decode(public_key + "==")) == 65
            assert (await client.get(f"{api}/key")).status_code == 403  # not signed in

            phone, old = Browser(receiver.url("/push/phone")), Browser(receiver.url("/push/gone"))
            for browser in (phone, old):
                r = await client.post(f"{api}/subscriptions", json=browser.subscription, headers=wang)
                assert r.status_code == 201 and r.json() == {"endpoint": browser.subscription["endpoint"],
                                                             "user": "wang", "person": "王值班"}
            bad = dict(phone.subscription, keys={"p256dh": "AAAA", "auth": "AAAA"})
            r = await client.post(f"{api}/subscriptions", json=bad, headers=wang)
            assert r.status_code == 400 and "65 bytes" in r.json()["error"]["message"]
            r = await client.post(f"{api}/subscriptions", content=b"{", headers=wang)
            assert r.status_code == 400
            # Basic is replayed by browsers on their own: a write through it needs the CSRF token.
            r = await client.post(f"{api}/subscriptions", json=phone.subscription, headers=basic("wang"))
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"

            site.fire("A1")
            with anyio.fail_after(10):
                while not receiver.ok("/push/phone"):
                    await anyio.sleep(0.02)
            [push] = receiver.ok("/push/phone")
            assert push.headers["Content-Encoding"] == "aes128gcm" and push.headers["TTL"] == "86400"
            assert push.headers["Urgency"] == "high"
            assert Vapid02.verify(push.headers["Authorization"])  # signature over the claims, key k
            assert f"k={public_key}" in push.headers["Authorization"]
            jwt = push.headers["Authorization"].split("t=")[1].split(",")[0]
            claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
            assert claims["aud"] == f"http://127.0.0.1:{receiver.port}" and claims["sub"] == "mailto:ops@example.org"
            payload = phone.decrypt(push.body)
            assert payload["title"].startswith("【火警】") and payload["alarm_id"] == "A1"
            assert payload["url"].startswith(f"{BASE}/-/plugins/app/a/") and payload["url"] in payload["body"]
            assert payload["tag"] == "firebus-A1" and payload["kind"] == "new"

            # The push service said 410 for the old browser: it is gone from the table.
            rows = await site.core.storage.fetchall("SELECT endpoint FROM notify_webpush_subscriptions")
            assert [r[0] for r in rows] == [phone.subscription["endpoint"]]

            r = await client.request("DELETE", f"{api}/subscriptions", json={"endpoint": receiver.url("/push/phone")},
                                     headers={"Authorization": f"Bearer {site.tokens['admin']}"})
            assert r.status_code == 200
            assert await site.core.storage.fetchall("SELECT endpoint FROM notify_webpush_subscriptions") == []
            r = await client.request("DELETE", f"{api}/subscriptions", json={"endpoint": "x"}, headers=wang)
            assert r.status_code == 404


async def test_vapid_keys_are_made_once_and_kept(tmp_path) -> None:
    keys = []
    for _ in range(2):
        async with open_site(tmp_path, extra_channels=WEBPUSH) as site:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"{site.url}/-/plugins/notify/webpush/key",
                                     headers={"Authorization": f"Bearer {site.tokens['wang']}"})
                keys.append(r.json()["public_key"])
    assert keys[0] == keys[1]
