"""Scoping by organisation at the centre: real PostgreSQL, the centre's HTTP API and CLI.

Five sites have replicated into the centre (rows written as the ingest writes them):
a1, a2 in town A, b1, b2 in street B, both towns under the county brigade; the
education bureau covers the schools a1 and b1, the maintenance company Anda a2 and b2;
x9 is under no organisation.  Every user is checked against every endpoint of the API
for every site: what is outside their scope is absent from lists and 404 by id.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import psycopg
import pytest

from firebus.plugins.federation.access import CentreRole, add_user
from firebus.plugins.federation.api import create_app
from firebus.plugins.federation.centre import Centre, CentreConfig
from firebus.plugins.federation.desk import CommandDesk
from firebus.plugins.federation.orgs import put_org

pytestmark = pytest.mark.anyio

SITES = ("a1", "a2", "b1", "b2", "x9")
TREE = [  # (key, name, name_en, kind, parent, sites)
    ("county_brigade", "某县消防救援大队", "County fire and rescue brigade", "fire_brigade", None, []),
    ("town_a", "甲镇", "Town A", "town", "county_brigade", ["a1", "a2"]),
    ("street_b", "乙街道", "Street B", "town", "county_brigade", ["b1", "b2"]),
    ("edu_bureau", "县教育局", "Education bureau", "regulator", None, ["a1", "b1"]),
    ("anda", "安达消防维保有限公司", "Anda maintenance", "maintenance", None, ["a2", "b2"]),
]
USERS = {  # name: (role, sites, orgs)
    "chen": (CentreRole.FIRE_INSPECTOR, [], ["county_brigade"]),
    "li": (CentreRole.DUTY_OFFICER, [], ["town_a"]),
    "liu": (CentreRole.SUPERVISOR, [], ["edu_bureau"]),
    "zhao": (CentreRole.MAINTENANCE_ENGINEER, [], ["anda"]),
    "wang": (CentreRole.DUTY_OFFICER, ["x9"], []),
    "mixed": (CentreRole.UNIT_MANAGER, ["x9"], ["street_b"]),
    "root": (CentreRole.ADMIN, [], []),
    "nobody": (CentreRole.SUPERVISOR, [], []),
}
SEES = {
    "chen": {"a1", "a2", "b1", "b2"},
    "li": {"a1", "a2"},
    "liu": {"a1", "b1"},
    "zhao": {"a2", "b2"},
    "wang": {"x9"},
    "mixed": {"b1", "b2", "x9"},
    "root": set(SITES),
    "nobody": set(),
}


async def replicated_sites(pg: str) -> None:
    """Each site has a journal entry, an alarm and a point's present value at the centre."""
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        for i, site in enumerate(SITES):
            await conn.execute(
                "INSERT INTO journal (site_id, seq, ts, lane, type, subject, data) VALUES "
                "(%s, 1, to_timestamp(%s), 'alarm', 'AlarmEvent', %s, '{}')", (site, 1.7e9 + i, f"ALM-{site}"))
            await conn.execute(
                "INSERT INTO alarms (site_id, seq, alarm_id, transition, category, severity, message, message_zh, "
                "status, ts) VALUES (%s, 1, %s, 'new', 'fire', 'fire', 'Fire', '火警', 'active_unack', "
                "to_timestamp(%s))", (site, f"ALM-{site}", 1.7e9 + i))
            await conn.execute(
                "INSERT INTO latest_state (site_id, point_id, device_id, num, vts, seq) VALUES "
                "(%s, %s, 'd1', 21.5, to_timestamp(%s), 2)", (site, f"pt-{site}", 1.7e9 + i))


@asynccontextmanager
async def centre_api(pg: str) -> AsyncIterator[tuple[CommandDesk, dict[str, httpx.AsyncClient]]]:
    await Centre(CentreConfig(pg=pg, nats=[])).migrate()
    await replicated_sites(pg)
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        for key, name, name_en, kind, parent, sites in TREE:
            await put_org(conn, key, name, kind, name_en=name_en, parent=parent, sites=sites)
        tokens = {name: await add_user(conn, name, role, sites, orgs) for name, (role, sites, orgs) in USERS.items()}
    desk = CommandDesk(pg)  # no NATS: commands are stored unsent, which is enough for scope
    transport = httpx.ASGITransport(app=create_app(desk))
    clients = {name: httpx.AsyncClient(transport=transport, base_url="http://centre",
                                       headers={"Authorization": f"Bearer {token}"})
               for name, token in tokens.items()}
    try:
        yield desk, clients
    finally:
        for c in clients.values():
            await c.aclose()
        await desk.close()


async def seen(client: httpx.AsyncClient) -> dict[str, Any]:
    """What one user gets from every read endpoint, for every site."""
    sites = (await client.get("/api/sites")).json()
    alarms = (await client.get("/api/alarms")).json()
    by_id = {s: ((await client.get(f"/api/sites/{s}/alarms")).status_code,
                 (await client.get(f"/api/sites/{s}/state")).status_code) for s in SITES}
    return {
        "sites": {i["site_id"] for i in sites["items"]},
        "alarms": {i["site_id"] for i in alarms["items"]},
        "alarm_total": alarms["total"],
        "by_id_ok": {s for s, codes in by_id.items() if codes == (200, 200)},
        "by_id_404": {s for s, codes in by_id.items() if codes == (404, 404)},
    }


async def test_each_user_sees_exactly_the_sites_under_their_organisations(pg_dsn) -> None:
    async with centre_api(pg_dsn) as (_, users):
        for name, client in users.items():
            got = await seen(client)
            want = SEES[name]
            assert got == {"sites": want, "alarms": want, "alarm_total": len(want), "by_id_ok": want,
                           "by_id_404": set(SITES) - want}, name

        # What a site's answers hold: its alarm and its point, nothing of another site.
        state = (await users["zhao"].get("/api/sites/a2/state")).json()
        assert [(i["point_id"], i["value"], i["device_id"]) for i in state["items"]] == [("pt-a2", 21.5, "d1")]
        assert state["total"] == 1 and state["next_offset"] is None
        alarms = (await users["zhao"].get("/api/sites/b2/alarms")).json()
        assert [(i["alarm_id"], i["status"], i["message_zh"]) for i in alarms["items"]] == \
            [("ALM-b2", "active_unack", "火警")]
        hidden = await users["zhao"].get("/api/sites/a1/state")
        assert hidden.json()["error"]["code"] == "site_not_found" and hidden.json()["error"]["message_zh"]
        assert (await users["zhao"].get("/api/alarms?site=a1")).json()["total"] == 0

        # A regulator sees its schools across both towns, and only the organisations in its subtree.
        liu = (await users["liu"].get("/api/sites")).json()
        assert liu == {"items": [{"site_id": "a1", "orgs": ["edu_bureau"]}, {"site_id": "b1", "orgs": ["edu_bureau"]}],
                       "total": 2}
        trees = (await users["liu"].get("/api/organisations")).json()["items"]
        assert [(t["key"], t["kind"], t["sites_under"], t["children"]) for t in trees] == \
            [("edu_bureau", "regulator", ["a1", "b1"], [])]

        # The brigade's inspector gets its tree with both towns; a town only itself.
        chen = (await users["chen"].get("/api/organisations")).json()["items"]
        assert [(t["key"], t["sites_under"], [c["key"] for c in t["children"]]) for t in chen] == \
            [("county_brigade", ["a1", "a2", "b1", "b2"], ["street_b", "town_a"])]
        li = (await users["li"].get("/api/sites")).json()["items"]
        assert li == [{"site_id": "a1", "orgs": ["town_a"]}, {"site_id": "a2", "orgs": ["town_a"]}]
        assert [t["key"] for t in (await users["li"].get("/api/organisations")).json()["items"]] == ["town_a"]
        assert (await users["wang"].get("/api/organisations")).json()["items"] == []
        everything = (await users["root"].get("/api/organisations")).json()["items"]
        assert [t["key"] for t in everything] == ["anda", "county_brigade", "edu_bureau"]
        assert {s["site_id"]: s["orgs"] for s in (await users["root"].get("/api/sites")).json()["items"]}["a1"] == \
            ["edu_bureau", "town_a"]


async def test_commands_follow_organisation_scope_and_keep_their_role_rules(pg_dsn) -> None:
    async with centre_api(pg_dsn) as (_, users):
        codes = {}
        for name in ("zhao", "li", "mixed", "chen", "liu"):
            for site in SITES:
                r = await users[name].post(f"/api/sites/{site}/alarms/ALM-{site}/commands", json={"kind": "acknowledge"})
                codes[(name, site)] = r.status_code
        # Command roles: 201 inside their organisations' sites, 404 outside (as if the site did not exist).
        for name in ("zhao", "li", "mixed"):
            assert {s for s in SITES if codes[(name, s)] == 201} == SEES[name], name
            assert {s for s in SITES if codes[(name, s)] == 404} == set(SITES) - SEES[name], name
        # Read-only roles: 403 whatever the site (the role is checked first, and says nothing of the site).
        for name in ("chen", "liu"):
            assert {codes[(name, s)] for s in SITES} == {403}, name

        # The commands list: the brigade's inspector sees those of all four town sites, the
        # maintenance company's engineer those of its two, by whomever issued.
        listed = (await users["chen"].get("/api/commands")).json()
        assert {i["site_id"] for i in listed["items"]} == {"a1", "a2", "b1", "b2"} and listed["total"] == 6
        zhao = (await users["zhao"].get("/api/commands")).json()
        assert {(i["site_id"], i["issued_by"]) for i in zhao["items"]} == {
            ("a2", "zhao"), ("a2", "li"), ("b2", "zhao"), ("b2", "mixed")}
        other = next(i for i in listed["items"] if i["site_id"] == "a1")
        assert (await users["zhao"].get(f"/api/commands/{other['id']}")).status_code == 404
        assert (await users["liu"].get(f"/api/commands/{other['id']}")).status_code == 200


async def test_moving_a_site_between_organisations_changes_what_a_user_sees_with_the_same_token(pg_dsn) -> None:
    async with centre_api(pg_dsn) as (_, users):
        li, chen = users["li"], users["chen"]
        cmd = (await li.post("/api/sites/a2/alarms/ALM-a2/commands", json={"kind": "acknowledge"})).json()
        assert (await li.get(f"/api/commands/{cmd['id']}")).status_code == 200

        # a2 moves from town A to street B.
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await put_org(conn, "town_a", "甲镇", "town", name_en="Town A", parent="county_brigade", sites=["a1"])
            await put_org(conn, "street_b", "乙街道", "town", name_en="Street B", parent="county_brigade",
                          sites=["b1", "b2", "a2"])
        assert (await seen(li))["sites"] == {"a1"}
        assert (await li.get("/api/sites/a2/state")).status_code == 404
        assert (await li.get(f"/api/commands/{cmd['id']}")).status_code == 404
        assert (await seen(users["mixed"]))["by_id_ok"] == {"a2", "b1", "b2", "x9"}
        assert (await seen(chen))["sites"] == {"a1", "a2", "b1", "b2"}  # still under the brigade

        # Street B moves out from under the brigade: the brigade's inspector loses its sites.
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await put_org(conn, "street_b", "乙街道", "town", parent=None, sites=["b1", "b2", "a2"])
        assert (await seen(chen))["sites"] == {"a1"}
        assert (await seen(users["mixed"]))["sites"] == {"a2", "b1", "b2", "x9"}


def firebus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "firebus"), "federation", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def refused(res: subprocess.CompletedProcess[str], zh: str, en: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert zh in res.stderr and en in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stdout == ""


async def test_the_org_cli_adds_lists_scopes_users_and_refuses_with_reasons(tmp_path, pg_dsn) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return firebus(*args, cwd=tmp_path)

    ok = run("org", "add", "--pg", pg_dsn, "--key", "county_brigade", "--name", "某县消防救援大队",
             "--name-en", "County brigade", "--kind", "fire_brigade")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"key": "county_brigade", "name": "某县消防救援大队", "name_en": "County brigade",
                                     "kind": "fire_brigade", "parent": None, "sites": [], "replaced": False}
    town = run("org", "add", "--pg", pg_dsn, "--key", "town_a", "--name", "甲镇", "--kind", "town",
               "--parent", "county_brigade", "--site", "a1", "--site", "a2")
    assert json.loads(town.stdout)["sites"] == ["a1", "a2"]
    assert run("org", "add", "--pg", pg_dsn, "--key", "anda", "--name", "安达维保", "--kind", "maintenance",
               "--site", "a2").returncode == 0
    again = run("org", "add", "--pg", pg_dsn, "--key", "town_a", "--name", "甲镇", "--name-en", "Town A", "--kind",
                "town", "--parent", "county_brigade", "--site", "a1")
    assert json.loads(again.stdout)["replaced"] is True and json.loads(again.stdout)["sites"] == ["a1"]

    text = run("org", "list", "--pg", pg_dsn)
    assert text.returncode == 0 and text.stdout.splitlines() == [
        "anda [maintenance] 安达维保: a2",
        "county_brigade [fire_brigade] 某县消防救援大队 / County brigade: -",
        "  town_a [town] 甲镇 / Town A: a1",
    ]
    trees = json.loads(run("org", "list", "--pg", pg_dsn, "--json").stdout)
    assert trees[1] == {"key": "county_brigade", "name": "某县消防救援大队", "name_en": "County brigade",
                        "kind": "fire_brigade", "parent": None, "sites": [], "sites_under": ["a1"],
                        "children": [{"key": "town_a", "name": "甲镇", "name_en": "Town A", "kind": "town",
                                      "parent": "county_brigade", "sites": ["a1"], "sites_under": ["a1"],
                                      "children": []}]}

    refused(run("org", "add", "--pg", pg_dsn, "--key", "street_b", "--name", "乙街道", "--kind", "town",
                "--parent", "no_such"), "上级组织 'no_such' 不存在", "no organisation 'no_such' to be the parent")
    refused(run("org", "add", "--pg", pg_dsn, "--key", "county_brigade", "--name", "大队", "--kind", "fire_brigade",
                "--parent", "town_a"), "形成循环", "would make a cycle (county_brigade → town_a → county_brigade)")
    refused(run("org", "add", "--pg", pg_dsn, "--key", "town_a", "--name", "甲镇", "--kind", "town",
                "--parent", "town_a"), "不能是自己的上级", "cannot be its own parent")
    refused(run("org", "add", "--pg", pg_dsn, "--key", "x", "--name", "某", "--kind", "school"),
            "未知的组织类型 'school'", "unknown kind 'school'; the kinds are fire_brigade")
    refused(run("org", "add", "--pg", pg_dsn, "--key", "x", "--name", "某", "--kind", "town", "--site", "a b"),
            "站点编号 'a b'", "site id 'a b'")
    refused(run("user", "add", "--pg", pg_dsn, "--name", "li", "--role", "duty_officer", "--org", "town_z"),
            "没有组织 'town_z'", "no organisation 'town_z' (organisations: anda, county_brigade, town_a")
    # The refused changes left the tree as it was.
    assert json.loads(run("org", "list", "--pg", pg_dsn, "--json").stdout) == trees

    # A user scoped by organisation (and a site of their own) through the CLI, then the API.
    made = run("user", "add", "--pg", pg_dsn, "--name", "li", "--role", "duty_officer", "--org", "county_brigade",
               "--site", "x9")
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert (user["orgs"], user["sites"]) == (["county_brigade"], ["x9"])
    await replicated_sites(pg_dsn)
    desk = CommandDesk(pg_dsn)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(desk)), base_url="http://centre",
                                     headers={"Authorization": f"Bearer {user['token']}"}) as li:
            assert (await seen(li))["by_id_ok"] == {"a1", "x9"}
            assert run("org", "add", "--pg", pg_dsn, "--key", "town_a", "--name", "甲镇", "--kind", "town",
                       "--parent", "county_brigade", "--site", "a1", "--site", "b1").returncode == 0
            assert (await seen(li))["sites"] == {"a1", "b1", "x9"}
    finally:
        await desk.close()
    listed = run("commands", "--pg", pg_dsn, "--as", "li")
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"items": [], "total": 0}


async def test_org_remove_refuses_while_children_or_users_depend_on_it_then_removes(tmp_path, pg_dsn) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return firebus(*args, cwd=tmp_path)

    for args in (("--key", "rm_county", "--name", "县大队", "--kind", "fire_brigade"),
                 ("--key", "rm_town", "--name", "甲镇", "--kind", "town", "--parent", "rm_county",
                  "--site", "r1", "--site", "r2")):
        assert run("org", "add", "--pg", pg_dsn, *args).returncode == 0
    assert run("user", "add", "--pg", pg_dsn, "--name", "rm_li", "--role", "supervisor",
               "--org", "rm_town").returncode == 0

    refused(run("org", "remove", "--pg", pg_dsn, "--key", "rm_county"),
            "组织 'rm_county' 有下级组织（rm_town）", "organisation 'rm_county' has child organisations (rm_town)")
    refused(run("org", "remove", "--pg", pg_dsn, "--key", "rm_town"),
            "有中心用户属于组织 'rm_town'（rm_li）", "centre users are assigned to organisation 'rm_town' (rm_li)")
    refused(run("org", "remove", "--pg", pg_dsn, "--key", "rm_none"), "没有组织 'rm_none'", "no organisation 'rm_none'")
    assert "rm_town" in run("org", "list", "--pg", pg_dsn).stdout  # nothing changed by the refusals

    assert run("user", "add", "--pg", pg_dsn, "--name", "rm_li", "--role", "supervisor",
               "--org", "rm_county").returncode == 0  # assigned elsewhere
    gone = run("org", "remove", "--pg", pg_dsn, "--key", "rm_town")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout) == {"key": "rm_town", "removed": True, "sites": ["r1", "r2"]}
    listed = run("org", "list", "--pg", pg_dsn).stdout.splitlines()
    assert "rm_county [fire_brigade] 县大队: -" in listed and not any("rm_town" in line for line in listed)
    assert run("org", "remove", "--pg", pg_dsn, "--key", "rm_county").returncode == 2  # rm_li still there
