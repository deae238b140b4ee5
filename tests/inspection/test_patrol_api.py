"""Plans make tasks on the site clock; scans by QR and by a fixed RFID reader complete them; a missed
checkpoint raises a supervisory alarm at the deadline; records are append-only and idempotent."""

from __future__ import annotations

import sqlite3

import pytest
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import local

pytestmark = pytest.mark.anyio


async def test_plan_makes_task_and_scans_complete_it(site) -> None:
    async with site.client("duty_a") as c:
        r = await c.get("/api/tasks")
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []  # 07:00: the 08:00 patrol has not started
        await site.clock.advance_to(local(1, 8, 0))
        await site.settle()
        tasks = (await c.get("/api/tasks", params={"status": "open"})).json()["items"]
        assert [t["id"] for t in tasks] == [f"daily-a@{int(local(1, 8))}"]  # only plant-a's: unit scoping
        task = tasks[0]
        assert task["due"] - task["start"] == 10 * 3600
        stop = {s["checkpoint"]: s for s in task["stops"]}
        assert set(stop["cp-a1"]["items"]) == {"extinguisher", "electrical_box", "fire_door"}

        await site.clock.advance(600)
        # a phone scanned the QR label: items checked, all normal
        body = {"id": "rec-0001", "tag": {"kind": "qr", "code": "FB-A1"}, "method": "qr", "ts": site.clock.time(),
                "results": [{"item": "extinguisher", "result": "normal"}, {"item": "fire_door", "result": "normal"},
                            {"item": "electrical_box", "result": "normal"}]}
        r = await c.post("/api/records", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["checkpoint"] == "cp-a1" and r.json()["tasks"] == [task["id"]]
        again = await c.post("/api/records", json=body)  # the offline queue sent it twice
        assert again.status_code == 200 and again.json()["duplicate"] is True
        clash = await c.post("/api/records", json={**body, "note": "changed"})
        assert clash.status_code == 409
        # the monthly extinguisher check is done for this month, the daily door not past today
        resolved = (await c.get("/api/resolve", params={"kind": "nfc", "code": "04a2197c"})).json()
        assert resolved["key"] == "cp-a1" and resolved["due_items"] == []

    # a fixed RFID reader posts with its own token; it prints the UID in the other byte order
    token, _ = await site.auth.create_token("duty_a", label="reader pump room")
    async with site.client() as c:
        r = await c.post("/api/scans", headers={"Authorization": f"Bearer {token}"},
                         json={"id": "reader-7:000123", "tag": {"kind": "rfid", "code": "90 18 44 01 11 22 17 00 00 E2"},
                               "method": "rfid"})
        assert r.status_code == 201, r.text
    async with site.client("duty_a") as c:
        done = (await c.get("/api/tasks", params={"status": "done"})).json()["items"]
        assert [t["id"] for t in done] == [task["id"]]
        assert all(s["record_id"] for s in done[0]["stops"])
    # the office-b patrol (4 h window) was not done: at 12:00 its checkpoint is missed
    assert site.alarms() == []
    await site.clock.advance_to(local(1, 12, 0))
    await wait_until(lambda: site.alarms())
    await site.settle()  # the task is marked missed just after its alarm is published
    alarms = site.alarms()
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm.category == "supervisory" and alarm.rule == "inspection.missed"
    assert "Server room B" in alarm.message and "漏检 1" in alarm.message_zh
    assert site.core.registry.place(alarm.unit_id).key == "office-b"
    async with site.client("manager_b") as c:
        missed = (await c.get("/api/tasks/missed")).json()["items"]
        assert [m["skipped"] for m in missed] == [["cp-b1"]]
    async with site.client("duty_a") as c:  # plant-a's people do not see office-b's task
        assert (await c.get("/api/tasks/missed")).json()["items"] == []


async def test_late_upload_of_an_in_time_scan_clears_the_missed_alarm(site) -> None:
    await site.clock.advance_to(local(1, 8, 30))
    scanned_at = site.clock.time()  # the phone was offline in the server room
    await site.clock.advance_to(local(1, 12, 1))
    await wait_until(lambda: [a.rule for a in site.alarms()] == ["inspection.missed"])
    async with site.client("manager_b") as c:
        r = await c.post("/api/records", json={"id": "offline-1", "checkpoint": "cp-b1", "method": "manual",
                                               "ts": scanned_at})
        assert r.status_code == 201, r.text
    await wait_until(lambda: site.alarms() == [])
    async with site.client("manager_b") as c:
        assert [t["status"] for t in (await c.get("/api/tasks")).json()["items"]] == ["done"]


async def test_records_are_append_only_and_bad_input_is_a_clear_400(site, tmp_path) -> None:
    await site.clock.advance_to(local(1, 9))
    async with site.client("duty_a") as c:
        r = await c.post("/api/records", json={"id": "x1", "tag": {"kind": "qr", "code": "NOPE"}})
        assert r.status_code == 404 and r.json()["error"]["code"] == "tag_not_found"
        r = await c.post("/api/records", json={"id": "x2", "checkpoint": "cp-b1"})  # another unit's
        assert r.status_code == 404
        r = await c.post("/api/records", json={"id": "x3", "checkpoint": "cp-a1", "results": [{"item": "extinguisher",
                                                                                             "result": "broken"}]})
        assert r.status_code == 400 and "result" in r.json()["error"]["message"]
        r = await c.post("/api/records", json={"id": "x4", "checkpoint": "cp-a1", "ts": site.clock.time() + 3600})
        assert r.status_code == 400 and "future" in r.json()["error"]["message"]
        r = await c.post("/api/records", json={"id": "x5", "checkpoint": "cp-a1", "photos": ["nope"]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "photo_missing"
        r = await c.post("/api/records", json={"id": "ok-1", "checkpoint": "cp-a1"})
        assert r.status_code == 201
    async with site.client("supervisor") as c:  # supervisors read, they do not patrol
        r = await c.post("/api/records", json={"id": "s1", "checkpoint": "cp-a1"})
        assert r.status_code == 403
        assert [x["id"] for x in (await c.get("/api/records")).json()["items"]] == ["ok-1"]
    async with site.client() as c:
        assert (await c.get("/api/tasks")).status_code in (401, 403)
    db = sqlite3.connect(tmp_path / "fb.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE insp_records SET note = 'edited' WHERE id = 'ok-1'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM insp_records")
    db.close()


async def test_windows_while_the_core_was_down_are_made_and_missed_after_restart(tmp_path) -> None:
    from .conftest import open_site

    async with open_site(tmp_path / "fb.db", start=local(1, 8, 30)) as site:
        async with site.client("duty_a") as c:
            tasks = (await c.get("/api/tasks")).json()["items"]
            assert [t["id"] for t in tasks] == [f"daily-a@{int(local(1, 8))}"]
            await c.post("/api/records", json={"id": "before-stop", "checkpoint": "cp-a1"})
    # down from 08:30 on the 1st to 09:00 on the 3rd: day 1's and day 2's patrols of both units were due
    async with open_site(tmp_path / "fb.db", start=local(3, 9, 0)) as site:
        await wait_until(lambda: len(site.alarms()) == 4)

        async def tasks_now() -> list:
            async with site.client("admin") as c:
                return (await c.get("/api/tasks")).json()["items"]

        async def past_ones_missed() -> bool:  # each is marked just after its alarm is published
            return {t["status"] for t in await tasks_now() if t["start"] < local(3, 0)} == {"missed"}

        await wait_until(past_ones_missed)
        tasks = await tasks_now()
        by_id = {t["id"]: t for t in tasks}
        assert {t["status"] for t in tasks if t["start"] < local(3, 0)} == {"missed"}
        assert by_id[f"daily-a@{int(local(1, 8))}"]["stops"][0]["record_id"] == "before-stop"
        assert {t["id"] for t in tasks if t["status"] == "open"} == {f"daily-a@{int(local(3, 8))}",
                                                                    f"daily-b@{int(local(3, 8))}"}
        # every due time passed while the core was down: each missed task is alarmed once it is back
        assert sorted(a.subject for a in site.alarms()) == sorted(
            f"inspection:task:{p}@{int(local(d, 8))}" for p in ("daily-a", "daily-b") for d in (1, 2))
