"""Every /api endpoint against a running core, including what each role may see and do."""

from __future__ import annotations

import time

import pytest

from .conftest import VALUES, wait_until

pytestmark = pytest.mark.anyio


async def raise_fire(site, serial: str = "A1") -> str:
    VALUES[serial]["smoke"] = True
    device = site.device("det-a" if serial == "A1" else "det-b")
    await wait_until(lambda: any(a.device_id == device and a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    return next(a.id for a in site.core.alarms.open_alarms() if a.device_id == device)


async def test_openapi_documents_every_api_route(site) -> None:
    async with site.client() as c:
        doc = (await c.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    documented = set(doc["paths"])
    routes = {r.path for r in site.app.routes if getattr(r, "path", "").startswith("/api/")}
    assert routes == documented


async def test_health_is_public_and_metrics_are_for_system_roles(site) -> None:
    async with site.client() as c:
        r = await c.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and "metrics" not in r.json()
    async with site.client("admin") as c:
        assert "bus" in (await c.get("/api/health")).json()["metrics"]
        metrics = (await c.get("/api/metrics")).json()
        assert "subscribers" in metrics["bus"] and "queue" in metrics["storage"]
    async with site.client("duty_a") as c:
        assert "metrics" not in (await c.get("/api/health")).json()
        assert (await c.get("/api/metrics")).status_code == 403


async def test_unauthenticated_and_bad_tokens_are_401(site) -> None:
    async with site.client() as c:
        for path in ("/api/units", "/api/devices", "/api/alarms", "/api/plugins", "/api/me", "/api/notifications"):
            r = await c.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthenticated"
        r = await c.get("/api/units", headers={"Authorization": "Bearer fbt_nope_nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        r = await c.get("/api/units", headers={"Authorization": "Basic abc"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_authorization"


async def test_plugins_listing(site) -> None:
    async with site.client("integrator") as c:
        r = await c.get("/api/plugins")
    names = {p["name"]: p for p in r.json()["items"]}
    assert r.status_code == 200 and {"core", "webtest"} <= set(names)
    assert names["core"]["status"] == "loaded" and "error" in names["core"]
    async with site.client("supervisor") as c:
        assert (await c.get("/api/plugins")).status_code == 403


async def test_units_are_scoped(site) -> None:
    async with site.client("admin") as c:
        units = (await c.get("/api/units")).json()["items"]
    assert {u["key"] for u in units} == {"plant-a", "office-b"}
    plant = next(u for u in units if u["key"] == "plant-a")
    assert plant["counts"] == {"alarm": 0, "fault": 0, "offline": 0, "never_reported": 0, "normal": 1}
    assert plant["buildings"][0]["children"][0]["children"][0]["name"] == "Switch room A"
    async with site.client("duty_a") as c:
        assert [u["key"] for u in (await c.get("/api/units")).json()["items"]] == ["plant-a"]
    async with site.client("supervisor") as c:
        assert {u["key"] for u in (await c.get("/api/units")).json()["items"]} == {"plant-a", "office-b"}


async def test_device_list_detail_and_scoping(site) -> None:
    a, b = site.device("det-a"), site.device("det-b")
    async with site.client("duty_a") as c:
        listing = (await c.get("/api/devices")).json()
        assert [d["id"] for d in listing["items"]] == [a] and listing["total"] == 1
        detail = (await c.get(f"/api/devices/{a}")).json()
        assert {p["key"]: p["value"] for p in detail["points"]} == {"smoke": False, "rc": 20}
        assert detail["unit"]["key"] == "plant-a" and detail["location_path"] == "Main hall / F1 / Switch room A"
        assert detail["last_report"] and detail["status"] == "normal"
        # Another unit's device: 404, indistinguishable from one that does not exist.
        other = await c.get(f"/api/devices/{b}")
        missing = await c.get("/api/devices/NOSUCHDEVICE")
        assert other.status_code == missing.status_code == 404
        assert other.json()["error"]["code"] == missing.json()["error"]["code"] == "device_not_found"
        assert b not in other.text.replace(f"no device {b!r}", "")
        assert (await c.get("/api/devices?unit=office-b")).status_code == 404
    async with site.client("admin") as c:
        assert (await c.get("/api/devices")).json()["total"] == 2
        page = (await c.get("/api/devices?limit=1")).json()
        assert len(page["items"]) == 1 and page["next_offset"] == 1
        page2 = (await c.get("/api/devices?limit=1&offset=1")).json()
        assert page2["next_offset"] is None and page2["items"][0]["id"] != page["items"][0]["id"]
        assert [d["id"] for d in (await c.get("/api/devices?unit=office-b")).json()["items"]] == [b]
        assert (await c.get("/api/devices?status=normal")).json()["total"] == 2
        for bad in ("limit=0", "limit=501", "limit=x", "offset=-1", "status=burning"):
            r = await c.get(f"/api/devices?{bad}")
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_parameter", bad


async def test_alarms_list_filter_scope_and_counts(site) -> None:
    alarm_id = await raise_fire(site, "A1")
    VALUES["B1"]["rc"] = 350  # electrical alarm in office B
    b = site.device("det-b")
    await wait_until(lambda: any(x.device_id == b for x in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("admin") as c:
        items = (await c.get("/api/alarms")).json()["items"]
        assert {i["category"] for i in items} >= {"fire", "electrical_alarm"}
        fire = (await c.get("/api/alarms?category=fire")).json()["items"]
        assert [i["id"] for i in fire] == [alarm_id]
        assert fire[0]["location_path"] == "Main hall / F1 / Switch room A" and fire[0]["unit_name"] == "Plant A"
        assert (await c.get("/api/alarms?unit=office-b")).json()["items"][0]["device_id"] == b
        assert (await c.get("/api/alarms?status=active")).json()["total"] >= 2
        units = {u["key"]: u for u in (await c.get("/api/units")).json()["items"]}
        assert units["plant-a"]["counts"]["alarm"] == 1 and units["office-b"]["counts"]["alarm"] == 1
        for bad in ("status=open-ish", "category=flood", "limit=1000"):
            assert (await c.get(f"/api/alarms?{bad}")).status_code == 400, bad
        assert (await c.get("/api/alarms?device=NOPE")).status_code == 404
    async with site.client("duty_a") as c:
        items = (await c.get("/api/alarms?status=all")).json()["items"]
        assert items and all(i["unit_id"] == site.core.registry.devices[site.device("det-a")].unit_id for i in items)
        assert (await c.get(f"/api/alarms?device={b}")).status_code == 404
        assert (await c.get("/api/alarms?unit=office-b")).status_code == 404
        detail = (await c.get(f"/api/alarms/{alarm_id}")).json()
        assert detail["history"][0]["transition"] == "new"
    async with site.client("manager_b") as c:
        assert (await c.get(f"/api/alarms/{alarm_id}")).status_code == 404
        assert all(i["device_id"] == b for i in (await c.get("/api/alarms")).json()["items"])


async def test_ack_silence_verdict_by_role(site) -> None:
    alarm_id = await raise_fire(site, "A1")
    async with site.client("manager_b") as c:  # another unit: 404, nothing happens
        r = await c.post(f"/api/alarms/{alarm_id}/ack")
        assert r.status_code == 404
    async with site.client("viewer_a") as c:  # supervisors read, they do not act
        r = await c.post(f"/api/alarms/{alarm_id}/ack")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert not (await site.core.alarms.get(alarm_id)).acknowledged
    async with site.client("duty_a") as c:
        r = await c.post(f"/api/alarms/{alarm_id}/ack", json={"note": "on my way"})
        assert r.status_code == 200, r.text
        assert r.json()["acknowledged"] and r.json()["ack_by"] == "duty_a"
        again = await c.post(f"/api/alarms/{alarm_id}/ack")
        assert again.status_code == 409 and "already acknowledged" in again.json()["error"]["message"]
        assert (await c.post(f"/api/alarms/{alarm_id}/silence")).json()["silenced"]
        bad = await c.post(f"/api/alarms/{alarm_id}/verdict", json={"verdict": "maybe"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_field"
        assert (await c.post(f"/api/alarms/{alarm_id}/verdict", content=b"{not json",
                             headers={"content-type": "application/json"})).status_code == 400
        assert (await c.post(f"/api/alarms/{alarm_id}/verdict", content=b"verdict=test",
                             headers={"content-type": "application/x-www-form-urlencoded"})).status_code == 415
        assert (await c.post(f"/api/alarms/{alarm_id}/verdict", json=["test"])).status_code == 400
        ok = await c.post(f"/api/alarms/{alarm_id}/verdict", json={"verdict": "false_alarm", "note": "dust"})
        assert ok.status_code == 200 and ok.json()["verdict"] == "false_alarm"
        assert (await c.post("/api/alarms/NOPE/ack")).status_code == 404
    history = await site.core.alarms.history(alarm_id)
    assert [h.transition for h in history][-3:] == ["acknowledged", "silenced", "verdict"]
    assert history[-1].actor == "duty_a"


async def test_verdict_only_for_fire(site) -> None:
    VALUES["B1"]["rc"] = 350
    b = site.device("det-b")
    await wait_until(lambda: any(x.device_id == b for x in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    alarm_id = next(x.id for x in site.core.alarms.open_alarms() if x.device_id == b)
    async with site.client("manager_b") as c:
        r = await c.post(f"/api/alarms/{alarm_id}/verdict", json={"verdict": "test"})
    assert r.status_code == 409 and "fire" in r.json()["error"]["message"]


async def test_point_history_raw_and_aggregates(site) -> None:
    point = site.point("det-a", "rc")
    for value in (40, 60, 80):
        VALUES["A1"]["rc"] = value
        await wait_until(lambda v=value: site.core.ingest.states[point].value == v)
    await site.core.storage.barrier()  # the API reads what is committed
    async with site.client("duty_a") as c:
        raw = (await c.get(f"/api/points/{point}/history?step=raw")).json()
        values = [p["value"] for p in raw["points"]]
        assert values[-3:] == [40, 60, 80] and raw["step"] == "raw" and raw["point"]["unit"] == "mA"
        assert raw["current"]["value"] == 80
        agg = (await c.get(f"/api/points/{point}/history?step=5m")).json()
        assert agg["step"] == "5m" and agg["points"]
        last = agg["points"][-1]
        assert last["max"] == 80 and last["min"] <= 40
        auto = (await c.get(f"/api/points/{point}/history?since={time.time() - 30 * 86400}")).json()
        assert auto["step"] == "1h"
        iso = await c.get(f"/api/points/{point}/history?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00")
        assert iso.status_code == 200 and iso.json()["points"] == []
        for bad, code in (("since=yesterday", "bad_parameter"), ("since=200&until=100", "bad_range"),
                          ("step=10s", "bad_parameter"), ("since=0", "bad_range"),
                          (f"step=raw&since={time.time() - 40 * 86400}", "bad_range")):
            r = await c.get(f"/api/points/{point}/history?{bad}")
            assert r.status_code == 400 and r.json()["error"]["code"] == code, bad
    async with site.client("manager_b") as c:
        assert (await c.get(f"/api/points/{point}/history")).status_code == 404


async def test_notifications_log_is_empty_without_notify_and_scoped(site) -> None:
    async with site.client("duty_a") as c:
        r = await c.get("/api/notifications")
    assert r.status_code == 200 and r.json() == {"items": [], "total": 0, "limit": 100, "offset": 0, "next_offset": None}


async def test_me(site) -> None:
    async with site.client("supervisor") as c:
        me = (await c.get("/api/me")).json()
    assert me == {"name": "supervisor", "role": "supervisor", "units": ["office-b", "plant-a"], "via": "token",
                  "all_units": False, "can_act": False, "can_urge": True, "direct_units": ["office-b", "plant-a"],
                  "orgs": []}


async def test_security_headers(site) -> None:
    async with site.client("admin") as c:
        r = await c.get("/api/units")
    assert "object-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    async with site.client() as c:
        big = await c.post("/api/alarms/x/ack", content=b"x" * 70000, headers={"content-type": "application/json"})
    assert big.status_code == 413
