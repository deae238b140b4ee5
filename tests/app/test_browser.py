"""The app in a real headless Chromium at phone width (Debian's chromium + chromedriver).

A duty officer of one unit signs in, the service worker installs and controls the page, the
manifest parses and its icons load; they see their unit's fire and not the other unit's,
acknowledge it from the app (the Web Push switch is offered: notify has a webpush channel), submit a hazard's rectification with a photo; then the network
goes offline (CDP ``Network.emulateNetworkConditions``) and a reload shows the last state with
the offline marker and its time.  Screenshots at 390 px go to FIREBUS_SCREENSHOT_DIR if set
(docs/img/app-*.png are made this way).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from firebus.core.web import serve
from firebus.sdk.testing.browser import chromium
from firebus.sdk import links

from .conftest import PASSWORD, VALUES, wait_until

pytestmark = pytest.mark.anyio

APP = "/-/plugins/app/"


def browser() -> webdriver.Chrome:
    return chromium(width=390, height=844, lang="zh-CN", mobile=True, console_log=True)


def network(d: webdriver.Chrome, offline: bool) -> None:
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def run(url: str, link: str, photo: Path, shots: Path) -> dict:
    seen: dict = {}
    d = browser()
    wait = WebDriverWait(d, 20, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
    js = d.execute_script
    at = ["sign in"]  # the step the browser is at, for a failure that says where it stopped
    try:
        d.get(url + APP)  # signed out: to the login, and back to the app after it
        wait.until(lambda d: "/login" in d.current_url)
        d.find_element(By.ID, "username").send_keys("duty_a")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-button").click()
        wait.until(lambda d: js("return !!navigator.serviceWorker.controller"))
        seen["sw_scope"] = d.execute_async_script(
            "var done = arguments[0]; navigator.serviceWorker.getRegistration('/-/plugins/app/')"
            ".then(function (r) { done(r && r.active ? [r.scope, r.active.state] : null); });")

        at[0] = "manifest"
        manifest = d.execute_cdp_cmd("Page.getAppManifest", {})
        seen["manifest_errors"] = manifest.get("errors")
        seen["manifest_url"] = manifest.get("url")
        seen["installability"] = [e.get("errorId") for e in
                                  d.execute_cdp_cmd("Page.getInstallabilityErrors", {}).get("installabilityErrors", [])]
        seen["icons"] = d.execute_async_script(
            "var done = arguments[0];"
            "fetch('/-/plugins/app/manifest.webmanifest', {credentials: 'same-origin'}).then(function (r) { return r.json(); })"
            ".then(function (m) { return Promise.all(m.icons.map(function (i) {"
            "  return fetch(i.src).then(function (r) { return r.blob(); }).then(createImageBitmap)"
            "   .then(function (b) { return [i.sizes, b.width + 'x' + b.height]; }); })); })"
            ".then(done, function (e) { done(String(e)); });")

        at[0] = "alarm list"
        # my alarms: the unit's fire, first, and nothing of the other unit
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.alarm[data-category=fire]"))
        seen["listed"] = js("return Array.from(document.querySelectorAll('a.alarm')).map(function (a) {"
                            " return [a.dataset.alarm, a.dataset.category, a.querySelector('.title').textContent]; });")
        seen["status_online"] = d.find_element(By.ID, "status").text
        # the notify plugin has a webpush channel and this browser has Web Push: the switch is offered
        seen["push"] = wait.until(lambda d: js("var b = document.getElementById('push-toggle'); return b && b.textContent;"))
        d.save_screenshot(str(shots / "app-alarms.png"))
        d.find_element(By.ID, "lang").click()  # the English switch, kept on the phone
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "a[data-tab=alarms]").text == "Alarms")
        seen["english"] = [wait.until(lambda d: js("var h = document.querySelector('#view h2');"
                                                   " return h && h.textContent.indexOf('My alarms') === 0 && h.textContent;")),
                           js("return localStorage.getItem('firebus.app.lang')")]
        d.find_element(By.ID, "lang").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "a[data-tab=alarms]").text == "报警")

        at[0] = "alarm detail"
        # the list re-renders on every stream event: click in one JS call, not through a stale handle
        click = "var e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;"
        wait.until(lambda d: js(click, "a.alarm[data-category=fire]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.detail button[data-action=ack]"))
        seen["buttons"] = [b.get_attribute("data-action") for b in d.find_elements(By.CSS_SELECTOR, "section.detail button")]
        d.save_screenshot(str(shots / "app-alarm.png"))
        wait.until(lambda d: js(click, "section.detail button[data-action=ack]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.detail[data-status=active_ack]"))

        at[0] = "hazards"
        # hazards: the assigned one is rectified with a photo from the app
        wait.until(lambda d: js(click, "a[data-tab=hazards]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.hazard[data-state=assigned] button[data-action=submit]"))
        seen["hazards"] = js("return Array.from(document.querySelectorAll('li.hazard .title')).map(function (e) {"
                             " return e.textContent; });")
        seen["hazard_where"] = d.find_element(By.CSS_SELECTOR, "li.hazard .where").text
        d.find_element(By.CSS_SELECTOR, "li.hazard input[name=evidence]").send_keys(str(photo))
        wait.until(lambda d: js("var i = document.querySelector('li.hazard img.thumb'); return i && !i.hidden;"))
        d.find_element(By.CSS_SELECTOR, "li.hazard input[name=note]").send_keys("已更换灭火器")
        d.save_screenshot(str(shots / "app-hazards.png"))
        d.find_element(By.CSS_SELECTOR, "li.hazard button[data-action=submit]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.hazard[data-state=submitted]"))

        wait.until(lambda d: js(click, "a[data-tab=patrol]"))
        seen["patrol_href"] = wait.until(lambda d: d.find_element(By.ID, "start-patrol")).get_attribute("href")
        wait.until(lambda d: js(click, "a[data-tab=reports]"))  # no reports plugin on this site: it says so
        seen["reports"] = wait.until(lambda d: js(
            "var h = document.querySelector('#view h2'), p = document.querySelector('#view p.empty');"
            " return h && h.textContent === '单位报告' && p && p.textContent;"))

        at[0] = "signed link"
        d.get(url + link)  # a push message's link, on a signed-in phone
        seen["link_page"] = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "section[data-alarm]")).text
        d.save_screenshot(str(shots / "app-link.png"))
        d.get(url + APP)

        at[0] = "offline reload"
        # back to the list: its answer (with the acknowledgement) is what the phone keeps
        wait.until(lambda d: js(click, "a[data-tab=alarms]"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.alarm[data-category=fire][data-status=active_ack]"))
        network(d, offline=True)
        d.refresh()
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-online") == "0")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "a.alarm[data-category=fire]"))
        seen["offline_status"] = d.find_element(By.ID, "status").text
        seen["offline_listed"] = js("return Array.from(document.querySelectorAll('a.alarm')).map(function (a) {"
                                    " return [a.dataset.alarm, a.dataset.status, a.querySelector('.title').textContent]; });")
        seen["offline_navigator"] = js("return navigator.onLine")
        d.save_screenshot(str(shots / "app-offline.png"))
        network(d, offline=False)
        seen["console"] = [e["message"] for e in d.get_log("browser")]
    except Exception as exc:
        d.save_screenshot(str(shots / "app-failure.png"))
        raise AssertionError(f"the browser stopped at step {at[0]!r}: {exc.__class__.__name__}: {exc}") from exc
    finally:
        d.quit()
    return seen


async def test_the_app_installs_acts_and_shows_the_last_state_offline(site, tmp_path) -> None:
    shots = Path(os.environ.get("FIREBUS_SCREENSHOT_DIR") or tmp_path)
    photo = tmp_path / "extinguisher.jpg"
    Image.new("RGB", (2400, 1800), (200, 40, 40)).save(photo, "JPEG", quality=95)  # a phone-sized photo
    VALUES["A1"]["smoke"] = VALUES["B1"]["smoke"] = True
    fire_a = await wait_until(lambda: site.open_alarm("A1"), what="the fire of unit A")
    fire_b = await wait_until(lambda: site.open_alarm("B1"), what="the fire of unit B")
    async with site.client("admin", base_url="http://panel/-/plugins/inspection/api") as c:
        for location, text in (("room-a", "灭火器压力不足"), ("room-b", "机房应急灯损坏")):
            r = await c.post("/hazards", json={"description": text, "location": location})
            assert r.status_code == 201, r.text
            r = await c.post(f"/hazards/{r.json()['id']}/actions", json={"action": "assign", "responsible": "duty_a"})
            assert r.status_code == 200, r.text
    link = links.link_path(links.sign(await site.core.secret("links"), fire_a.id, "duty_a", time.time() + 600))
    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, site.core, "127.0.0.1", 0)
        seen = await anyio.to_thread.run_sync(run, server.url, link, photo, shots)
        tg.cancel_scope.cancel()

    scope, state = seen["sw_scope"]
    assert scope.endswith(APP) and state == "activated"
    assert seen["manifest_errors"] == [] and seen["manifest_url"].endswith(APP + "manifest.webmanifest")
    assert not [e for e in seen["installability"] if "manifest" in e or "icon" in e or "worker" in e], seen["installability"]
    assert sorted(seen["icons"]) == [["192x192", "192x192"], ["512x512", "512x512"], ["512x512", "512x512"]]

    assert [x[0] for x in seen["listed"]] == [fire_a.id]  # unit B's fire is not the duty officer's
    assert fire_b.id not in str(seen["listed"]) and seen["listed"][0][1] == "fire"
    assert seen["status_online"].startswith("在线") and "最后更新" in seen["status_online"]
    assert seen["push"] == "开启推送通知"
    assert seen["english"] == ["My alarms (1)", "en"]
    assert {"ack", "silence", "verdict-real_fire", "verdict-false_alarm", "verdict-test"} <= set(seen["buttons"])
    acked = await site.core.alarms.get(fire_a.id)
    assert acked.acknowledged and acked.ack_by == "duty_a"
    assert not (await site.core.alarms.get(fire_b.id)).acknowledged

    assert seen["hazards"] == ["灭火器压力不足"]  # office B's hazard is not in the duty officer's scope
    from firebus.plugins.inspection import service_for

    hazards = {h["description"]: h for h in await service_for(site.core).hazards(None)}
    assert hazards["灭火器压力不足"]["state"] == "submitted" and hazards["机房应急灯损坏"]["state"] == "assigned"
    history = (await service_for(site.core).hazard(hazards["灭火器压力不足"]["id"]))["history"]
    assert history[-1]["action"] == "submit" and len(history[-1]["photos"]) == 1 and history[-1]["note"] == "已更换灭火器"
    assert seen["hazard_where"] == "一号厂房 · 配电室"
    assert "配电室烟感" in seen["link_page"] and "登录后处理" in seen["link_page"]
    assert seen["patrol_href"].endswith("/-/plugins/inspection/patrol?lang=zh")

    assert seen["reports"] == "本系统未启用报告功能。"
    # no script error and nothing the panel's CSP refused (no inline script or style in the app)
    assert not [m for m in seen["console"] if "Content Security Policy" in m or "Uncaught" in m], seen["console"]
    assert seen["offline_status"].startswith("离线") and "最后更新" in seen["offline_status"]
    assert [x[:2] for x in seen["offline_listed"]] == [[fire_a.id, "active_ack"]]
    assert seen["offline_listed"][0][2] == seen["listed"][0][2]  # the alarm's title, from the stored answer
