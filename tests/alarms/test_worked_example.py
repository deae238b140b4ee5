"""docs/alarms.md §6, executed: every row of the worked example's timeline."""

import pytest

from firebus.core.alarms import AlarmConfig, AlarmError, AlarmStatus, LinkageRule, Match, MqttPublish, RuleConfig, WritePoint
from firebus.sdk import AlarmCategory
from firebus.sdk.clock import ManualClock

from .harness import running
from .points import rc

pytestmark = pytest.mark.anyio

CONFIG = AlarmConfig(
    rules=[
        RuleConfig(key="sanity", type="sensor_sanity"),
        RuleConfig(key="leakage", type="threshold", options={"on_delay": 10}, point_classes=["residual_current"]),
    ],
    default_rules=False,  # only the two rules below, to keep the example short
    escalation={"electrical_alarm": [60, 300, 900]},
    linkage=[
        LinkageRule(
            name="switch-room-fan",
            when=Match(categories=[AlarmCategory.ELECTRICAL_ALARM], locations=["room-101"]),
            actions=[
                WritePoint(device_id="fan-ctl", point_key="fan_start", value=1),
                MqttPublish(topic="bms/{unit_id}/alarm/{category}", retain=True),
            ],
        )
    ],
)


async def test_worked_example(tmp_path):
    db = tmp_path / "db.sqlite"
    clock = ManualClock(0.0)
    point = rc(rules={"leakage": {"alarm": 350}})
    published = []

    async def mqtt(action, alarm, context):
        published.append(action.topic.format(unit_id=alarm.unit_id, category=alarm.category))

    async def fan(device_id, key, value, context):
        pass

    common = dict(clock=clock, config=CONFIG, handlers={"mqtt_publish": mqtt}, write_impl=fan)
    async with running(db, [point], graceful=False, **common) as h:
        await h.value("rc1", 180.0)                                   # t=0
        assert not h.alarm_events()
        await h.advance(5)
        await h.value("rc1", 65535)                                   # t=5
        [fault] = h.alarm_events("new")
        assert fault.category == AlarmCategory.FAULT and "0xFFFF" in fault.message
        await h.advance(3)
        await h.value("rc1", 210.0)                                   # t=8
        [cleared] = h.alarm_events("cleared")
        assert cleared.alarm_id == fault.alarm_id and cleared.status == AlarmStatus.CLEARED_UNACK
        await h.advance(10)                                           # t=18
        [pre] = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_PRE_ALARM)
        assert pre.ts == 18
        await h.advance(12)
        await h.value("rc1", 360.0)                                   # t=30
        assert (await h.engine.get(pre.alarm_id)).count == 2
        await h.advance(5)                                            # t=35: killed

    async with running(db, [point], **common) as h:                   # restarted
        await h.advance(5)                                            # t=40
        [alarm] = h.alarm_events("new", category=AlarmCategory.ELECTRICAL_ALARM)
        assert (alarm.ts, alarm.value) == (40, 360.0)
        await h.wait_for(lambda: published and h.core.writes)
        assert published == ["bms/unit-a/alarm/electrical_alarm"]
        assert h.core.writes[0][:3] == ("fan-ctl", "fan_start", 1)
        await h.advance(60)                                           # t=100
        [esc] = h.alarm_events("escalate")
        assert (esc.escalation_step, esc.ts) == (1, 100)
        await h.advance(30)
        acked = await h.engine.acknowledge(alarm.alarm_id, "wang")    # t=130
        assert (acked.status, acked.ack_ts) == (AlarmStatus.ACTIVE_ACK, 130)
        await h.advance(70)
        await h.value("rc1", 340.0)                                   # t=200: inside hysteresis
        assert not h.alarm_events("cleared")
        await h.advance(15)
        await h.value("rc1", 300.0)                                   # t=215
        [done] = h.alarm_events("cleared")
        assert done.alarm_id == alarm.alarm_id and done.status == AlarmStatus.CLEARED_ACK
        assert alarm.alarm_id not in {a.id for a in h.engine.open_alarms()}
        assert (await h.engine.get(pre.alarm_id)).active              # 300 ≥ 200
        await h.advance(1000)
        assert len(h.alarm_events("escalate")) == 1                   # none after the ack
        with pytest.raises(AlarmError, match="fire alarms"):
            await h.engine.set_verdict(alarm.alarm_id, "false_alarm", "wang")
        history = [(t.transition, t.actor, t.ts) for t in await h.engine.history(alarm.alarm_id)]
        assert history == [
            ("new", "leakage", 40), ("escalate", "escalation", 100),
            ("acknowledged", "wang", 130), ("cleared", "leakage", 215),
        ]
        [write, pub] = await h.engine.linkage_log(alarm.alarm_id)
        assert write.ok and pub.ok
