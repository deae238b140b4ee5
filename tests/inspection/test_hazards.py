"""A fault found on patrol opens a hazard; it is assigned, rectified with a photo and closed.
An overdue hazard is urged (alarm to the unit) and escalated (a second, more severe alarm);
submitting the rectification clears both."""

from __future__ import annotations

import io

import pytest
from firebus.sdk.testing.waiting import eventually as wait_until
from PIL import Image

from .conftest import local

pytestmark = pytest.mark.anyio


def jpeg(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG", quality=70)
    return out.getvalue()


async def test_fault_opens_hazard_rectified_with_photo_and_closed(site) -> None:
    await site.clock.advance_to(local(1, 8, 20))
    async with site.client("duty_a") as c:
        photo = jpeg()
        r = await c.put("/api/photos/ph-1", content=photo, headers={"content-type": "image/jpeg"})
        assert r.status_code == 201, r.text
        assert (await c.put("/api/photos/ph-1", content=photo, headers={"content-type": "image/jpeg"})).status_code == 200
        assert (await c.put("/api/photos/ph-1", content=jpeg("blue"),
                            headers={"content-type": "image/jpeg"})).status_code == 409
        assert (await c.put("/api/photos/ph-x", content=b"GIF89a", headers={"content-type": "image/gif"})).status_code == 415
        r = await c.post("/api/records", json={
            "id": "rec-f1", "tag": {"kind": "qr", "code": "FB-A1"}, "method": "qr", "photos": ["ph-1"],
            "results": [{"item": "extinguisher", "result": "fault", "note": "gauge in the red"},
                        {"item": "fire_door", "result": "normal"}]})
        assert r.status_code == 201, r.text
        hid = r.json()["hazards"][0]
        assert hid == "rec-f1:extinguisher"
        h = (await c.get(f"/api/hazards/{hid}")).json()
        assert (h["state"], h["source"], h["checkpoint"], h["unit"]) == ("open", "patrol", "cp-a1", "plant-a")
        assert h["description"] == "gauge in the red"
        assert h["deadline"] == pytest.approx(site.clock.time() + 2 * 86400)
        assert (await c.get("/api/photos/ph-1")).content == photo
        # a duty officer may not assign; the unit manager does
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "assign", "responsible": "li"})
        assert r.status_code == 403
    async with site.client("manager_b") as c:  # another unit: as if it did not exist
        assert (await c.get(f"/api/hazards/{hid}")).status_code == 404
        assert (await c.get("/api/photos/ph-1")).status_code == 404
        assert (await c.get("/api/hazards")).json()["items"] == []
    async with site.client("manager_a") as c:
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "assign", "responsible": "li", "id": "a-1"})
        assert r.status_code == 200 and r.json()["state"] == "assigned", r.text
        again = await c.post(f"/api/hazards/{hid}/actions", json={"action": "assign", "responsible": "li", "id": "a-1"})
        assert again.status_code == 200 and len(again.json()["history"]) == 2  # the resend did not act twice
        assert (await c.post(f"/api/hazards/{hid}/actions", json={"action": "verify"})).status_code == 409
    async with site.client("duty_a") as c:
        assert (await c.post(f"/api/hazards/{hid}/actions", json={"action": "start"})).json()["state"] == "rectifying"
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "submit", "note": "replaced"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "evidence_required"
        await c.put("/api/photos/ph-2", content=jpeg("green"), headers={"content-type": "image/jpeg"})
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "submit", "note": "replaced", "photos": ["ph-2"]})
        assert r.json()["state"] == "submitted"
    async with site.client("manager_a") as c:
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "reject"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "note_required"
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "verify", "note": "checked on site"})
        h = r.json()
        assert h["state"] == "closed" and h["closed_ts"] == site.clock.time()
        assert [x["action"] for x in h["history"]] == ["open", "assign", "start", "submit", "verify"]
        assert h["history"][-1]["detail"] == {"resolution": "verified"}
    assert site.alarms() == []


def hazard_alarms(site) -> list:
    return [a for a in site.alarms() if a.rule in ("inspection.overdue", "inspection.escalated")]


async def test_overdue_hazard_is_urged_then_escalated_and_cleared_by_the_rectification(site) -> None:
    async with site.client("manager_a") as c:
        r = await c.post("/api/hazards", json={"description": "exit blocked by pallets", "location": "room-a",
                                               "severity": "major", "major_criteria": "GB 35181 5.1",
                                               "responsible": "zhang"})
        assert r.status_code == 201, r.text
        h = r.json()
        assert h["state"] == "assigned" and h["deadline"] == pytest.approx(site.clock.time() + 86400)  # major: 1 d
        hid = h["id"]
        assert (await c.post("/api/hazards", json={"description": "x", "location": "room-b"})).status_code == 404
    await site.clock.advance(86400 - 60)
    assert hazard_alarms(site) == []
    await site.clock.advance(60)  # the deadline
    await wait_until(lambda: [a.rule for a in hazard_alarms(site)] == ["inspection.overdue"])
    alarm = hazard_alarms(site)[0]
    assert "exit blocked" in alarm.message and "重大隐患整改逾期" in alarm.message_zh
    assert int(alarm.severity) == 20
    await site.clock.advance(12 * 3600)  # urged again, no second alarm
    async with site.client("supervisor") as c:
        h = (await c.get(f"/api/hazards/{hid}")).json()
        assert h["urges"] == 2 and h["overdue"] is True
        assert [x["action"] for x in h["history"]].count("urge") == 2
        overdue = (await c.get("/api/hazards", params={"overdue": "1"})).json()["items"]
        assert [x["id"] for x in overdue] == [hid]
    await site.clock.advance(12 * 3600)  # 24 h late: escalated to supervisors
    await wait_until(lambda: sorted(a.rule for a in hazard_alarms(site)) == ["inspection.escalated", "inspection.overdue"])
    escalated = next(a for a in hazard_alarms(site) if a.rule == "inspection.escalated")
    assert int(escalated.severity) == 30 and "已上报监管" in escalated.message_zh
    async with site.client("duty_a") as c:
        await c.put("/api/photos/ev-1", content=jpeg(), headers={"content-type": "image/jpeg"})
        r = await c.post(f"/api/hazards/{hid}/actions", json={"action": "submit", "photos": ["ev-1"]})
        assert r.status_code == 200, r.text
    await wait_until(lambda: hazard_alarms(site) == [])
