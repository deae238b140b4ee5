"""The supervision pages in a real headless Chromium (Debian's chromium + chromedriver): a fire
inspector signs in, reads the glance table (sorted by a click) and the charts, urges a unit
through the page's form; the unit's duty officer answers it on the phone-width page.
Set FIREBUS_SCREENSHOT_DIR to keep the screenshots (docs/img/supervision-*.png are made so)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from firebus.sdk import AlarmCategory, Severity

from ..web.test_browser import browser
from .conftest import PASSWORD, START, Site, open_site, wait_until

pytestmark = pytest.mark.anyio
DAY = 86400.0

#: the alarms of the demo history, every 4th day: (hour, unit, location, category) by day
def day_alarms(day: int) -> list[tuple[float, str, str, AlarmCategory]]:
    hour = (2, 10, 11, 14, 19, 21, 23)[day % 7] + (day % 3)  # minutes apart: each is acknowledged on its own time
    return [
        (hour, "school", "s-kitchen", AlarmCategory.FIRE if day % 12 == 0 else AlarmCategory.ELECTRICAL_PRE_ALARM),
        (hour + 0.05, "mall", "m-food", AlarmCategory.ELECTRICAL_ALARM if day % 8 else AlarmCategory.ELECTRICAL_PRE_ALARM),
        (hour + 0.1, "factory", "f-switch", AlarmCategory.ELECTRICAL_PRE_ALARM),
    ]


async def seed(site: Site, begin: float) -> None:
    """Twelve weeks of alarms at three units, acknowledged after 40–120 s (the factory's after
    about 7 minutes), most of them cleared; two stored scores; two hazards and a patrol."""
    engine = site.core.alarms
    for day in range(0, 84, 4):
        raised = []
        for hour, unit, loc, cat in day_alarms(day):
            await site.clock.advance_to(max(site.clock.time(), begin + day * DAY + hour * 3600))
            subject = f"d{day}-{unit}"
            sev = Severity.FIRE if cat is AlarmCategory.FIRE else Severity.ALARM
            site.condition(subject, True, unit=unit, location=loc, category=cat, severity=sev)
            raised.append((subject, unit, loc, cat))
        await site.settle()
        alarms = {s: await wait_until(lambda s=s: site.alarm_of(s)) for s, *_ in raised}
        await site.clock.advance(40 + 20 * (day % 5))
        for s, unit, *_ in raised:
            if unit != "factory":
                await engine.acknowledge(alarms[s].id, "duty")
        await site.clock.advance(400)
        await engine.acknowledge(alarms[f"d{day}-factory"].id, "duty")
        for s, unit, loc, cat in raised:
            if day % 20 or unit != "mall":  # a few stay active
                site.condition(s, False, unit=unit, location=loc, category=cat)
    for i, (unit, grade, score) in enumerate((("school", "B", 82.4), ("mall", "D", 54.0))):
        await site.core.storage.execute(
            "INSERT INTO report_files (id, schedule, unit_id, unit_key, period, period_start, period_end, grade, score, "
            "created, files) VALUES (?, 'monthly', ?, ?, '2026-11', ?, ?, ?, ?, ?, '{}')",
            (f"r{i}", site.place(unit), unit, START - 30 * DAY, START - 9 * 3600, grade, score, START - 8 * 3600))
    async with site.client("manager_school", "inspection") as c:
        for desc in ("extinguisher missing", "fire door wedged open"):
            assert (await c.post("/api/hazards", json={"description": desc, "location": "s-kitchen",
                                                       "deadline": site.clock.time() + 3600})).status_code == 201
        assert (await c.post("/api/records", json={"id": "r-1", "checkpoint": "cp-s", "ts": site.clock.time() - 600,
                                                   "results": [{"item": "extinguisher", "result": "fault"}]})).status_code == 201
    await site.clock.advance(7200)
    await site.state.aggregator.refresh()


def run(url: str, shots: Path) -> dict:
    seen: dict = {}
    d = browser()
    wait = WebDriverWait(d, 20, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))

    def login(name: str, target: str) -> None:
        d.delete_all_cookies()
        d.get(f"{url}{target}")
        wait.until(lambda d: "/login" in d.current_url)
        d.find_element(By.ID, "username").send_keys(name)
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        d.find_element(By.ID, "login-button").click()
        wait.until(lambda d: "/-/plugins/supervision" in d.current_url)

    def shot(name: str, width: int) -> None:
        # the whole page at this width, as a phone or a control-room screen shows it when scrolled
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600})
        height = d.execute_script("return document.documentElement.scrollHeight")
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": width < 600})
        d.save_screenshot(str(shots / f"supervision-{name}-{width}.png"))
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    base = "/-/plugins/supervision"
    try:
        login("county", f"{base}/?lang=en")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.glance tbody tr"))
        d.find_element(By.LINK_TEXT, "Rating").click()  # sort by rating, worst first
        wait.until(lambda d: "sort=grade" in d.current_url)
        seen["order"] = [r.get_attribute("data-unit") for r in d.find_elements(By.CSS_SELECTOR, "table.glance tbody tr")]
        seen["dots"] = len(d.find_elements(By.CSS_SELECTOR, "svg.map circle"))
        seen["unplaced"] = d.find_element(By.CSS_SELECTOR, "section.map").text
        shot("glance", 1400)
        shot("glance", 390)
        d.get(f"{url}{base}/where?lang=en")
        seen["heat_cells"] = len(d.find_elements(By.CSS_SELECTOR, "svg.heat rect"))
        shot("where", 1400)
        shot("where", 390)
        d.get(f"{url}{base}/urges?lang=zh")
        d.set_window_size(390, 900)
        form = wait.until(lambda d: d.find_element(By.ID, "urge-form"))
        form.find_element(By.NAME, "text").send_keys("厨房灭火器缺失，请于今日内整改并回复")
        form.find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.urge.s-status_open"))
        login("duty_school", f"{base}/urges?lang=zh")
        answer = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "form.answer"))
        shot("urges", 390)
        answer.find_element(By.NAME, "text").send_keys("已补充灭火器 2 具")
        answer.find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.urge.s-status_answered"))
        seen["answered"] = d.find_element(By.CSS_SELECTOR, "article.urge").text
    finally:
        d.quit()
    return seen


async def test_pages_in_chromium(tmp_path, hook) -> None:
    shots = Path(os.environ.get("FIREBUS_SCREENSHOT_DIR") or tmp_path)
    begin = START - 84 * DAY
    async with open_site(tmp_path / "fb.db", hook, start=begin) as site:
        await seed(site, begin)
        async with site.http() as url:
            seen = await anyio.to_thread.run_sync(run, url, shots)
        urges = await site.state.urges.list(None)
    assert seen["order"] == ["mall", "school", "factory"]  # D, B, then not assessed
    assert seen["dots"] == 2 and "Dongfang Factory" in seen["unplaced"]
    assert seen["heat_cells"] == 3 * 7 * 24
    assert "已补充灭火器" in seen["answered"] and "已回复" in seen["answered"]
    assert [(u["unit"], u["by"], u["status"], u["answered_by"]) for u in urges] == [
        ("school", "county", "answered", "duty_school")]
