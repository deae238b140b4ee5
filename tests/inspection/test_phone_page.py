"""The patrol page in a real headless Chromium at phone size (Debian's chromium + chromedriver).

A duty officer (not a system role) logs in, sees the open task, types a label's code (headless
Chromium has no camera or BarcodeDetector: the page says so and the typed code is the fallback),
records a fault with a photo, then goes offline, records the second checkpoint from the cached
checkpoint list, and the queued record is sent once the network is back: the task completes.
The unit manager then assigns the hazard on the board, submits the rectification with a photo and
closes it.
Set FIREBUS_SCREENSHOT_DIR to keep the screenshots (docs/img/inspection-*.png are made this way).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from firebus.sdk.testing.browser import chromium
from firebus.core.web import serve
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import PASSWORD, open_site

pytestmark = pytest.mark.anyio

SECTION = """
inspection:
  checkpoints:
    - {key: cp-a1, name: Switch room A, location: room-a, tags: [{kind: qr, code: FB-A1}], items: [extinguisher, fire_door]}
    - {key: cp-a2, name: Pump room A, location: pump-a, tags: [{kind: qr, code: FB-A2}], items: [pump]}
  plans:
    - {key: shift-a, name: Shift patrol A, checkpoints: [cp-a1, cp-a2], schedule: {every: 24h, at: "00:00"}}
"""


def browser() -> webdriver.Chrome:
    return chromium(width=412, height=915, lang="en-US")


def run(url: str, photo: Path, shots: Path) -> dict:
    seen: dict = {}
    d = browser()
    wait = WebDriverWait(d, 20, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
    js = d.execute_script
    try:
        d.get(f"{url}/-/plugins/inspection/patrol?lang=en")  # signed out: to the login, and back after it
        wait.until(lambda d: "/login" in d.current_url)
        d.find_element(By.ID, "username").send_keys("duty_a")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-button").click()
        wait.until(lambda d: js("return !!document.querySelector('[data-checkpoint=cp-a1].todo')"))
        seen["task"] = d.find_element(By.CSS_SELECTOR, ".task .title").text
        d.find_element(By.ID, "scan-qr").click()
        seen["scan_note"] = wait.until(lambda d: d.find_element(By.ID, "note-line").text or
                                       (js("return !!document.getElementById('video')") and "camera"))
        d.find_element(By.ID, "code").send_keys("FB-A1")
        d.find_element(By.CSS_SELECTOR, "#manual button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form#record fieldset[data-item=extinguisher]"))
        d.find_element(By.CSS_SELECTOR, 'input[name="r-extinguisher"][value="fault"]').click()
        d.find_element(By.CSS_SELECTOR, 'input[name="n-extinguisher"]').send_keys("gauge in the red")
        d.find_element(By.ID, "photo").send_keys(str(photo))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thumbs img"))
        d.save_screenshot(str(shots / "inspection-patrol.png"))
        d.find_element(By.ID, "submit").click()
        wait.until(lambda d: js("return localStorage.getItem(arguments[0])", "firebus.inspection.queue.duty_a") == "[]")
        wait.until(lambda d: js("return !!document.querySelector('[data-checkpoint=cp-a1].done')"))
        seen["first_sent"] = True

        d.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        d.find_element(By.ID, "code").send_keys("FB-A2")
        d.find_element(By.CSS_SELECTOR, "#manual button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "form#record fieldset[data-item=pump]"))
        d.find_element(By.ID, "submit").click()
        wait.until(lambda d: d.find_element(By.ID, "net").get_attribute("data-pending") == "1")
        seen["queued"] = js("return JSON.parse(localStorage.getItem(arguments[0])).length",
                            "firebus.inspection.queue.duty_a")
        d.save_screenshot(str(shots / "inspection-patrol-offline.png"))
        seen["offline_until"] = time.time()
        d.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
        js("window.firebusFlush()")
        wait.until(lambda d: d.find_element(By.ID, "net").get_attribute("data-pending") == "0")
        seen["flushed"] = True

        d.get(f"{url}/-/plugins/inspection/hazards?lang=en")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-state=open]"))
        seen["board"] = d.find_element(By.CSS_SELECTOR, "table.board").text
        # the unit manager assigns it from the board (the page's own call, with the session's CSRF token)
        d.delete_all_cookies()
        d.get(f"{url}/-/plugins/inspection/hazards?lang=en")
        wait.until(lambda d: "/login" in d.current_url)
        d.find_element(By.ID, "username").send_keys("manager_a")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-state=open] button[data-action=assign]"))
        d.find_element(By.CSS_SELECTOR, "tr[data-state=open] input[name=responsible]").send_keys("Zhang Wei")
        d.save_screenshot(str(shots / "inspection-hazards.png"))
        d.find_element(By.CSS_SELECTOR, "tr[data-state=open] button[data-action=assign]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-state=assigned]"))
        seen["assigned_row"] = d.find_element(By.CSS_SELECTOR, "tr[data-state=assigned]").text
        # rectified: a photo of the new extinguisher, submitted, then verified and closed
        d.find_element(By.CSS_SELECTOR, "tr[data-state=assigned] input[name=evidence]").send_keys(str(photo))
        d.find_element(By.CSS_SELECTOR, "tr[data-state=assigned] button[data-action=submit]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-state=submitted] button[data-action=verify]"))
        d.find_element(By.CSS_SELECTOR, "tr[data-state=submitted] button[data-action=verify]").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-state=closed]"))
    finally:
        d.quit()
    return seen


async def test_phone_page_records_online_and_offline(tmp_path) -> None:
    photo = tmp_path / "door.jpg"
    Image.new("RGB", (2400, 1800), (200, 40, 40)).save(photo, "JPEG", quality=95)  # a phone-sized photo
    assert photo.stat().st_size > 60_000
    shots = Path(os.environ.get("FIREBUS_SCREENSHOT_DIR") or tmp_path)
    async with open_site(tmp_path / "fb.db", SECTION, start=time.time()) as site:
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, site.core, "127.0.0.1", 0)
            seen = await anyio.to_thread.run_sync(run, server.url, photo, shots)
            tg.cancel_scope.cancel()
        assert "Shift patrol A" in seen["task"]
        assert seen["scan_note"] == "camera" or "cannot scan" in seen["scan_note"]
        assert seen["queued"] == 1 and seen["flushed"]
        records = await site.service.records(None, 0, time.time() + 60)
        assert [r["checkpoint"] for r in records] == ["cp-a1", "cp-a2"]
        first, second = records
        assert first["user"] == "duty_a" and first["method"] == "manual"
        assert {r["item"]: r["result"] for r in first["results"]} == {"extinguisher": "fault", "fire_door": "normal"}
        assert len(first["photos"]) == 1
        kind, data, _ = await site.service.photo(first["photos"][0])
        assert kind == "image/jpeg" and 0 < len(data) <= 60_000
        assert second["ts"] < seen["offline_until"]  # made offline, kept its time when sent later
        tasks = await site.service.list_tasks(None, None, None, None)
        assert [t["status"] for t in tasks] == ["done"]
        hazards = await site.service.hazards(None)
        assert [(h["description"], h["state"], h["responsible"]) for h in hazards] == [
            ("gauge in the red", "closed", "Zhang Wei")]
        assert "Zhang Wei" in seen["assigned_row"]
        history = (await site.service.hazard(hazards[0]["id"]))["history"]
        assert [x["action"] for x in history] == ["open", "assign", "submit", "verify"]
        evidence = history[2]["photos"]
        assert len(evidence) == 1 and len((await site.service.photo(evidence[0]))[1]) <= 60_000
        assert "gauge in the red" in seen["board"]
