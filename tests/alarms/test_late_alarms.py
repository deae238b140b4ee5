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


async def test_a_late_reading_raises_nothing_when_the_present_shows_the_alarm_or_it_is_telemetry(
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
                                   Reading(point_key="t", value=95.0, ts=t0 + 100)])  # telemetry: history only
        await core.storage.barrier()
        last = core.journal.last_seq
        consumer = core.alarms.consumer
        assert consumer is not None
        await eventually(lambda: consumer.metrics()["cursor"] >= last and not core.alarms.busy,
                         what="the engine through the late readings")
        assert core.ingest.metrics()["late"] == 2
        board = core.alarms.open_alarms()
        assert len(board) == 1 and board[0].active and not board[0].late, board
        assert core.alarms.metrics()["late_alarms"] == 0


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
