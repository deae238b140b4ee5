"""The panel in a real headless Chromium (Debian's chromium + chromedriver, never a download).

Logs in, watches a simulated fire alarm appear live (no reload), acknowledges it,
opens the device page and sees the history chart and a live value change.
Set FIREBUS_SCREENSHOT_DIR to keep the screenshots (docs/img is made this way).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from pathlib import Path

import anyio
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from firebus.sdk.testing.browser import chromium
from firebus.core.retention import downsample
from firebus.core.storage import SQL_READING
from firebus.core.web import serve

from .conftest import PASSWORD, VALUES, wait_until

pytestmark = pytest.mark.anyio



def browser() -> webdriver.Chrome:
    return chromium(width=1200, height=860, lang="en-US")


async def seed_history(site, point_id: str, hours: float = 26) -> None:
    """A day of residual-current history (changes every 10 minutes), as the ingest path stores it."""
    now = time.time()
    rows = []
    for i in range(int(hours * 6)):
        ts = now - hours * 3600 + i * 600
        value = round(60 + 25 * math.sin(i / 9) + (90 if 100 <= i <= 104 else 0), 1)
        rows.append((point_id, int(ts * 1000), value, None))
    await site.core.storage.put(SQL_READING, rows)
    await site.core.storage.barrier()
    await downsample(site.core.storage, now=now, lookback_s=hours * 3600 + 7200)


def run_in_browser(url: str, device_a: str, device_b: str, rc_point: str, shots: Path) -> dict:
    seen: dict = {}
    driver = browser()
    # Live parts re-render: a handle found a moment ago may be stale; the wait retries.
    wait = WebDriverWait(driver, 30, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
    try:
        driver.get(f"{url}/login?lang=en")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: d.current_url.rstrip("/") == url and "No open alarms" in d.page_source)
        wait.until(lambda d: d.find_element(By.ID, "live").is_displayed())
        # Mark this page: if the alarm shows up while the mark survives, it came live, not by reload.
        driver.execute_script("window.__notReloaded = true;")
        VALUES["A1"]["smoke"] = True  # the simulated detector goes into alarm
        # The list re-renders on every event: read and click through single JS calls, not
        # element handles that a re-render makes stale.
        fire_row = "tr.row-fire[data-status=active_unack]"
        seen["row_text"] = wait.until(lambda d: d.execute_script(
            "var r = document.querySelector(arguments[0]); return r && r.innerText;", fire_row))
        seen["live"] = driver.execute_script("return window.__notReloaded === true;")
        seen["banner"] = driver.find_element(By.ID, "banner").text
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-unit] [data-count="alarm"]').text != "")
        seen["alarm_counts"] = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-count="alarm"]')]
        driver.save_screenshot(str(shots / "overview.png"))
        wait.until(lambda d: d.execute_script(
            "var b = document.querySelector(arguments[0] + ' button[data-action=ack]'); if (b) b.click(); return !!b;",
            fire_row))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.row-fire[data-status=active_ack]"))
        seen["acked"] = True

        driver.get(f"{url}/devices/{device_a}")
        Select(driver.find_element(By.ID, "chart-point")).select_by_value(rc_point)
        chart = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart svg polyline.line"))
        seen["chart_step"], seen["chart_points"], seen["thresholds"] = wait.until(lambda d: d.execute_script(
            "var s = document.querySelector('#chart svg');"
            " return s && [s.getAttribute('data-step'), Number(s.getAttribute('data-points')),"
            " Array.from(s.querySelectorAll('line.threshold')).map(function (l) { return l.dataset.threshold; })];"))
        VALUES["A1"]["rc"] = 123
        wait.until(lambda d: "123 mA" in d.find_element(By.CSS_SELECTOR, f'tr[data-point="{rc_point}"] .val').text)
        seen["live_value"] = True
        Select(driver.find_element(By.ID, "chart-range")).select_by_value("604800")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#chart svg").get_attribute("data-step") == "5m")
        seen["week_points"] = wait.until(lambda d: d.execute_script(
            "var s = document.querySelector('#chart svg'); return s && Number(s.getAttribute('data-points'));"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart svg polygon.band"))
        Select(driver.find_element(By.ID, "chart-range")).select_by_value("86400")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#chart svg").get_attribute("data-step") == "raw")
        # A live-updated time (rc, from the stream) and a server-rendered one (smoke, at page
        # load, same polls) are in the same zone: the site's, not the browser's.
        seen["times"] = driver.execute_script(
            "return Array.from(document.querySelectorAll('tr[data-point] .ts')).map(function (e) {"
            " return e.textContent; });")
        driver.set_window_size(1200, 1350)
        driver.save_screenshot(str(shots / "device.png"))
        del chart

        driver.get(f"{url}/?lang=zh")
        wait.until(lambda d: "当前报警" in d.page_source)
        seen["chinese"] = True
        driver.set_window_size(420, 860)  # a phone
        driver.get(f"{url}/alarms")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.row-fire"))
        seen["mobile_overflow"] = driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;")
        driver.save_screenshot(str(shots / "alarms-mobile.png"))
    finally:
        driver.quit()
    return seen


async def test_panel_in_a_real_browser(site, tmp_path: Path) -> None:
    shots = Path(os.environ.get("FIREBUS_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    rc_point = site.point("det-a", "rc")
    await seed_history(site, rc_point)
    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, site.core, "127.0.0.1", 0)
        seen = await anyio.to_thread.run_sync(
            run_in_browser, server.url, site.device("det-a"), site.device("det-b"), rc_point, shots
        )
        tg.cancel_scope.cancel()
    assert seen["live"], "the alarm must arrive over the event stream, not by a page reload"
    assert "Switch room A" in seen["row_text"] and "Plant A" in seen["row_text"]
    assert "Fire" in seen["banner"]
    assert "1" in seen["alarm_counts"]
    assert seen["acked"] and seen["live_value"] and seen["chinese"]
    stamps = [dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in seen["times"]]
    assert len(stamps) == 2 and abs((stamps[0] - stamps[1]).total_seconds()) < 120, seen["times"]
    assert seen["chart_step"] == "raw" and seen["chart_points"] > 100
    assert seen["thresholds"] == ["200", "300"], "the residual-current rule's pre-alarm and alarm levels"
    assert seen["week_points"] > 100
    assert not seen["mobile_overflow"], "the alarm list must fit a phone's width"
    alarm = next(a for a in site.core.alarms.open_alarms() if a.device_id == site.device("det-a"))
    assert alarm.acknowledged and alarm.ack_by == "admin"
    await wait_until(lambda: (shots / "device.png").exists())
