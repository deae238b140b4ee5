"""The centre's supervision panel over HTTP: real PostgreSQL, the centre's own Starlette app.

Four sites have replicated into the centre (rows written as the ingest writes them): a1 and
a2 in town A, b1 in street B (both under the county brigade), x9 under no organisation.
li (duty officer of town A) and sam (supervisor of town A) sign in with their tokens; the
browser test (test_panel_browser.py) drives the same pages in Chromium end to end.
"""

from __future__ import annotations

import re
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import psycopg
import pytest

from firebus.plugins.federation import panel
from firebus.plugins.federation.access import CentreRole, add_user
from firebus.plugins.federation.api import create_app
from firebus.plugins.federation.centre import Centre, CentreConfig
from firebus.plugins.federation.desk import CommandDesk
from firebus.plugins.federation.orgs import put_org

pytestmark = pytest.mark.anyio

TREE = [  # (key, name, name_en, kind, parent, sites)
    ("county_brigade", "某县消防救援大队", "County fire and rescue brigade", "fire_brigade", None, []),
    ("town_a", "甲镇", "Town A", "town", "county_brigade", ["a1", "a2"]),
    ("street_b", "乙街道", "Street B", "town", "county_brigade", ["b1"]),
]
#: (site, seq, alarm_id, category, status, message, message_zh, seconds before the test seeds them)
ALARMS = [
    ("a1", 1, "SUP-a1", "supervisory", "active_unack", "Valve closed", "阀门关闭", 30),
    ("a2", 1, "FIRE-a2", "fire", "active_unack", "Fire in the kitchen", "厨房火警", 600),
    ("a2", 2, "FLT-a2", "fault", "active_unack", "Detector fault", "探测器故障", 500),
    ("a2", 3, "FLT-a2", "fault", "cleared_ack", "Detector fault", "探测器故障", 400),  # closed: not open
    ("a2", 4, "FLT2-a2", "fault", "active_unack", "Loop fault", "回路故障", 200),
    ("b1", 1, "FIRE-b1", "fire", "active_unack", "Fire", "火警", 100),
    ("x9", 1, "FIRE-x9", "fire", "active_unack", "Fire", "火警", 3600),  # silent for an hour
]


async def seed(pg: str) -> None:
    now = time.time()  # at the test, not at collection: the ages decide the link state shown
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        for site, seq, alarm, cat, status, msg, msg_zh, ago in ALARMS:
            ts = now - ago
            await conn.execute("INSERT INTO journal (site_id, seq, ts, lane, type, subject, data) VALUES "
                               "(%s, %s, to_timestamp(%s), 'alarm', 'AlarmEvent', %s, '{}')", (site, seq, ts, alarm))
            await conn.execute(
                "INSERT INTO alarms (site_id, seq, alarm_id, transition, category, severity, device_id, message, "
                "message_zh, status, ts) VALUES (%s, %s, %s, 'new', %s, '60', 'd1', %s, %s, %s, to_timestamp(%s))",
                (site, seq, alarm, cat, msg, msg_zh, status, ts))
        await conn.execute("INSERT INTO latest_state (site_id, point_id, device_id, point_class, num, vts, seq) VALUES "
                           "('a2', 'pt-temp', 'd1', 'temperature', 21.5, to_timestamp(%s), 9)", (now - 5,))
        for key, name, name_en, kind, parent, sites in TREE:
            await put_org(conn, key, name, kind, name_en=name_en, parent=parent, sites=sites)


@asynccontextmanager
async def centre(pg: str) -> AsyncIterator[tuple[CommandDesk, httpx.AsyncClient, dict[str, str]]]:
    await Centre(CentreConfig(pg=pg, nats=[])).migrate()
    await seed(pg)
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        tokens = {"li": await add_user(conn, "li", CentreRole.DUTY_OFFICER, [], ["town_a"]),
                  "sam": await add_user(conn, "sam", CentreRole.SUPERVISOR, [], ["town_a"]),
                  "root": await add_user(conn, "root", CentreRole.ADMIN, [])}
    desk = CommandDesk(pg)  # no NATS: a command stays unsent ("pending") until a result row is written
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(desk)), base_url="http://centre")
    try:
        yield desk, client, tokens
    finally:
        await client.aclose()
        await desk.close()


async def sign_in(client: httpx.AsyncClient, token: str, nxt: str = "/panel/") -> httpx.Response:
    client.cookies.clear()
    return await client.post("/panel/sign-in", data={"token": token, "next": nxt})


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{32})"', page)
    assert found, page[:500]
    return found.group(1)


def sites_in(page: str) -> list[str]:
    return re.findall(r'<li class="site[^"]*" data-site="([^"]+)"', page)


def alarm_rows(page: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<tr class="alarm row-(\S+) st-\S+" id="alarm-([^"]+)" data-site="([^"]+)"', page)


async def test_sign_in_scope_order_language_and_errors(pg_dsn) -> None:
    async with centre(pg_dsn) as (_, client, tokens):
        # Not signed in: the sign-in page, with where to go back to; the token never in a URL.
        r = await client.get("/panel/alarms?site=a1")
        assert r.status_code == 303
        assert r.headers["location"] == "/panel/sign-in?m=needed&next=%2Fpanel%2Falarms%3Fsite%3Da1"
        page = (await client.get(r.headers["location"])).text
        assert "请先登录。" in page and 'name="next" value="/panel/alarms?site=a1"' in page
        assert (await client.get("/")).headers["location"] == "/panel/"

        bad = await sign_in(client, "fbc_not-a-token")
        assert bad.status_code == 401 and "令牌无效，请核对后重试。" in bad.text and "set-cookie" not in bad.headers

        r = await sign_in(client, tokens["li"], "/panel/alarms")
        assert r.status_code == 303 and r.headers["location"] == "/panel/alarms"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{panel.COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie \
            and "Path=/" in cookie, cookie
        assert tokens["li"] not in r.headers["location"]
        # An open redirect through next is refused.
        assert (await sign_in(client, tokens["li"], "https://evil.example/")).headers["location"] == "/panel/"

        # Overview, in Chinese by default: town A's sites only, under the tree, the fire site marked.
        page = (await client.get("/panel/")).text
        assert '<html lang="zh-CN">' in page and "总览" in page and "值班员" in page and "甲镇" in page
        assert sites_in(page) == ["a1", "a2"]
        assert '<li class="site has-fire" data-site="a2">' in page
        a2 = page[page.index('data-site="a2"'):].split("</li>")[0]
        # fire first, then the other categories; the closed fault is not counted
        assert re.findall(r'data-category="(\w+)">[^<]+<b>(\d+)</b>', a2) == [("fire", "1"), ("fault", "1")], a2
        assert 'id="n-fire"><b>1</b>' in page and 'id="n-open"><b>3</b>' in page and 'id="n-sites"><b>2</b>' in page

        # Alarms: fire first though the supervisory alarm is newer; b1, x9 (out of scope) absent.
        page = (await client.get("/panel/alarms")).text
        assert alarm_rows(page) == [("fire", "FIRE-a2", "a2"), ("supervisory", "SUP-a1", "a1"),
                                    ("fault", "FLT2-a2", "a2")]
        assert 'href="/panel/sites/a2#alarm-FIRE-a2"' in page and "厨房火警" in page
        assert alarm_rows((await client.get("/panel/alarms?category=fire")).text) == [("fire", "FIRE-a2", "a2")]
        assert alarm_rows((await client.get("/panel/alarms?site=a1")).text) == [("supervisory", "SUP-a1", "a1")]
        assert alarm_rows((await client.get("/panel/alarms?site=b1")).text) == []
        assert alarm_rows((await client.get("/panel/alarms?org=street_b")).text) == []
        assert len(alarm_rows((await client.get("/panel/alarms?org=town_a")).text)) == 3
        part = await client.get("/panel/alarms?part=1")
        assert part.status_code == 200 and "<html" not in part.text and len(alarm_rows(part.text)) == 3

        # Out of scope is 404, as in the API, for the page and its live part; so is a site never heard of.
        for path in ("/panel/sites/b1", "/panel/sites/x9", "/panel/sites/nosuch", "/panel/sites/b1?part=1"):
            r = await client.get(path)
            assert r.status_code == 404 and "没有此站点，或不在您的范围内。" in r.text, path
            assert "Traceback" not in r.text and "FIRE-b1" not in r.text
        assert (await client.get("/panel/no-such-page")).status_code == 404

        # The site page: open alarms with the buttons that apply, the point's value.
        page = (await client.get("/panel/sites/a2")).text
        assert [r[1] for r in alarm_rows(page)] == ["FIRE-a2", "FLT2-a2"]
        assert 'data-kind="acknowledge"' in page and 'data-kind="clear"' in page and "pt-temp" in page
        assert "21.5" in page and "暂无命令。" in page

        # English, kept in a cookie; the switch keeps the filters.
        page = (await client.get("/panel/alarms?category=fire&lang=en")).text
        assert '<html lang="en">' in page and "Overview" in page and "Kitchen" not in page and \
            "Fire in the kitchen" in page and "Duty officer" in page
        assert 'href="/panel/alarms?category=fire&amp;lang=zh"' in page
        assert "Overview" in (await client.get("/panel/")).text
        await client.get("/panel/?lang=zh")

        # A supervisor reads but sends nothing.
        await sign_in(client, tokens["sam"])
        page = (await client.get("/panel/sites/a2")).text
        assert "您的角色只能查看，不能发送命令。" in page and 'data-kind="acknowledge"' not in page
        r = await client.post("/panel/sites/a2/alarms/FIRE-a2/commands", data={"kind": "acknowledge",
                                                                               "csrf": csrf(page)})
        assert r.status_code == 403 and "supervisor 角色不能向站点发送命令" in r.text

        # An admin sees every site (the tree in key order: street B, town A); x9 outside every organisation.
        await sign_in(client, tokens["root"])
        page = (await client.get("/panel/")).text
        assert sites_in(page) == ["b1", "a1", "a2", "x9"] and "不属于您所辖组织的站点" in page
        links = dict(re.findall(r'data-site="(\w+)">.*?<span class="link (\w+)"', page))
        assert links == {"b1": "up", "a1": "up", "a2": "up", "x9": "silent"}, links
        assert "已 60 分钟无数据" in page and 'id="n-silent"><b>1</b>' in page

        # The token replaced (user add again): the cookie no longer signs in; back to the form, told why.
        await sign_in(client, tokens["li"])
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await add_user(conn, "li", CentreRole.DUTY_OFFICER, [], ["town_a"])
        r = await client.get("/panel/sites/a2")
        assert r.status_code == 303 and r.headers["location"] == "/panel/sign-in?m=expired&next=%2Fpanel%2Fsites%2Fa2"
        assert "Max-Age=0" in r.headers["set-cookie"] and "登录已失效" in (await client.get(r.headers["location"])).text
        client.cookies.set(panel.COOKIE, tokens["li"])  # the live part: 401, and the script goes to the form
        part = await client.get("/panel/?part=1")
        assert part.status_code == 401 and part.json()["error"]["code"] == "unauthorized"
        client.cookies.set(panel.COOKIE, tokens["li"])  # a command form posted with it: nothing sent, sign in
        r = await client.post("/panel/sites/a2/alarms/FIRE-a2/commands", data={"kind": "acknowledge", "csrf": "x"})
        assert r.headers["location"] == "/panel/sign-in?m=expired&next=%2Fpanel%2Fsites%2Fa2"

        # Sign-out removes the cookie.
        await sign_in(client, tokens["root"])
        page = (await client.get("/panel/")).text
        r = await client.post("/panel/sign-out", data={"csrf": csrf(page)})
        assert r.status_code == 303 and r.headers["location"] == "/panel/sign-in?m=signed_out"
        assert (await client.get("/panel/")).status_code == 303


async def test_a_command_from_the_page_is_pending_then_shows_the_sites_answer(pg_dsn) -> None:
    async with centre(pg_dsn) as (_, client, tokens):
        await sign_in(client, tokens["li"])
        page = (await client.get("/panel/sites/a2")).text
        url = "/panel/sites/a2/alarms/FIRE-a2/commands"
        # Anti-forgery: the page's value, and a same-site Origin.
        assert (await client.post(url, data={"kind": "acknowledge", "csrf": "0" * 32})).status_code == 403
        assert (await client.post(url, data={"kind": "acknowledge", "csrf": csrf(page)},
                                  headers={"origin": "http://evil.example"})).status_code == 403
        r = await client.post(url, data={"kind": "acknowledge", "note": "到场核实", "csrf": csrf(page)},
                              headers={"accept": "application/json", "origin": "http://centre"})
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["state"] == "unsent" and sent["message"] == "已提交确认命令，等待站点回复。"
        rows = await (await psycopg.AsyncConnection.connect(pg_dsn)).execute(
            "SELECT site_id, alarm_id, kind, note, issued_by FROM commands WHERE id = %s", (sent["id"],))
        assert await rows.fetchall() == [("a2", "FIRE-a2", "acknowledge", "到场核实", "li")]

        part = (await client.get("/panel/sites/a2?part=1")).text
        assert f'id="cmd-{sent["id"]}" data-state="unsent"' in part and "待发出（等待 NATS）" in part
        assert 'data-pending=1' in part  # the script polls every second while it waits

        # The site answers (as the results consumer stores it): the page shows the result.
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO command_results (command_id, site_id, outcome, reason, message, message_zh, "
                "alarm_status, at) VALUES (%s, 'a2', 'applied', NULL, '', '', 'active_ack', now())", (sent["id"],))
        part = (await client.get("/panel/sites/a2?part=1")).text
        assert 'data-state="applied"' in part and "站点已执行" in part and "报警中·已确认" in part
        assert "data-pending" not in part

        # Without the script: a form post, then back to the page; a refusal in the page's words.
        r = await client.post(url, data={"kind": "clear", "csrf": csrf(page)})
        assert r.status_code == 303 and r.headers["location"].startswith("/panel/sites/a2#cmd-")
        cid = r.headers["location"].split("#cmd-")[1]
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO command_results (command_id, site_id, outcome, reason, message, message_zh, "
                "alarm_status, at) VALUES (%s, 'a2', 'refused', 'not_permitted', "
                "'the site does not accept clear from the centre', '站点不接受中心的远程复位', 'active_ack', now())",
                (cid,))
        part = (await client.get("/panel/sites/a2?part=1&lang=en")).text
        assert f'id="cmd-{cid}" data-state="refused"' in part and "Refused by the site" in part
        assert "the site does not accept clear from the centre" in part
        bad = await client.post(url, data={"kind": "reset", "csrf": csrf(page)}, headers={"accept": "application/json"})
        assert bad.status_code == 400 and "kind" in bad.json()["error"]["message"]
        hidden = await client.post("/panel/sites/b1/alarms/FIRE-b1/commands", data={"kind": "acknowledge",
                                                                                     "csrf": csrf(page)})
        assert hidden.status_code == 404


async def test_no_database_is_a_sentence_not_a_traceback(pg_dsn) -> None:
    await Centre(CentreConfig(pg=pg_dsn, nats=[])).migrate()
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        token = await add_user(conn, "li", CentreRole.DUTY_OFFICER, ["a1"])
    desk = CommandDesk("host=/nonexistent-socket-dir dbname=none connect_timeout=1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(desk)), base_url="http://c") as client:
        client.cookies.set(panel.COOKIE, token)
        for path in ("/panel/", "/panel/sites/a1?part=1", "/panel/alarms?lang=en"):
            r = await client.get(path)
            assert r.status_code == 503 and "Traceback" not in r.text and "psycopg" not in r.text, path
            assert ("The centre cannot answer now" if "lang=en" in path else "中心暂时无法响应") in r.text
        r = await client.post("/panel/sign-in", data={"token": token})
        assert r.status_code == 503 and "Traceback" not in r.text
    assert desk.errors >= 1


def test_every_word_in_both_languages_and_the_site_panels_labels() -> None:
    from firebus.core.web.i18n import STRINGS

    assert all(zh and en for zh, en in panel.TEXT.values())
    assert {k: STRINGS[k] for k in panel.SITE_LABELS} == panel.SITE_LABELS
