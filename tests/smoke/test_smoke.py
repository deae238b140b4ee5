"""The smoke plugin end to end: real Mosquitto, real core, the real NB smoke fleet simulator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from firebus.core.sim.smoke import FleetConfig, ScriptedEvent
from firebus.sdk import AlarmEvent
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import Listener, imeis, publish_raw, ready, run_fleet, start_core

pytestmark = pytest.mark.anyio


def fleet(n: int = 3, **kw) -> FleetConfig:
    kw.setdefault("heartbeat_s", 0.5)
    kw.setdefault("battery_start", (80, 100))
    return FleetConfig(devices=n, seed=kw.pop("seed", 7), **kw)


async def test_alarm_then_clear_from_the_device(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(2, events=[ScriptedEvent(at=0.6, device=0, event="alarm", duration=0.8)])
    a, b = imeis(cfg)
    async with start_core(tmp_path, broker, [("det-a", a, "room-a"), ("det-b", b, "room-b")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        await run_fleet(cfg, broker.port, 2.0)
        det_a = core.device_ids["det-a"]
        new = await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new", device_id=det_a)
        assert new.category == "fire" and new.value is True
        assert "Room A" in new.message
        cleared = await log.wait_for(AlarmEvent, rule="two_detector:single", transition="cleared", device_id=det_a)
        assert cleared.alarm_id == new.alarm_id
        # One detector is a fire alarm, not a confirmed fire.
        assert not log.of(AlarmEvent, rule="two_detector:confirmed")
        assert not log.of(AlarmEvent, rule="two_detector:single", device_id=core.device_ids["det-b"])


async def test_two_detectors_in_one_room_confirm_a_fire(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(3, events=[
        ScriptedEvent(at=0.5, device=0, event="alarm"),
        ScriptedEvent(at=0.9, device=1, event="alarm"),
        ScriptedEvent(at=0.7, device=2, event="alarm"),  # alone in room B
    ])
    a, b, c = imeis(cfg)
    devices = [("det-a1", a, "room-a"), ("det-a2", b, "room-a"), ("det-b1", c, "room-b")]
    async with start_core(tmp_path, broker, devices, recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        await run_fleet(cfg, broker.port, 1.5)
        room_a = core.registry.place_by_key("room-a").id
        room_b = core.registry.place_by_key("room-b").id
        confirmed = await log.wait_for(AlarmEvent, rule="two_detector:confirmed", transition="new", location_id=room_a)
        assert confirmed.category == "fire" and confirmed.severity == 60  # Severity.FIRE
        assert confirmed.value == 2
        await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new", device_id=core.device_ids["det-b1"])
        assert not log.of(AlarmEvent, rule="two_detector:confirmed", location_id=room_b)


async def test_missed_heartbeats_make_a_detector_offline(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(1, heartbeat_s=1.0)  # the simulator reports whole seconds
    (a,) = imeis(cfg)
    async with start_core(tmp_path, broker, [("det-a", a, "room-a")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        dev = core.device_ids["det-a"]
        await run_fleet(cfg, broker.port, 2.5)  # a few heartbeats, then silence
        # The period comes from the detector's own heartbeat_s, not from the site file.
        offline = await log.wait_for(AlarmEvent, rule="smoke_heartbeat", transition="new", device_id=dev)
        assert offline.category == "offline"
        assert "expected every 1 s" in offline.message
        # Back on the air: the offline alarm clears by itself.
        await run_fleet(fleet(1, heartbeat_s=1.0), broker.port, 1.0)
        await log.wait_for(AlarmEvent, rule="smoke_heartbeat", transition="cleared", device_id=dev)


async def test_low_battery_and_tamper_are_faults_of_their_own(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(2, battery_start=(10, 10), low_battery_pct=20,
                events=[ScriptedEvent(at=0.6, device=1, event="tamper")])
    a, b = imeis(cfg)
    async with start_core(tmp_path, broker, [("det-a", a, "room-a"), ("det-b", b, "room-a")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        await run_fleet(cfg, broker.port, 1.2)
        low = await log.wait_for(AlarmEvent, rule="smoke_status:low_battery", transition="new", device_id=core.device_ids["det-a"])
        assert low.category == "fault" and "low battery" in low.message
        tamper = await log.wait_for(AlarmEvent, rule="device_status:tamper", transition="new", device_id=core.device_ids["det-b"])
        assert tamper.category == "fault" and "tamper" in tamper.message
        # Neither is a "detector fault", nor a fire.
        assert not log.of(AlarmEvent, rule="device_status:fault")
        assert not log.of(AlarmEvent, rule="two_detector:single")


async def test_unknown_detector_is_discovered_not_trusted(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(2, events=[ScriptedEvent(at=0.5, device=1, event="alarm")])
    known, stranger = imeis(cfg)
    async with start_core(tmp_path, broker, [("det-a", known, "room-a")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        await run_fleet(cfg, broker.port, 1.2)
        def smoke_state():
            found = core.registry.find_device({"imei": stranger})
            point = core.registry.point(found.id, "smoke") if found else None
            state = core.ingest.state(point.id) if point else None
            return state.value if state else None

        await wait_until(lambda: smoke_state() == 1)  # its alarm is stored …
        found = core.registry.find_device({"imei": stranger})
        assert found.discovered and found.driver == "smoke.generic" and found.model == "generic NB-IoT smoke"
        # Stored, visible, but its alarm is not trusted until someone commissions it.
        assert not log.of(AlarmEvent, device_id=found.id)
        assert not core.registry.find_device({"imei": known}).discovered


async def test_malformed_payloads_are_quarantined_while_good_traffic_flows(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(1, events=[ScriptedEvent(at=0.6, device=0, event="alarm")])
    (a,) = imeis(cfg)
    good = {"v": 1, "imei": a, "seq": 1, "ts": 1.8e9, "event": "heartbeat",
            "state": {"smoke": False, "fault": False, "low_battery": False, "tamper": False},
            "battery": 90, "rsrp": -90, "heartbeat_s": 60}
    bad = [
        (f"firebus/smoke/{a}/up", b"\x00\x01 not json"),
        (f"firebus/smoke/{a}/up", json.dumps({**good, "imei": "12ab"}).encode()),
        (f"firebus/smoke/{a}/up", json.dumps({k: v for k, v in good.items() if k != "imei"}).encode()),
        (f"firebus/smoke/{a}/up", json.dumps({**good, "battery": "full"}).encode()),
        (f"firebus/smoke/{a}/up", json.dumps({k: v for k, v in good.items() if k != "state"}).encode()),
        (f"firebus/smoke/{a}/up", b"[1, 2, 3]"),
    ]
    async with start_core(tmp_path, broker, [("det-a", a, "room-a")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_fleet, cfg, broker.port, 1.2)
            await anyio.to_thread.run_sync(publish_raw, broker.port, bad)
        await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new", device_id=core.device_ids["det-a"])
        await wait_until(lambda: core.quarantined >= len(bad))
        await core.storage.barrier()
        rows = await core.storage.fetchall("SELECT source, reason, payload FROM quarantine ORDER BY id")
        reasons = [r[1] for r in rows]
        assert len(rows) == len(bad)
        assert all(r[0].startswith("mq/smoke.generic:firebus/smoke/") for r in rows)
        assert any("not JSON" in r for r in reasons)
        assert any("does not match" in r and "12ab" in r for r in reasons)
        assert any("no device identity" in r for r in reasons)
        assert any("'battery'" in r and "expected a number" in r for r in reasons)
        assert any("required field 'state' missing" in r for r in reasons)
        assert any("must be a JSON object" in r for r in reasons)
        assert {bytes(r[2]) for r in rows} == {p for _, p in bad}  # the raw bytes are kept


async def test_mute_is_published_back_to_the_detector(firebus_recorder, tmp_path: Path, broker) -> None:
    cfg = fleet(1, events=[ScriptedEvent(at=0.5, device=0, event="alarm")])
    (a,) = imeis(cfg)
    listener = Listener(broker.port, "firebus/smoke/+/down")
    try:
        async with start_core(tmp_path, broker, [("det-a", a, "room-a")], recorder=firebus_recorder) as core:
            log = firebus_recorder
            await ready(core)
            await run_fleet(cfg, broker.port, 1.0)
            dev = core.device_ids["det-a"]
            alarm = await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new", device_id=dev)
            # The operator silences the fire alarm on the panel: the detector's sounder is muted too.
            await core.alarms.silence(alarm.alarm_id, "duty officer")
            await wait_until(lambda: listener.messages)
            assert listener.messages[0] == (f"firebus/smoke/{a}/down", {"cmd": "mute"})
            # And directly, as a command; a value the profile does not accept is refused.
            await core.write_point(dev, "mute", True)
            await wait_until(lambda: len(listener.messages) >= 2)
            with pytest.raises(ValueError, match="accepts"):
                await core.write_point(dev, "mute", False)
    finally:
        listener.close()


async def test_an_alarm_uploaded_after_the_detector_came_back_is_reported_late(
    firebus_recorder, tmp_path: Path, broker,
) -> None:
    """补报: the detector reports its present (normal) first, then the alarm it buffered while
    its link was down.  The present stays normal; the fire is recorded with the time it happened."""
    cfg = fleet(1)
    (a,) = imeis(cfg)
    now = time.time()
    state = {"smoke": False, "fault": False, "low_battery": False, "tamper": False}

    def msg(seq: int, ts: float, event: str, smoke: bool) -> tuple[str, bytes]:
        body = {"v": 1, "imei": a, "seq": seq, "ts": ts, "event": event, "state": {**state, "smoke": smoke},
                "battery": 90, "rsrp": -90, "heartbeat_s": 60}
        return f"firebus/smoke/{a}/up", json.dumps(body).encode()

    async with start_core(tmp_path, broker, [("det-a", a, "room-a")], recorder=firebus_recorder) as core:
        log = firebus_recorder
        await ready(core)
        det_a = core.device_ids["det-a"]
        upload = [msg(10, now, "heartbeat", False), msg(7, now - 300, "alarm", True), msg(8, now - 240, "clear", False)]
        await anyio.to_thread.run_sync(publish_raw, broker.port, upload)
        new = await log.wait_for(AlarmEvent, rule="two_detector:single", transition="new", device_id=det_a)
        assert new.category == "fire" and new.occurred_ts == pytest.approx(now - 300, abs=0.01)
        cleared = await log.wait_for(AlarmEvent, rule="two_detector:single", transition="cleared", device_id=det_a)
        assert cleared.alarm_id == new.alarm_id and cleared.status == "cleared_unack"
        point = core.registry.point(det_a, "smoke")
        assert point is not None and core.ingest.state(point.id).value is False, "the present stays normal"
        [alarm] = [x for x in core.alarms.open_alarms() if x.id == new.alarm_id]
        assert alarm.late and alarm.start_ts == pytest.approx(now - 300, abs=0.01)
