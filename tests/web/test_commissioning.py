"""Floor plans, adoption of a discovered device, bulk acknowledge, chart thresholds and CSV."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image

from firebus.sdk import DeviceInfo

from .conftest import VALUES, wait_until
from .schema_check import check

pytestmark = pytest.mark.anyio


def png(width: int = 400, height: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (240, 244, 248)).save(buf, "PNG")
    return buf.getvalue()


def floor_id(site, key: str) -> str:
    return site.core.registry.place_by_key(key).id


async def test_plan_upload_place_and_scope(site) -> None:
    f1 = floor_id(site, "a-f1")
    det_a = site.device("det-a")
    async with site.client("admin") as c:
        doc = (await c.get("/api/openapi.json")).json()
        empty = (await c.get(f"/api/plans/{f1}")).json()
        check(doc, "/api/plans/{place_id}", empty)
        assert empty["image"] is None and [d["id"] for d in empty["devices"]] == [det_a]
        r = await c.put(f"/api/plans/{f1}/image", content=b"not an image", headers={"Content-Type": "image/png"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "bad_image"
        r = await c.put(f"/api/plans/{f1}/image", content=png(), headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        plan = r.json()
        check(doc, "/api/plans/{place_id}/image", plan, method="put")
        assert (plan["width"], plan["height"]) == (400, 300)
        image = await c.get(plan["image"])
        assert image.headers["content-type"] == "image/png" and image.content[:4] == b"\x89PNG"
        assert (await c.put(f"/api/plans/{f1}/devices/{det_a}", json={"x": 1.5, "y": 0.2})).status_code == 400
        assert (await c.put(f"/api/plans/{f1}/devices/{det_a}", json={"x": 0.25, "y": 0.75})).status_code == 200
        placed = (await c.get(f"/api/plans/{f1}")).json()["devices"][0]
        assert (placed["x"], placed["y"]) == (0.25, 0.75)
        # A device of another floor cannot be put on this one.
        r = await c.put(f"/api/plans/{f1}/devices/{site.device('det-b')}", json={"x": 0.5, "y": 0.5})
        assert r.status_code == 404
        big = await c.put(f"/api/plans/{f1}/image", content=b"0" * (6 * 1024 * 1024), headers={"Content-Type": "image/png"})
        assert big.status_code == 413
    VALUES["A1"]["smoke"] = True  # live colour: the device is in alarm on its plan
    await wait_until(lambda: any(a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("duty_a") as c:
        assert (await c.get(f"/api/plans/{f1}")).json()["devices"][0]["status"] == "alarm"
        # Duty officers see plans but do not edit them.
        assert (await c.put(f"/api/plans/{f1}/devices/{det_a}", json={"x": 0.1, "y": 0.1})).status_code == 403
        # Another unit's floor does not exist for them.
        assert (await c.get(f"/api/plans/{floor_id(site, 'b-f3')}")).status_code == 404
        page = await c.get(f"/plans/{f1}")
        assert page.status_code == 200 and "plan-box" in page.text
        alarm_id = next(a.id for a in site.core.alarms.open_alarms() if a.device_id == det_a)
        alarm_page = (await c.get(f"/alarms/{alarm_id}")).text
        assert 'id="alarm-plan"' in alarm_page and det_a in alarm_page  # the device is highlighted on it
    async with site.client("manager_b") as c:
        r = await c.put(f"/api/plans/{floor_id(site, 'b-f3')}/image", content=png(200, 100),
                        headers={"Content-Type": "image/png"})
        assert r.status_code == 200  # a unit manager commissions their own unit's plans


async def test_adopt_a_discovered_device(site) -> None:
    registry = site.core.registry
    found = registry.register_discovered({"serial": "X9"}, driver="webtest.detector", transport=None,
                                         info=DeviceInfo(identifiers={"serial": "X9"}, model="WT-1", manufacturer="Test"))
    room_a = registry.place_by_key("room-a")
    async with site.client("admin") as c:
        listing = (await c.get("/devices")).text
        row = listing[listing.index(f'data-device="{found.id}"'):].split("</tr>")[0]
        # Named by what it is (never its id), marked as discovered rather than "Normal".
        assert "Test WT-1 X9" in row and "Discovered (not adopted)" in row and "Normal" not in row
        page = (await c.get(f"/devices/{found.id}")).text
        assert 'id="adopt-form"' in page
        r = await c.post(f"/api/devices/{found.id}/adopt", json={"device_type": "toaster", "location": "room-a"})
        assert r.status_code == 400 and "device_type" in r.json()["error"]["message"]
        r = await c.post(f"/api/devices/{found.id}/adopt",
                         json={"device_type": "smoke_detector", "location": "room-a", "name": "Corridor smoke"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["discovered"] is False and body["name"] == "Corridor smoke"
        assert body["location"]["id"] == room_a.id and body["unit"]["key"] == "plant-a"
        assert body["device_type"] == "smoke_detector"
        assert (await c.post(f"/api/devices/{found.id}/adopt",
                             json={"device_type": "smoke_detector", "location": "room-a"})).status_code == 409
    async with site.client("duty_a") as c:
        other = registry.register_discovered({"serial": "X10"}, driver="webtest.detector", transport=None)
        assert (await c.post(f"/api/devices/{other.id}/adopt",
                             json={"device_type": "other", "location": "room-a"})).status_code == 404  # no unit: not theirs
        # The adopted one is now in their unit.
        assert (await c.get(f"/api/devices/{found.id}")).status_code == 200
    # Not orphaned at the next start although the site file does not list it.
    assert found.id not in await registry.orphan_missing(site.core.device_ids.values())


async def test_bulk_acknowledge(site) -> None:
    VALUES["A1"]["smoke"] = True
    VALUES["B1"]["smoke"] = True
    await wait_until(lambda: len([a for a in site.core.alarms.open_alarms() if a.active]) >= 2)
    await site.core.storage.barrier()  # the API reads what is committed
    ids = [a.id for a in site.core.alarms.open_alarms()]
    async with site.client("duty_a") as c:
        r = (await c.post("/api/alarms/ack", json={"ids": ids + ["nope"]})).json()
    by_id = {x["id"]: x for x in r["results"]}
    a_id = next(a.id for a in site.core.alarms.open_alarms() if a.device_id == site.device("det-a"))
    b_id = next(a.id for a in site.core.alarms.open_alarms() if a.device_id == site.device("det-b"))
    assert by_id[a_id]["ok"] is True and by_id[b_id] == {"id": b_id, "ok": False, "error": "alarm_not_found"}
    assert by_id["nope"]["ok"] is False and r["acknowledged"] == 1
    async with site.client("supervisor") as c:
        assert (await c.post("/api/alarms/ack", json={"ids": [b_id]})).status_code == 403
    async with site.client("admin") as c:
        doc = (await c.get("/api/openapi.json")).json()
        again = (await c.post("/api/alarms/ack", json={"ids": [a_id, b_id]})).json()
        check(doc, "/api/alarms/ack", again, method="post")
        assert [x["ok"] for x in again["results"]] == [False, True] and again["results"][0]["error"] == "conflict"


async def test_thresholds_and_csv(site) -> None:
    rc = site.point("det-a", "rc")
    VALUES["A1"]["rc"] = 42
    await wait_until(lambda: site.core.ingest.states[rc].value == 42)
    await site.core.storage.barrier()
    async with site.client("admin") as c:
        doc = (await c.get("/api/openapi.json")).json()
        th = (await c.get(f"/api/points/{rc}/thresholds")).json()
        check(doc, "/api/points/{point_id}/thresholds", th)
        assert [(t["name"], t["value"]) for t in th["items"]] == [("pre_alarm", 200.0), ("alarm", 300.0)]
        r = await c.get(f"/api/points/{rc}/history.csv")
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0] == ["time_iso", "ts", "value (mA)", "fault"]
    assert [row[2] for row in rows[1:]][-1] == "42"
