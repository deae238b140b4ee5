"""Alarm objects as the API gives them: every state field present, schema-valid, in GB 4717
display order (fire first), and a confirmed fire named by its place and detectors."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app
from firebus.core.web.priority import ORDER_SQL, display_key

from .conftest import PASSWORD, VALUES, Site, WebTestPlugin, site_yaml, wait_until, web_plugins
from .schema_check import check

pytestmark = pytest.mark.anyio


def two_detector_yaml(db: Path) -> str:
    # A second detector in Switch room A: two in one room confirm a fire (GB 50116 "与" logic).
    return site_yaml(db) + (
        "  - {key: det-a2, driver: webtest.detector, location: room-a, name: Detector A2, options: {serial: A2}}\n"
    )


@pytest.fixture
async def site2(tmp_path: Path) -> AsyncIterator[Site]:
    VALUES.clear()
    VALUES.update({"A1": {"smoke": False, "rc": 20}, "A2": {"smoke": False, "rc": 20}, "B1": {"smoke": False, "rc": 30}})
    loaded = load_text(two_detector_yaml(tmp_path / "fb.db"), "site.yaml")
    async with running_core(loaded, extra_plugins={"webtest": WebTestPlugin(), **web_plugins()},
                            autoload=False) as core:
        auth = AuthStore(core.storage)
        s = Site(core=core, app=create_app(core), auth=auth)
        await auth.create_user("admin", "admin", password=PASSWORD)
        s.tokens["admin"], _ = await auth.create_token("admin")
        await wait_until(lambda: len(core.ingest.states) >= 6)
        yield s


def by_rule(items: list[dict[str, Any]], group: str) -> dict[str, Any]:
    return next(a for a in items if a["rule"].endswith(":" + group))


async def test_alarm_objects_carry_state_and_match_the_openapi_document(site) -> None:
    VALUES["A1"]["smoke"] = True
    await wait_until(lambda: any(a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("admin") as c:
        doc = (await c.get("/api/openapi.json")).json()
        listing = (await c.get("/api/alarms")).json()
        check(doc, "/api/alarms", listing)
        alarm = listing["items"][0]
        # omit_defaults storage must not leak: a live, unacknowledged alarm says so.
        assert (alarm["active"], alarm["acknowledged"], alarm["silenced"]) == (True, False, False)
        one = (await c.get(f"/api/alarms/{alarm['id']}")).json()
        check(doc, "/api/alarms/{alarm_id}", one)
        assert one["history"][0]["transition"] == "new"
        silenced = (await c.post(f"/api/alarms/{alarm['id']}/silence")).json()
        check(doc, "/api/alarms/{alarm_id}/silence", silenced, method="post")
        assert silenced["silenced"] is True and silenced["acknowledged"] is False
        acked = (await c.post(f"/api/alarms/{alarm['id']}/ack")).json()
        assert acked["acknowledged"] is True and acked["active"] is True
        device = (await c.get(f"/api/devices/{site.device('det-a')}")).json()
        check(doc, "/api/devices/{device_id}", device)
        assert device["alarms"][0]["acknowledged"] is True
        check(doc, "/api/devices", (await c.get("/api/devices")).json())
        check(doc, "/api/units", (await c.get("/api/units")).json())
    # Storage is unchanged: the stored row still omits defaults (small rows).
    row = await site.core.storage.fetchone("SELECT data FROM alarms WHERE id = ?", (alarm["id"],))
    assert '"silenced"' in row[0] and '"verdict"' not in row[0]


async def test_reset_unacknowledged_fire_sorts_above_active_leakage(site) -> None:
    VALUES["A1"]["smoke"] = True
    await wait_until(lambda: any(a.category == "fire" and a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    VALUES["A1"]["smoke"] = False  # the detector resets by itself: cleared, not acknowledged
    VALUES["B1"]["rc"] = 900  # residual current far over the threshold: an active electrical alarm
    await wait_until(lambda: any(a.category == "fire" and not a.active for a in site.core.alarms.open_alarms())
                     and any(a.category.startswith("electrical") and a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("admin") as c:
        items = (await c.get("/api/alarms")).json()["items"]
    assert items[0]["category"] == "fire" and items[0]["status"] == "cleared_unack", [
        (a["category"], a["status"]) for a in items]


def test_sql_and_python_display_orders_agree() -> None:
    """The database's ORDER BY and the in-memory key give the same order for every state mix."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE alarms (id TEXT, category TEXT, severity INT, active INT, acknowledged INT, start_ts REAL)")
    rows, n = [], 0
    for category, severity in (("fire", 60), ("gas", 50), ("electrical_pre_alarm", 40), ("supervisory", 20),
                               ("fault", 30), ("offline", 30)):
        for active in (0, 1):
            for acked in (0, 1):
                n += 1
                rows.append((f"a{n}", category, severity, active, acked, float(n)))
    db.executemany("INSERT INTO alarms VALUES (?, ?, ?, ?, ?, ?)", rows)
    sql = [r[0] for r in db.execute(f"SELECT id FROM alarms ORDER BY {ORDER_SQL}")]

    class A:
        def __init__(self, r):
            self.id, self.category, self.severity, self.active, self.acknowledged, self.start_ts = r

    py = [a.id for a in sorted((A(r) for r in rows), key=display_key)]
    assert sql == py
    order = {r[0]: r for r in rows}
    first = [order[i] for i in sql[:3]]
    # Fire first: unacknowledged (active, then reset), then active acknowledged.
    assert [(r[1], r[3], r[4]) for r in first] == [("fire", 1, 0), ("fire", 0, 0), ("fire", 1, 1)]


async def test_confirmed_fire_names_its_place_and_detectors(site2) -> None:
    site = site2
    VALUES["A1"]["smoke"] = True
    await wait_until(lambda: any(a.category == "fire" for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    VALUES["A2"]["smoke"] = True
    await wait_until(lambda: any(a.rule.endswith(":confirmed") for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    VALUES["A1"]["smoke"] = False  # one detector restores: the confirmed fire stays confirmed by two
    await wait_until(lambda: sum(a.active for a in site.core.alarms.open_alarms() if a.rule.endswith(":single")) == 1)
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("admin") as c:
        items = (await c.get("/api/alarms?lang=en")).json()["items"]
        zh = (await c.get("/api/alarms?lang=zh")).json()["items"]
    confirmed = by_rule(items, "confirmed")
    assert items[0]["id"] == confirmed["id"], "the confirmed fire (highest severity) is shown first"
    assert confirmed["message"] == "confirmed fire at Switch room A: 2 detectors in alarm", confirmed["message"]
    # Both detectors that confirmed it are named, the restored one too (its alarm is still open).
    assert confirmed["device_name"] == "Detector A, Detector A2"
    assert [d["name"] for d in confirmed["devices"]] == ["Detector A", "Detector A2"]
    assert confirmed["location_path"] == "Main hall / F1 / Switch room A"
    assert confirmed["floor"]["name"] == "F1" and confirmed["floor"]["level"] == 1
    assert by_rule(zh, "confirmed")["text"] == "Switch room A 确认火警：2 只探测器报警"
    # Its notification names the place, not the place's id.
    from types import SimpleNamespace

    from firebus.plugins.notify.routing import describe

    event = SimpleNamespace(device_id=None, point_id=None, location_id=confirmed["location_id"])
    assert describe(event, site.core.registry)["where"] == "Switch room A"
