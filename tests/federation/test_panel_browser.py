"""The centre's panel in a real headless Chromium (Debian's chromium + chromedriver), end to end:
a real site core (federation plugin) raises a fire alarm, a real nats-server carries it, the
centre (`Centre` with `http=`, the server `firebus federation centre --http` runs) stores it in
a real PostgreSQL and serves the panel.  A town's duty officer signs in with the token, sees
only the town's sites, the fire first and red, acknowledges it from the page and watches the
site's answer arrive without a reload, is refused a reset the site does not take, switches
to English and signs out.  Set FIREBUS_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from firebus.plugins import federation
from firebus.plugins.federation.access import CentreRole, add_user
from firebus.plugins.federation.orgs import put_org
from firebus.plugins.federation.servers import free_port
from firebus.sdk.testing.browser import chromium
from firebus.sdk import AlarmCategory, ConditionReported, Severity
from firebus.sdk.testing.harness import panel_client, start_core

from .helpers import eventually, federated_site, query, running_centre

pytestmark = pytest.mark.anyio
RED = "rgb(211, 47, 47)"  # --fire, as on the site panel


def browser() -> webdriver.Chrome:
    return chromium(width=1280, height=900, lang="zh-CN")


async def other_sites(pg: str) -> str:
    """a2 (town A, a supervisory alarm newer than the fire) and b1 (street B, a fire), as ingested;
    the organisations; li, duty officer of town A (returns the token)."""
    now = time.time()
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        for site, alarm, cat, msg_zh in (("a2", "SUP-a2", "supervisory", "阀门关闭"), ("b1", "FIRE-b1", "fire", "火警")):
            await conn.execute("INSERT INTO journal (site_id, seq, ts, lane, type, subject, data) VALUES "
                               "(%s, 1, to_timestamp(%s), 'alarm', 'AlarmEvent', %s, '{}')", (site, now + 60, alarm))
            await conn.execute(
                "INSERT INTO alarms (site_id, seq, alarm_id, transition, category, severity, message, message_zh, "
                "status, ts) VALUES (%s, 1, %s, 'new', %s, '50', 'Valve', %s, 'active_unack', to_timestamp(%s))",
                (site, alarm, cat, msg_zh, now + 60))
        await put_org(conn, "county", "某县消防救援大队", "fire_brigade", name_en="County brigade")
        await put_org(conn, "town_a", "甲镇", "town", name_en="Town A", parent="county", sites=["school-01", "a2"])
        await put_org(conn, "street_b", "乙街道", "town", name_en="Street B", parent="county", sites=["b1"])
        return await add_user(conn, "li", CentreRole.DUTY_OFFICER, [], ["town_a"])


def new_fire_at_a2(pg: str) -> None:
    """A fire at a2 reaches the centre (as the ingest writes it) while the overview is open."""
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("INSERT INTO journal (site_id, seq, ts, lane, type, subject, data) VALUES "
                     "('a2', 2, now(), 'alarm', 'AlarmEvent', 'FIRE-a2', '{}')")
        conn.execute("INSERT INTO alarms (site_id, seq, alarm_id, transition, category, severity, message, "
                     "message_zh, status, ts) VALUES ('a2', 2, 'FIRE-a2', 'new', 'fire', '60', 'Fire', '火警', "
                     "'active_unack', now())")


def drive(url: str, pg: str, token: str, alarm_id: str, shots: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    d = browser()
    wait = WebDriverWait(d, 30, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))

    def js(script: str, *args: Any) -> Any:
        return d.execute_script(script, *args)

    try:
        # Sign in: the panel sends the browser to the form, and back where it was going.
        d.get(f"{url}/panel/")
        wait.until(lambda d: "/panel/sign-in" in d.current_url)
        seen["sign_in_text"] = d.find_element(By.ID, "sign-in-message").text
        d.find_element(By.ID, "token").send_keys(token)
        d.find_element(By.ID, "sign-in-button").click()
        wait.until(lambda d: d.current_url.endswith("/panel/") and d.find_elements(By.CSS_SELECTOR, "li.site"))
        seen["cookie"] = [(c["name"], c.get("httpOnly"), c.get("sameSite")) for c in d.get_cookies()]
        seen["overview_sites"] = js("return [...document.querySelectorAll('li.site')].map(e => e.dataset.site)")
        seen["fire_site"] = js("return [...document.querySelectorAll('li.site.has-fire')].map(e => e.dataset.site)")
        seen["fire_chip"] = js("const c = document.querySelector('li[data-site=\"school-01\"] .cat-fire');"
                               "return [c.textContent, getComputedStyle(c).backgroundColor]")
        seen["orgs"] = js("return [...document.querySelectorAll('li.org')].map(e => e.dataset.org)")
        d.save_screenshot(str(shots / "centre-overview.png"))
        # The overview refreshes itself: a new fire at a2 shows up without a reload.
        js("window.__notReloaded = true;")
        new_fire_at_a2(pg)
        wait.until(lambda d: js("return !!document.querySelector('li.site.has-fire[data-site=\"a2\"]')"))
        seen["overview_live"] = js("return [window.__notReloaded === true,"
                                   " document.getElementById('n-fire').textContent]")

        # Alarms: the fire first (the supervisory alarm is newer), red.
        d.find_element(By.LINK_TEXT, "报警").click()
        wait.until(lambda d: "/panel/alarms" in d.current_url and d.find_elements(By.CSS_SELECTOR, "tr.alarm"))
        seen["alarm_rows"] = js("return [...document.querySelectorAll('tr.alarm')]"
                                ".map(r => [r.dataset.site, r.dataset.category])")
        seen["fire_row"] = js("const r = document.querySelector('tr.alarm');"
                              "return [getComputedStyle(r.cells[0]).borderLeftColor,"
                              " getComputedStyle(r.querySelector('.cat')).backgroundColor]")
        d.save_screenshot(str(shots / "centre-alarms.png"))

        # A site outside the town: as if it did not exist.
        d.get(f"{url}/panel/sites/b1")
        seen["b1"] = d.find_element(By.ID, "error").text

        # The site page: acknowledge from the page; the answer comes in without a reload.
        d.get(f"{url}/panel/sites/school-01")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-alarm="{alarm_id}"] button[data-kind]'))
        js("window.__notReloaded = true; window.__flashes = [];"
           "new MutationObserver(() => { const f = document.getElementById('flash');"
           " if (f && !f.hidden && f.textContent) window.__flashes.push(f.textContent); })"
           ".observe(document.getElementById('live'), {childList: true, subtree: true, characterData: true});")
        js("document.querySelector(arguments[0]).click()", f'tr[data-alarm="{alarm_id}"] button[data-kind="acknowledge"]')
        seen["first_state"] = wait.until(lambda d: js(
            "const r = document.querySelector('tr.command[data-kind=\"acknowledge\"]'); return r && r.dataset.state"))
        wait.until(lambda d: js("const r = document.querySelector('tr.command[data-kind=\"acknowledge\"]');"
                                "return r && r.dataset.state === 'applied'"))
        seen["applied_text"] = js("return document.querySelector('tr.command[data-kind=\"acknowledge\"] .state')"
                                  ".parentElement.textContent")
        # The acknowledgement reaches the centre through the journal: the button goes, the status changes.
        seen["alarm_after"] = wait.until(lambda d: js(
            "const r = document.querySelector(arguments[0]);"
            "return r && !r.querySelector('button[data-kind=\"acknowledge\"]') && r.cells[2].textContent",
            f'tr[data-alarm="{alarm_id}"]'))
        js("document.querySelector(arguments[0]).click()", f'tr[data-alarm="{alarm_id}"] button[data-kind="clear"]')
        wait.until(lambda d: js("const r = document.querySelector('tr.command[data-kind=\"clear\"]');"
                                "return r && r.dataset.state === 'refused'"))
        seen["refused_text"] = js("return document.querySelector('tr.command[data-kind=\"clear\"] td:last-child')"
                                  ".textContent")
        seen["not_reloaded"] = js("return window.__notReloaded === true")
        seen["flashes"] = js("return [...new Set(window.__flashes)]")
        d.save_screenshot(str(shots / "centre-site.png"))
        # On a phone: nothing wider than the screen but the tables, which scroll in their own box.
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        seen["phone_width"] = js("return document.documentElement.scrollWidth")
        d.save_screenshot(str(shots / "centre-site-390.png"))
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

        # English: every word switches; the choice stays for the next page.
        d.find_element(By.ID, "lang").click()
        wait.until(lambda d: js("return document.documentElement.lang") == "en")
        seen["en_refused"] = js("return document.querySelector('tr.command[data-kind=\"clear\"] td:last-child')"
                                ".textContent")
        seen["en_applied"] = js("return document.querySelector('tr.command[data-kind=\"acknowledge\"] .state')"
                                ".textContent")
        seen["en_headings"] = js("return [...document.querySelectorAll('h2')].map(h => h.textContent)")
        d.get(f"{url}/panel/")
        seen["en_overview"] = d.find_element(By.TAG_NAME, "h1").text

        # Sign out: back to the form, and the panel needs a sign-in again.
        d.find_element(By.ID, "sign-out").click()
        wait.until(lambda d: "/panel/sign-in" in d.current_url)
        seen["signed_out"] = d.find_element(By.ID, "sign-in-message").text
        d.get(f"{url}/panel/alarms")
        wait.until(lambda d: "/panel/sign-in" in d.current_url)
        seen["after_sign_out"] = d.find_element(By.ID, "sign-in-message").text
    finally:
        d.quit()
    return seen


async def test_the_centre_panel_in_chromium(tmp_path, nats_server, pg_dsn) -> None:
    shots = Path(os.environ.get("FIREBUS_SCREENSHOT_DIR") or tmp_path)
    port = free_port()
    site_file = federated_site(tmp_path / "school-01.db", "school-01", nats_server.url,
                               extra="  commands: [acknowledge, silence]\n")
    async with running_centre(pg_dsn, nats_server.url, http=f"127.0.0.1:{port}") as centre, \
            start_core(site_file, plugins={"federation": federation}) as core:
        token = await other_sites(pg_dsn)
        core.bus.publish(ConditionReported(source="test", subject="room", key="fire", active=True,
                                           category=AlarmCategory.FIRE, severity=Severity.FIRE,
                                           message="Fire in room 101", message_zh="101 室火警"))
        rows = await eventually(lambda: query(pg_dsn, "SELECT alarm_id FROM alarms WHERE site_id = 'school-01' "
                                                      "AND transition = 'new'"), what="the fire at the centre")
        alarm_id = str(rows[0][0])
        await eventually(lambda: centre.http_server is not None and centre.http_server.started,
                         what="the centre's HTTP server")
        seen = await anyio.to_thread.run_sync(drive, f"http://127.0.0.1:{port}", pg_dsn, token,
                                              alarm_id, shots)

        async with panel_client(core) as site_panel:
            history = (await site_panel.get(f"/api/alarms/{alarm_id}")).json()["history"]

    assert seen["sign_in_text"] == "请先登录。"
    assert ("firebus_centre", True, "Strict") in seen["cookie"]
    assert sorted(seen["overview_sites"]) == ["a2", "school-01"]  # b1 is street B's
    assert seen["fire_site"] == ["school-01"] and seen["orgs"] == ["town_a"]  # nothing above the town
    assert seen["fire_chip"] == ["火警 1", RED]
    assert seen["overview_live"] == [True, "2有火警的站点"]
    # both fires first (newest raised first), then the supervisory alarm, newer than the first fire
    assert seen["alarm_rows"] == [["a2", "fire"], ["school-01", "fire"], ["a2", "supervisory"]]
    assert seen["fire_row"] == [RED, RED]
    assert seen["b1"] == "没有此站点，或不在您的范围内。"
    assert seen["first_state"] in ("sent", "applied")  # pending, unless the site answered within one poll
    # The page says at once that it is submitting; "submitted, waiting for the site" shows only until the answer.
    assert "正在提交…" in seen["flashes"] and set(seen["flashes"]) <= {"正在提交…", "已提交确认命令，等待站点回复。",
                                                                   "已提交复位命令，等待站点回复。"}
    assert "站点已执行" in seen["applied_text"] and "报警中·已确认" in seen["applied_text"]
    assert seen["alarm_after"] == "报警中·已确认"
    assert "站点已拒绝" in seen["refused_text"] and "站点不接受中心的远程复位" in seen["refused_text"]
    assert seen["not_reloaded"]
    assert seen["phone_width"] <= 390
    assert "Refused by the site" in seen["en_refused"] and "the site does not accept clear from the centre" in \
        seen["en_refused"]
    assert seen["en_applied"] == "Applied by the site"
    assert seen["en_headings"] == ["Open alarms", "Commands", "Latest state (points)"]
    assert seen["en_overview"] == "Overview"
    assert seen["signed_out"] == "You have signed out." and seen["after_sign_out"] == "Please sign in."
    # At the site: the acknowledgement names the centre user, as the API's does.
    assert [(h["actor_kind"], h["actor"]) for h in history if h["transition"] == "acknowledged"] == \
        [("user", "centre:li")]
