"""The app over HTTP against a real core: installability files (manifest, icons, service worker),
sign-in, the session the shell reads, and the signed alarm links (valid, tampered, expired)."""

from __future__ import annotations

import io
import json
import re
import time

import httpx
import pytest
from PIL import Image

from firebus.sdk import links

from .conftest import PASSWORD, VALUES, wait_until

pytestmark = pytest.mark.anyio
BASE = "/-/plugins/app/"


async def login(client: httpx.AsyncClient, name: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf": token, "next": BASE})
    assert r.status_code == 303, r.text


async def test_manifest_icons_and_service_worker_are_served_for_installing(site) -> None:
    async with site.client("duty_a") as c:
        r = await c.get(BASE + "manifest.webmanifest")
        assert r.status_code == 200 and r.headers["content-type"] == "application/manifest+json"
        m = json.loads(r.content)
        assert m["start_url"] == BASE and m["scope"] == BASE and m["display"] == "standalone"
        assert m["lang"] == "zh-CN" and m["name"] and m["short_name"]
        assert re.fullmatch(r"#[0-9a-f]{6}", m["theme_color"]) and re.fullmatch(r"#[0-9a-f]{6}", m["background_color"])
        sizes = {}
        for icon in m["icons"]:
            got = await c.get(icon["src"])
            assert got.status_code == 200 and got.headers["content-type"] == icon["type"] == "image/png"
            image = Image.open(io.BytesIO(got.content))
            assert image.format == "PNG" and f"{image.width}x{image.height}" == icon["sizes"]
            sizes.setdefault(icon["purpose"], set()).add(icon["sizes"])
        assert sizes == {"any": {"192x192", "512x512"}, "maskable": {"512x512"}}

        sw = await c.get(BASE + "sw.js")
        assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
        assert sw.headers["service-worker-allowed"] == BASE
        assert "no-cache" in sw.headers["cache-control"]  # a new release is picked up at the next check
        shell = await c.get(BASE)
        assert shell.status_code == 200 and 'rel="manifest"' in shell.text and 'type="module"' in shell.text
        # every file the service worker precaches exists (one missing one fails its install)
        listed = sw.text.split("const PRECACHE = [", 1)[1].split("];", 1)[0]
        precache = re.findall(r'"([\w.-]+\.(?:js|css|png))"', listed)
        assert len(precache) >= 12
        for name in precache:
            assert (await c.get(BASE + "static/" + name)).status_code == 200, name
        assert (await c.get(BASE + "static/make_icons.py")).status_code == 404  # only the listed files


async def test_the_shell_needs_sign_in_and_the_session_says_who_may_act(site) -> None:
    async with site.client() as c:
        r = await c.get(BASE, headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/-/plugins/app/")
        assert (await c.get(BASE + "api/session")).status_code == 403
        await login(c, "duty_a")
        s = (await c.get(BASE + "api/session")).json()
        assert (s["name"], s["role"], s["units"], s["can_act"]) == ("duty_a", "duty_officer", ["plant-a"], True)
        assert s["csrf"] and s["lang"] == "zh" and s["tz"] == "Asia/Shanghai"
        panel = (await c.get("/?lang=zh")).text
        assert 'href="/-/plugins/app/"' in panel and "手机应用" in panel
    async with site.client() as c:
        await login(c, "viewer_a")
        assert (await c.get(BASE + "api/session")).json()["can_act"] is False


async def _fire(site) -> str:
    VALUES["A1"]["smoke"] = True
    alarm = await wait_until(lambda: site.open_alarm("A1"), what="the fire alarm of detector A1")
    await wait_until(lambda: site.core.storage.fetchone("SELECT 1 FROM alarms WHERE id = ?", (alarm.id,)),
                     what="the alarm stored")
    return alarm.id


async def test_a_signed_link_shows_the_alarm_and_a_forged_or_expired_one_is_refused(site) -> None:
    alarm_id = await _fire(site)
    key = await site.core.secret("links")
    token = links.sign(key, alarm_id, "duty_a", time.time() + 3600)
    # without the core's public routes the link still works for a signed-in phone
    async with site.client() as c:
        r = await c.get(BASE + "a/" + token)
        assert r.status_code == 200, r.text
        assert 'data-alarm="' + alarm_id + '"' in r.text
        assert "火警" in r.text and "一号厂房 / 主楼 / 1F / 配电室" in r.text and "报警中·未确认" in r.text
        assert "配电室烟感" in r.text and "/login?next=" in r.text and "登录后处理" in r.text
        en = await c.get(BASE + "a/" + token + "?lang=en")
        assert "Fire" in en.text and "Active, unacknowledged" in en.text and "Sign in to act" in en.text

        tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        r = await c.get(BASE + "a/" + tampered)
        assert r.status_code == 403 and 'data-refused="bad"' in r.text and "链接无效" in r.text
        assert alarm_id not in r.text
        other = links.sign(b"k" * 32, alarm_id, "duty_a", time.time() + 3600)  # signed with another key
        assert (await c.get(BASE + "a/" + other)).status_code == 403
        expired = links.sign(key, alarm_id, "duty_a", time.time() - 5)
        r = await c.get(BASE + "a/" + expired + "?lang=en")
        assert r.status_code == 410 and "Link expired" in r.text and alarm_id not in r.text


async def test_a_signed_link_opens_without_signing_in(site) -> None:
    alarm_id = await _fire(site)
    token = links.sign(await site.core.secret("links"), alarm_id, "duty_a", time.time() + 3600)
    async with site.client() as c:
        r = await c.get(BASE + "a/" + token, headers={"accept": "text/html"})
        assert r.status_code == 200 and 'data-alarm="' + alarm_id + '"' in r.text
        assert (await c.get(BASE + "link.css")).status_code == 200  # the page's style, for the same reader
        r = await c.get(BASE + "a/" + token[:-2] + "xx", headers={"accept": "text/html"})
        assert r.status_code == 403 and "链接无效" in r.text
        assert (await c.get(BASE + "api/session")).status_code in (401, 403)  # the rest of the app stays closed
