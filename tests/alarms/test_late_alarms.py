"""An alarm only a late reading shows (补报): recorded, told, on the board until acknowledged.

A smoke detector whose link was down reports its present ("normal") first and then
uploads what it buffered, including the alarm it raised meanwhile.  The late alarm
reading must not turn the present back (tests/core/test_ingest_order.py), but the fire
it shows happened: an alarm that started at the reading's time, cleared, and left on
the board for a person to acknowledge — once, however often the upload is repeated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.sdk import AlarmEvent, AlarmTransition, Event, PointSpec, Reading
from firebus.sdk.testing.waiting import eventually

pytestmark = pytest.mark.anyio


def _site(tmp_path: Path) -> str:
    return f"site: {{name: Late}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\nalarms: {{escalation: {{}}}}\n"


async def test_a_buffered_fire_alarm_is_recorded_once_as_a_late_alarm_and_survives_a_restart(tmp_path: Path) -> None:
    site = load_text(_site(tmp_path), "site.yaml")
    told: list[AlarmEvent] = []
    t0 = time.time() - 600
    async with running_core(site, autoload=False) as core:

        async def record(event: Event) -> None:
            told.append(event.data)

        core.bus.subscribe("test-told", record, types=[AlarmEvent])
        device = await core.registry.resolve_device({"serial": "sd-1"}, driver="test", config_key="sd-1")
        await core.registry.ensure_points(device.id, [PointSpec(key="smoke", point_class="smoke")])

        def apply(value: bool, ts: float) -> None:
            core.ingest.apply(device, [Reading(point_key="smoke", value=value, ts=ts)])

        apply(False, t0 + 500)  # back online: the present is "normal"
        await core.storage.barrier()
        apply(True, t0 + 100)  # the buffer: the alarm it raised while the link was down …
        apply(True, t0 + 130)  # … repeated by the detector …
        apply(False, t0 + 200)  # … and its restore
        apply(True, t0 + 100)  # the broker delivers the upload's first message again

        new = await eventually(lambda: [a for a in told if a.transition is AlarmTransition.NEW],
                               what="the late alarm's NEW")
        await eventually(lambda: [a for a in told if a.transition is AlarmTransition.CLEARED],
                         what="the late alarm cleared")
        await core.storage.barrier()
        assert len(new) == 1, f"one episode, one alarm: {new}"
        assert new[0].occurred_ts == pytest.approx(t0 + 100)
        assert new[0].ts > t0 + 500, "the transition is when it was recorded"
        board = core.alarms.open_alarms()
        assert len(board) == 1
        alarm = board[0]
        assert alarm.late and not alarm.active and not alarm.acknowledged
        assert alarm.start_ts == pytest.approx(t0 + 100)
        assert alarm.count == 2, "the repeat is counted; the redelivery is not"
        assert core.ingest.state(core.registry.point(device.id, "smoke").id).value is False, "the present stays"
        history = [h.transition for h in await core.alarms.history(alarm.id)]
        assert history == ["new", "cleared"]
        assert core.alarms.metrics()["late_alarms"] == 1
        alarm_id = alarm.id

    async with running_core(site, autoload=False) as core:
        board = core.alarms.open_alarms()
        assert [a.id for a in board] == [alarm_id], "a late alarm stays on the board across a restart"
        assert board[0].late and board[0].start_ts == pytest.approx(t0 + 100)


async def _through_the_engine(core: Any) -> None:
    await core.storage.barrier()
    last = core.journal.last_seq
    consumer = core.alarms.consumer
    assert consumer is not None
    await eventually(lambda: consumer.metrics()["cursor"] >= last and not core.alarms.busy,
                     what="the engine through the readings")


async def test_a_late_reading_the_present_shows_raises_nothing_and_late_telemetry_is_told(
    tmp_path: Path,
) -> None:
    t0 = time.time() - 600
    async with running_core(load_text(_site(tmp_path), "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "sd-2"}, driver="test", config_key="sd-2")
        await core.registry.ensure_points(device.id, [PointSpec(key="smoke", point_class="smoke"),
                                                      PointSpec(key="t", point_class="temperature", unit="°C")])
        core.ingest.apply(device, [Reading(point_key="smoke", value=True, ts=t0 + 500),
                                   Reading(point_key="t", value=20.0, ts=t0 + 500)])
        await eventually(lambda: [a for a in core.alarms.open_alarms() if a.active], what="the live alarm")
        core.ingest.apply(device, [Reading(point_key="smoke", value=True, ts=t0 + 100),  # the present shows it
                                   Reading(point_key="t", value=95.0, ts=t0 + 100)])  # a hot cable, told late
        await _through_the_engine(core)
        assert core.ingest.metrics()["late"] == 2
        board = core.alarms.open_alarms()
        live = [a for a in board if not a.late]
        late = [a for a in board if a.late]
        assert len(live) == 1 and live[0].active and live[0].category == "fire", board
        assert len(late) == 1, board
        assert late[0].category == "electrical_alarm" and late[0].start_ts == pytest.approx(t0 + 100)
        assert late[0].last_value == 95.0 and not late[0].active
        assert core.alarms.metrics()["late_alarms"] == 1
        assert core.ingest.state(core.registry.point(device.id, "t").id).value == 20.0, "the present stays"


async def test_an_out_of_order_run_is_told_episode_by_episode_and_a_redelivery_of_told_readings_raises_nothing(
    tmp_path: Path,
) -> None:
    """The SIGKILL case (tests/reliability/test_kill_alarms.py): a cable alternating 20 / 90 °C,
    a newer reading committed first; the older ones arrive late, in time order, among
    redeliveries of readings already told live.  The device's clock is days off the engine's,
    so only windows on the readings' own clock can tell a redelivery from a new episode."""
    base = time.time() - 5 * 86400  # the device's clock: days behind ours (within ingest's max_past_s)
    async with running_core(load_text(_site(tmp_path), "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "cab-1"}, driver="test", config_key="cab-1")
        await core.registry.ensure_points(device.id, [PointSpec(key="t", point_class="temperature", unit="°C")])

        def apply(value: float, n: int) -> None:
            core.ingest.apply(device, [Reading(point_key="t", value=value, ts=base + n * 0.1)])

        def hot(n: int) -> float:
            return 90.0 if n % 2 else 20.0

        for n in range(6):  # told live: alarms for n = 1, 3, 5 (5 still active)
            apply(hot(n), n)
            await _through_the_engine(core)
        apply(hot(20), 20)  # a newer reading first (20 °C: the live alarm of n = 5 clears)
        await _through_the_engine(core)
        assert len(core.alarms.open_alarms()) == 3 and core.alarms.metrics()["late_alarms"] == 0
        for n in (3, 4, 5):  # redelivered: already told
            apply(hot(n), n)
        for n in range(6, 20):  # never evaluated: 7 hot readings, 7 episodes
            apply(hot(n), n)
        for n in (1, 7, 9):  # redelivered again after a second kill
            apply(hot(n), n)
        await _through_the_engine(core)
        board = core.alarms.open_alarms()
        late = sorted((a for a in board if a.late), key=lambda a: a.start_ts)
        assert [round((a.start_ts - base) * 10) for a in late] == [7, 9, 11, 13, 15, 17, 19], board
        assert all(a.count == 1 and not a.active and a.category == "electrical_alarm" for a in late)
        assert len(board) == 3 + 7 and core.alarms.metrics()["late_alarms"] == 7
        assert core.ingest.state(core.registry.point(device.id, "t").id).value == 20.0


async def test_a_late_run_keeps_the_rules_state_hysteresis_and_on_delay_included(tmp_path: Path) -> None:
    """A buffered upload in time order is evaluated as a run: a level held past its on-delay
    raises one alarm from the time the delay ran out; hovering inside the hysteresis is the
    same episode; a reading that starts older than the run begins a new one."""
    t0 = time.time() - 3600
    async with running_core(load_text(_site(tmp_path), "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "rc-1"}, driver="test", config_key="rc-1")
        (point,) = await core.registry.ensure_points(
            device.id, [PointSpec(key="i", point_class="residual_current", unit="mA")])
        await core.registry.set_point_overrides(point.id, rules={"threshold": {"on_delay": 30}})

        def apply(value: float, at: float) -> None:
            core.ingest.apply(device, [Reading(point_key="i", value=value, ts=t0 + at)])

        apply(50.0, 3000)  # the present
        await _through_the_engine(core)
        apply(350.0, 100)  # over 300 mA …
        apply(350.0, 110)  # … for 10 s only: nothing
        apply(50.0, 120)
        apply(350.0, 200)  # over again, held 40 s: the alarm from 230 s on
        apply(310.0, 240)
        apply(290.0, 250)  # inside the 15 mA hysteresis: still the same episode
        apply(320.0, 260)
        apply(40.0, 300)  # restored
        await _through_the_engine(core)
        late = [a for a in core.alarms.open_alarms() if a.late and a.category == "electrical_alarm"]
        assert len(late) == 1, late
        assert late[0].start_ts == pytest.approx(t0 + 230)
        assert late[0].count == 4, "readings at 240, 250, 260 are more of it"
        assert late[0].peak_value == 350.0
        assert (late[0].first_reading_ts, late[0].last_reading_ts) == (pytest.approx(t0 + 230), pytest.approx(t0 + 300))
        told = core.alarms.metrics()["late_alarms"]  # this alarm, and the pre-alarm (200 mA) beside it
        apply(350.0, 150)  # older than the run: a new run, one reading, the on-delay not reached
        await _through_the_engine(core)
        assert core.alarms.metrics()["late_alarms"] == told


async def test_an_episode_off_the_board_is_not_raised_again_by_a_late_upload_even_after_a_restart(
    tmp_path: Path,
) -> None:
    """A live alarm acknowledged and cleared, and a late one acknowledged: re-uploads raise nothing."""
    site = load_text(_site(tmp_path), "site.yaml")
    t0 = time.time() - 600

    async def through_the_engine(core: Any) -> None:
        await core.storage.barrier()
        last = core.journal.last_seq
        consumer = core.alarms.consumer
        await eventually(lambda: consumer.metrics()["cursor"] >= last and not core.alarms.busy,
                         what="the engine through the readings")

    async with running_core(site, autoload=False) as core:
        live = await core.registry.resolve_device({"serial": "sd-3"}, driver="test", config_key="sd-3")
        buffered = await core.registry.resolve_device({"serial": "sd-4"}, driver="test", config_key="sd-4")
        for device in (live, buffered):
            await core.registry.ensure_points(device.id, [PointSpec(key="smoke", point_class="smoke")])
        # the live detector's clock is right: its readings' times are the engine's
        core.ingest.apply(live, [Reading(point_key="smoke", value=True, ts=time.time())])
        alarm = (await eventually(lambda: [a for a in core.alarms.open_alarms() if a.active], what="live alarm"))[0]
        await core.alarms.acknowledge(alarm.id, "wang")
        during = time.time()  # a reading of the episode, handed over out of order below
        core.ingest.apply(live, [Reading(point_key="smoke", value=False, ts=time.time())])
        await eventually(lambda: not core.alarms.open_alarms(), what="the live alarm off the board")
        core.ingest.apply(buffered, [Reading(point_key="smoke", value=False, ts=t0 + 500)])
        await core.storage.barrier()
        core.ingest.apply(buffered, [Reading(point_key="smoke", value=True, ts=t0 + 150)])
        late = (await eventually(lambda: core.alarms.open_alarms(), what="the late alarm"))[0]
        assert late.late and late.device_id == buffered.id
        await core.alarms.acknowledge(late.id, "wang")
        await eventually(lambda: not core.alarms.open_alarms(), what="the late alarm off the board")
        # a gateway hands over a reading of the live episode out of order
        core.ingest.apply(live, [Reading(point_key="smoke", value=True, ts=during)])
        await through_the_engine(core)
        assert core.alarms.open_alarms() == [] and core.alarms.metrics()["late_alarms"] == 1

    async with running_core(site, autoload=False) as core:
        devices = {d.config_key: d for d in core.registry.devices.values()}
        # both detectors upload their buffers again after our restart
        core.ingest.apply(devices["sd-3"], [Reading(point_key="smoke", value=True, ts=during)])
        core.ingest.apply(devices["sd-4"], [Reading(point_key="smoke", value=True, ts=t0 + 150),
                                             Reading(point_key="smoke", value=True, ts=t0 + 160)])
        await through_the_engine(core)
        assert core.alarms.open_alarms() == [], "an episode recorded before the restart was raised again"
        assert core.alarms.metrics()["late_alarms"] == 0
