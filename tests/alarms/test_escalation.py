"""Escalation on the ManualClock: reminders at +1, +5, +15 min, then every 15, until acknowledged."""

import pytest

from firebus.core.alarms import AlarmConfig
from firebus.sdk import AlarmCategory, Severity

from .harness import running
from .points import gas, smoke

pytestmark = pytest.mark.anyio


async def test_reminders_follow_the_schedule_until_acknowledged(tmp_path):
    async with running(tmp_path / "db.sqlite", [smoke("s1", "r1")]) as h:
        t0 = h.clock.time()
        await h.value("s1", True)
        [new] = h.alarm_events("new")
        await h.advance(59.9)
        assert not h.alarm_events("escalate")
        await h.advance(0.1)
        await h.advance(300)
        await h.advance(900)
        await h.advance(900)
        steps = h.alarm_events("escalate", alarm_id=new.alarm_id)
        assert [(e.escalation_step, e.ts - t0) for e in steps] == [(1, 60), (2, 360), (3, 1260), (4, 2160)]
        assert all(e.category == AlarmCategory.FIRE for e in steps)
        # the escalation's context hangs off the alarm (reading → alarm → reminder)
        esc_event = next(e for e in h.events if e.data.transition == "escalate")
        new_event = next(e for e in h.events if e.data.transition == "new")
        assert esc_event.context.parent_id == new_event.context.id

        await h.engine.acknowledge(new.alarm_id, "duty officer")
        await h.advance(5000)
        assert len(h.alarm_events("escalate")) == 4
        assert h.engine.metrics()["timers"] == 0


async def test_silence_mutes_but_reminders_go_on_until_acknowledged(tmp_path):
    async with running(tmp_path / "db.sqlite", [gas()]) as h:
        await h.value("gas1", 30.0)
        [new] = h.alarm_events("new")
        await h.engine.silence(new.alarm_id, "guard")
        await h.advance(60)
        assert [e.escalation_step for e in h.alarm_events("escalate")] == [1]  # muting is not taking charge
        await h.value("gas1", 60.0)  # level 2: a worse alarm sounds again
        [update] = h.alarm_events("update")
        assert update.severity == Severity.FIRE
        assert not (await h.engine.get(new.alarm_id)).silenced
        await h.advance(60)  # and its reminders restart from the rise
        assert [e.escalation_step for e in h.alarm_events("escalate")] == [1, 2]
        await h.engine.acknowledge(new.alarm_id, "guard")
        await h.advance(5000)
        assert len(h.alarm_events("escalate")) == 2


async def test_clearing_stops_reminders_and_schedules_are_per_category(tmp_path):
    config = AlarmConfig(escalation={"fire": [10.0], "electrical_pre_alarm": []})
    async with running(tmp_path / "db.sqlite", [smoke("s1", "r1")], config=config) as h:
        await h.value("s1", True)
        await h.advance(35)
        assert [e.escalation_step for e in h.alarm_events("escalate")] == [1, 2, 3]
        await h.value("s1", False)
        await h.advance(100)
        assert len(h.alarm_events("escalate")) == 3
