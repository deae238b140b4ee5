"""Restart recovery: after a stop or a crash the engine resumes; it does not re-raise or forget."""

import os
import signal
import subprocess
import sys
import textwrap

import anyio
import pytest

from firebus.core.alarms import AlarmStatus
from firebus.sdk import AlarmCategory
from firebus.sdk.clock import ManualClock

from .harness import running
from .points import rc, smoke

pytestmark = pytest.mark.anyio

ELEC = AlarmCategory.ELECTRICAL_ALARM


@pytest.mark.parametrize("graceful", [True, False], ids=["stop", "crash"])
async def test_active_alarms_and_escalation_resume(tmp_path, graceful):
    db = tmp_path / "db.sqlite"
    clock = ManualClock()
    t0 = clock.time()
    async with running(db, [smoke("s1", "r1"), rc()], clock=clock, graceful=graceful) as h:
        await h.value("s1", True)
        await h.value("rc1", 350.0)
        await h.advance(60)  # first reminder of the fire alarm
        [fire] = h.alarm_events("new", category=AlarmCategory.FIRE)
        [elec] = h.alarm_events("new", category=ELEC)
        assert [e.escalation_step for e in h.alarm_events("escalate", alarm_id=fire.alarm_id)] == [1]
        before = {a.id: a for a in await h.engine.list_alarms()}

    async with running(db, [smoke("s1", "r1"), rc()], clock=clock) as h:
        after = {a.id: a for a in await h.engine.list_alarms()}
        assert after == before  # same alarms, same counts, same statuses
        assert after[fire.alarm_id].status == AlarmStatus.ACTIVE_UNACK
        assert not h.alarm_events("new")  # nothing re-raised on start
        await h.value("rc1", 360.0)  # a repeat updates the alarm from before the restart
        assert not h.alarm_events("new")
        assert (await h.engine.get(elec.alarm_id)).count == 2
        await h.advance(299.9)
        assert not h.alarm_events("escalate")
        await h.advance(0.1)
        [step2] = h.alarm_events("escalate", alarm_id=fire.alarm_id)
        assert (step2.alarm_id, step2.escalation_step, step2.ts) == (fire.alarm_id, 2, t0 + 360)
        await h.value("s1", False)
        assert h.alarm_events("cleared", alarm_id=fire.alarm_id)


async def test_pending_on_delay_survives_a_crash(tmp_path):
    db = tmp_path / "db.sqlite"
    clock = ManualClock()
    point = rc(rules={"threshold": {"on_delay": 30}})
    async with running(db, [point], clock=clock, graceful=False) as h:
        t0 = clock.time()
        await h.value("rc1", 320.0)
        await h.advance(10)
    async with running(db, [point], clock=clock) as h:
        await h.advance(19.9)
        assert not h.alarm_events("new")
        await h.advance(0.2)
        [new] = h.alarm_events("new", category=ELEC)
        assert new.ts == pytest.approx(t0 + 30)  # the wait went on, it did not restart


async def test_timer_due_while_down_fires_once_on_start(tmp_path):
    db = tmp_path / "db.sqlite"
    clock = ManualClock()
    point = rc(rules={"threshold": {"on_delay": 30}})
    async with running(db, [point], clock=clock) as h:
        await h.value("rc1", 320.0)
    await clock.advance(3600)  # an hour down
    async with running(db, [point], clock=clock) as h:
        await h.wait_for(lambda: h.alarm_events("new", category=ELEC))
        assert len(h.alarm_events("new", category=ELEC)) == 1


async def test_heartbeat_does_not_blame_devices_for_our_downtime(tmp_path):
    from firebus.sdk import PointInfo

    db = tmp_path / "db.sqlite"
    clock = ManualClock()
    p = PointInfo(point_id="a", device_id="nb1", key="smoke", point_class="smoke", overrides={"expected_interval": 60})
    async with running(db, [p], clock=clock) as h:
        await h.value("a", False)
    await clock.advance(3600)
    async with running(db, [p], clock=clock) as h:
        await h.advance(179)
        assert not h.alarm_events("new")
        await h.advance(2)  # a full 3 × 60 s after we came back
        assert h.alarm_events("new", category=AlarmCategory.OFFLINE)


CHILD = textwrap.dedent(
    """
    import sys, anyio
    sys.path.insert(0, {tests!r})
    from alarms.harness import running
    from alarms.points import rc, smoke
    from firebus.sdk.clock import ManualClock

    async def main():
        async with running({db!r}, [smoke("s1", "r1"), rc()], clock=ManualClock(1_800_000_000.0)) as h:
            await h.value("s1", True)
            await h.value("rc1", 330.0)
            for e in h.alarm_events("new"):
                print("ALARM", e.alarm_id, flush=True)
            print("READY", flush=True)
            await anyio.sleep_forever()

    anyio.run(main)
    """
)


async def test_killed_process_leaves_the_same_alarms_behind(tmp_path):
    db = tmp_path / "db.sqlite"
    tests_dir = os.path.dirname(os.path.dirname(__file__))
    script = CHILD.format(tests=tests_dir, db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ids = []
    try:
        with anyio.fail_after(60):
            while True:
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line, f"child died: {proc.stderr.read()}"
                if line.startswith("ALARM"):
                    ids.append(line.split()[1])
                if line.startswith("READY"):
                    break
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown
        proc.wait(timeout=30)
    assert len(ids) == 3  # fire (single detector), electrical pre-alarm, electrical alarm
    clock = ManualClock(1_800_000_000.0)
    async with running(db, [smoke("s1", "r1"), rc()], clock=clock) as h:
        assert {a.id for a in await h.engine.list_alarms("active_unack")} == set(ids)
        await h.advance(60)  # and the fire alarm's escalation timer came back with them
        assert h.alarm_events("escalate", category=AlarmCategory.FIRE)
