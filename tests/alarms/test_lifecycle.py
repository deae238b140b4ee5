"""Alarm lifecycle: ThingsBoard's four statuses, silence, verdict, who and when, lineage."""

import pytest

from firebus.core.alarms import AlarmError, AlarmNotFound, AlarmStatus, Verdict
from firebus.sdk import ActorKind, AlarmCategory, AlarmTransition

from .harness import running
from .points import rc, smoke

pytestmark = pytest.mark.anyio


async def test_active_unack_to_active_ack_to_cleared_ack_with_actor_and_time(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        reading = await h.value("rc1", 350.0)
        [new] = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        assert new.status == AlarmStatus.ACTIVE_UNACK
        await h.advance(42)
        t_ack = h.clock.time()
        alarm = await h.engine.acknowledge(new.alarm_id, "alice", note="on my way")
        assert (alarm.status, alarm.ack_by, alarm.ack_ts) == (AlarmStatus.ACTIVE_ACK, "alice", t_ack)
        with pytest.raises(AlarmError, match="already acknowledged by alice"):
            await h.engine.acknowledge(new.alarm_id, "bob")
        await h.value("rc1", 100.0)
        await h.settle()
        alarm = await h.engine.get(new.alarm_id)
        assert alarm.status == AlarmStatus.CLEARED_ACK and alarm.cleared_by == "rule:threshold"
        assert await h.engine.list_alarms(AlarmStatus.ACTIVE_UNACK, category=AlarmCategory.ELECTRICAL_ALARM) == []
        assert [a.id for a in await h.engine.list_alarms("cleared_ack", category="electrical_alarm")] == [alarm.id]

        history = await h.engine.history(new.alarm_id)
        assert [(t.transition, t.actor_kind, t.actor) for t in history] == [
            ("new", "rule", "threshold"),
            ("acknowledged", "user", "alice"),
            ("cleared", "rule", "threshold"),
        ]
        assert history[1].ts == t_ack and history[1].detail == {"note": "on my way"}
        # lineage: reading → alarm; the ack's parent is the alarm
        assert history[0].parent_id == reading.ref  # a state change is known by its seq ("j<seq>")
        assert history[1].parent_id == history[0].context_id
        ack_event = next(e for e in h.events if e.data.transition == AlarmTransition.ACKNOWLEDGED)
        assert ack_event.context.actor == ActorKind.USER and ack_event.context.actor_id == "alice"


async def test_cleared_unacknowledged_stays_on_the_board_until_acknowledged(tmp_path):
    async with running(tmp_path / "db.sqlite", [rc()]) as h:
        await h.value("rc1", 350.0)
        await h.value("rc1", 100.0)
        [alarm] = await h.engine.list_alarms("cleared_unack", category="electrical_alarm")
        assert alarm.id in {a.id for a in h.engine.open_alarms()}
        await h.engine.acknowledge(alarm.id, "bob")
        assert alarm.id not in {a.id for a in h.engine.open_alarms()}
        with pytest.raises(AlarmError, match="closed"):
            await h.engine.acknowledge(alarm.id, "bob")
        # the condition coming back is a new alarm, not the old one reopened
        await h.value("rc1", 360.0)
        new = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        assert len(new) == 2 and new[1].alarm_id != alarm.id


async def test_silence_without_clearing_and_verdict_on_fire_alarms(tmp_path):
    async with running(tmp_path / "db.sqlite", [smoke("s1", "r1"), rc()]) as h:
        await h.value("s1", True)
        [fire] = h.alarm_events("new", category=AlarmCategory.FIRE)
        alarm = await h.engine.silence(fire.alarm_id, "guard-2")
        assert alarm.silenced and alarm.active and alarm.status == AlarmStatus.ACTIVE_UNACK
        assert alarm.silenced_by == "guard-2"
        with pytest.raises(AlarmError, match="already silenced"):
            await h.engine.silence(fire.alarm_id, "guard-2")
        alarm = await h.engine.set_verdict(fire.alarm_id, "false_alarm", "inspector", note="steam from kitchen")
        assert alarm.verdict == Verdict.FALSE_ALARM and alarm.verdict_by == "inspector"
        alarm = await h.engine.set_verdict(fire.alarm_id, Verdict.TEST, "inspector")  # revised
        [*_, last] = await h.engine.history(fire.alarm_id)
        assert last.transition == "verdict" and last.detail["previous"] == "false_alarm"
        with pytest.raises(AlarmError, match="unknown verdict"):
            await h.engine.set_verdict(fire.alarm_id, "maybe", "inspector")

        await h.value("rc1", 400.0)
        [elec] = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        with pytest.raises(AlarmError, match="fire alarms"):
            await h.engine.set_verdict(elec.alarm_id, "real_fire", "inspector")
        with pytest.raises(AlarmNotFound):
            await h.engine.acknowledge("nope", "x")
        with pytest.raises(AlarmError, match="actor"):
            await h.engine.acknowledge(elec.alarm_id, "")


async def test_operator_clear_and_filters(tmp_path):
    points = [rc(), rc("rc2", "em2")]
    async with running(tmp_path / "db.sqlite", points) as h:
        await h.value("rc1", 350.0)
        await h.value("rc2", 250.0)
        active = await h.engine.list_alarms(["active_unack"])
        assert [a.category for a in active] == [
            AlarmCategory.ELECTRICAL_ALARM, AlarmCategory.ELECTRICAL_PRE_ALARM, AlarmCategory.ELECTRICAL_PRE_ALARM,
        ]  # most severe first
        assert await h.engine.list_alarms(unit_id="unit-b") == []
        assert len(await h.engine.list_alarms(unit_id="unit-a")) == 3
        [elec] = await h.engine.list_alarms(category="electrical_alarm")
        cleared = await h.engine.clear(elec.id, "maint")
        assert cleared.cleared_by == "user:maint" and cleared.status == AlarmStatus.CLEARED_UNACK
        await h.value("rc1", 355.0)  # still over: a reset while the leak persists re-alarms
        assert len(h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)) == 2
