"""Per-unit aggregates from real alarms (raised, acknowledged, cleared, judged by the real
engine), real hazards and patrol records (the inspection plugin's API), a stored score;
read over real HTTP.  A restart resumes from the cursor and counts nothing twice."""

from __future__ import annotations

import pytest

from firebus.sdk import AlarmCategory, Severity

from .conftest import START, Site, open_site, wait_until

pytestmark = pytest.mark.anyio


async def unit_row(site: Site, key: str, who: str = "admin") -> dict:
    async with site.client(who) as c:
        r = await c.get(f"/api/units/{key}")
        assert r.status_code == 200, r.text
        return r.json()


async def scenario(site: Site) -> None:
    """School: a fire alarm acknowledged after 30 s, cleared after 120 s, judged a false alarm;
    a pre-alarm acknowledged after 90 s and still active.  Factory: a fire alarm left open."""
    engine = site.core.alarms
    site.condition("fire-1", True, unit="school", location="s-kitchen", category=AlarmCategory.FIRE, severity=Severity.FIRE)
    site.condition("fire-f", True, unit="factory", location="f-switch", category=AlarmCategory.FIRE, severity=Severity.FIRE)
    await site.settle()
    fire = await wait_until(lambda: site.alarm_of("fire-1"))
    await site.clock.advance(30)
    await engine.acknowledge(fire.id, "duty_school")
    await site.clock.advance(30)
    site.condition("pre-1", True, unit="school", location="s-switch", category=AlarmCategory.ELECTRICAL_PRE_ALARM,
                   severity=Severity.PRE_ALARM)
    await site.settle()
    pre = await wait_until(lambda: site.alarm_of("pre-1"))
    await site.clock.advance(60)
    site.condition("fire-1", False, unit="school", location="s-kitchen", category=AlarmCategory.FIRE)
    await site.settle()
    await site.clock.advance(30)
    await engine.acknowledge(pre.id, "duty_school")
    await engine.set_verdict(fire.id, "false_alarm", "manager_school")
    await site.settle()


async def test_aggregates_after_alarms_acks_clears_and_restart(tmp_path, hook) -> None:
    db = tmp_path / "fb.db"
    async with open_site(db, hook) as site:
        await scenario(site)
        async with site.client("manager_school", "inspection") as c:
            r = await c.post("/api/hazards", json={"description": "extinguisher missing", "location": "s-kitchen",
                                                   "deadline": START + 3600})
            assert r.status_code == 201, r.text
            r = await c.post("/api/records", json={"id": "rec-1", "checkpoint": "cp-s", "ts": START + 200,
                                                   "results": [{"item": "extinguisher", "result": "normal"}]})
            assert r.status_code == 201, r.text
        await site.clock.advance(7200)  # the hazard's deadline passed
        # a periodic report the reports plugin stored (its table, as its scheduler writes it)
        await site.core.storage.execute(
            "INSERT INTO report_files (id, schedule, unit_id, unit_key, period, period_start, period_end, grade, score, "
            "created, files) VALUES ('r1', 'monthly', ?, 'school', '2026-11', ?, ?, 'C', 66.5, ?, '{}')",
            (site.place("school"), START - 30 * 86400, START - 9 * 3600, START - 8 * 3600))
        await site.state.aggregator.refresh()

        def settled(row: dict) -> bool:
            return row["verdicts"]["total"] == 1 and row["response"]["acknowledged"] == 2

        row = await wait_until(lambda: _poll(site, "school", settled))
        assert row["open_by_category"].get("electrical_pre_alarm") == 1
        assert "fire" not in row["open_by_category"]  # cleared and acknowledged: off the board
        assert (row["alarms_month"], row["pre_alarms_month"]) == (1, 1)
        resp = row["response"]
        assert (resp["ack_median_s"], resp["ack_p90_s"]) == (30, 90)  # nearest rank of [30, 90]
        assert (resp["clear_median_s"], resp["cleared"]) == (120, 1)
        assert row["verdicts"]["false_alarm"] == 1 and row["verdicts"]["false_share"] == 1.0
        assert (row["hazards_open"], row["overdue"]) == (1, 1)
        assert row["last_inspection_ts"] == START + 200
        assert (row["grade"], row["score"], row["score_source"]) == ("C", 66.5, "report")  # no live score here
        assert (row["report_grade"], row["report_score"], row["score_period"]) == ("C", 66.5, "2026-11")
        assert row["kind"] == "school" and row["geo"] == {"lat": 31.23, "lon": 121.47}
        factory = await unit_row(site, "factory")
        assert factory["open_by_category"] == {"fire": 1} and factory["response"]["ack_median_s"] is None
        async with site.client("admin") as c:
            where = (await c.get("/api/where")).json()
        assert where["alarms"]["place_kind"] == {"kitchen": 1, "switch room": 1}
        assert where["alarms"]["unit_kind"] == {"school": 1, "factory": 1}
        assert where["pre_alarms"]["place_kind"] == {"switch room": 1}
        assert where["alarms"]["heat"][1][9] == 2  # Tuesday 09:00 Shanghai: both fire alarms
        assert where["hazards"]["place_kind"] == {"kitchen": 1}
        assert where["alarms"]["month"]["2026-12"] == 2

        # the same entries delivered again (a crash before the cursor was saved) change nothing
        agg = site.state.aggregator
        await agg._on_entries(await site.core.journal.read(0, 5000, types=["AlarmEvent"]))
        await agg.refresh()
        assert await unit_row(site, "school") == row | {"facts_ts": (await unit_row(site, "school"))["facts_ts"]}
        stored_cursor = agg.consumer.cursor
    async with open_site(db, hook, start=START + 7300) as site:
        agg = site.state.aggregator
        await wait_until(lambda: agg.consumer is not None and agg.consumer.caught_up.is_set())
        assert agg.handled == 0 and agg.consumer.cursor >= stored_cursor  # resumed, nothing read again
        site.condition("fire-2", True, unit="school", location="s-kitchen", category=AlarmCategory.FIRE,
                       severity=Severity.FIRE)
        await site.settle()
        await agg.refresh()
        again = await wait_until(lambda: _poll(site, "school", lambda r: r["alarms_month"] == 2))
        assert again["open_by_category"] == {"electrical_pre_alarm": 1, "fire": 1, "supervisory": 1}
        assert again["verdicts"]["false_alarm"] == 1 and again["hazards_open"] == 1
        async with site.client("admin") as c:
            assert (await c.get("/api/where")).json()["alarms"]["place_kind"] == {"kitchen": 2, "switch room": 1}


async def _poll(site: Site, key: str, ok) -> dict | None:
    row = await unit_row(site, key)
    return row if ok(row) else None


async def test_online_rate_counts_devices_never_heard_from(tmp_path, hook) -> None:
    from pathlib import Path

    import firebus.plugins.leakage as leakage
    from firebus.sdk.testing.harness import modbus_simulator, modbus_transport_yaml

    profile = Path(leakage.__file__).parent / "profiles" / "generic_rcd4t.yaml"
    async with modbus_simulator({11: profile}) as sim:  # a real Modbus TCP peer; unit 12 never answers
        devices = ("transports:\n" + modbus_transport_yaml("gw", sim.port) + """devices:
  - {key: rcd-1, driver: leakage.modbus, transport: gw, location: s-switch, options: {unit: 11, profile: generic_rcd4t}}
  - {key: rcd-2, driver: leakage.modbus, transport: gw, location: s-kitchen, options: {unit: 12, profile: generic_rcd4t}}
""")
        async with open_site(tmp_path / "fb.db", hook, devices=devices) as site:
            async def counted() -> dict | None:
                await site.clock.advance(1)  # polls and the state checkpoint run on the core's clock
                await site.state.aggregator.refresh()
                row = await unit_row(site, "school")
                return row if row["online"] == 1 else None

            row = await wait_until(counted)  # once the answering device's first reading is committed
            assert (row["devices"], row["online"], row["online_rate"]) == (2, 1, 0.5)
            mall = await unit_row(site, "mall")
            assert (mall["devices"], mall["online_rate"]) == (0, None)


async def test_the_live_health_score_from_the_journal_is_the_units_rating(tmp_path, hook) -> None:
    """The reports plugin journals UnitScored; the glance table shows the newest (score_source
    "live"), whoever published it, and keeps the stored report's figures beside it."""
    from firebus.sdk import UnitScored

    async with open_site(tmp_path / "s.db", hook) as site:
        school = site.place("school")
        site.core.bus.publish(UnitScored(unit_id=school, unit_key="school", score=91.0, grade="A", ts=START))
        site.core.bus.publish(UnitScored(unit_id=school, unit_key="school", score=72.5, grade="C", ts=START + 60))
        await site.settle()

        async def live_c() -> dict | None:
            row = await unit_row(site, "school")
            return row if row.get("score_source") == "live" and row["grade"] == "C" else None

        row = await wait_until(live_c)
        assert row["score"] == 72.5 and row["score_ts"] == START + 60
