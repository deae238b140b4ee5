"""Routing by role and unit, escalation on the manual clock, acknowledge, clear, quiet hours."""

from __future__ import annotations

import pytest

from firebus.sdk import AlarmCategory, AlarmTransition, Context, Severity

from .conftest import START, alarm, site, sms, wait_for

pytestmark = pytest.mark.anyio


def recipients(receiver) -> list[str]:
    return [m["to"] for m in sms(receiver)]


async def test_new_fire_alarm_reaches_the_units_duty_officer_and_the_group(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        ctx = Context()
        h.publish(alarm("A1", unit_id="unit-a"), ctx)
        await wait_for(lambda: len(sms(receiver)) == 1 and len(receiver.ok("/hook")) == 1, what="step 0")
        [text] = sms(receiver)
        assert text["to"] == "1001" and text["kind"] == "new" and text["step"] == 0
        assert text["title"].startswith("【火警】") and "拨打119" in text["text"]
        hook = receiver.ok("/hook")[0].json()
        assert hook["recipient"] == "*" and hook["alarm_id"] == "A1"
        # Results are published with the alarm's context as parent, once each.
        await wait_for(lambda: len(h.results()) == 2, what="results")
        assert all(e.data.ok and e.context.parent_id == ctx.id for e in h.results())
        rows = await h.rows()
        assert {(r["recipient"], r["channel"], r["status"]) for r in rows} == {("duty-a", "sms", "sent"),
                                                                               ("*", "hook", "sent")}


async def test_routing_by_unit_category_and_severity(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("B1", unit_id="unit-b"))
        h.publish(alarm("F1", category=AlarmCategory.FAULT, severity=Severity.FAULT, unit_id="unit-a"))
        # Below the alarm route's minimum severity and not a fault: nobody is told.
        h.publish(alarm("P1", category=AlarmCategory.ELECTRICAL_PRE_ALARM, severity=Severity.PRE_ALARM))
        await wait_for(lambda: len(sms(receiver)) == 2, what="two texts")
        await h.settle()
        got = {m["alarm"]: m for m in sms(receiver)}
        assert got["B1"]["to"] == "1002"  # unit-b's duty officer, not unit-a's
        assert got["F1"]["to"] == "4000" and got["F1"]["lang"] == "en"  # maintenance, in English
        assert got["F1"]["title"].startswith("[Fault]")
        assert "P1" not in got
        assert await h.rows("alarm_id = 'P1'") == []


async def test_escalation_steps_on_the_clock_then_acknowledge_stops_it(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1", unit_id="unit-a"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="duty officer")
        await clock.advance(4 * 60 + 59)
        await h.settle()
        assert recipients(receiver) == ["1001"]  # not yet
        await clock.advance(1)
        await wait_for(lambda: recipients(receiver) == ["1001", "2001"], what="unit manager at 5 min")
        assert sms(receiver)[1]["kind"] == "escalate" and "5分钟无人确认" in sms(receiver)[1]["text"]
        await wait_for(lambda: len(receiver.ok("/hook")) == 2, what="group told of step 1")
        await clock.advance(10 * 60)
        await wait_for(lambda: recipients(receiver) == ["1001", "2001", "3000"], what="supervisor at 15 min")
        h.publish(alarm("A1", AlarmTransition.ACKNOWLEDGED, unit_id="unit-a", status="active_ack"))
        await h.settle()
        await clock.advance(3600)
        await h.settle()
        assert recipients(receiver) == ["1001", "2001", "3000"]
        row = await h.core.storage.fetchone("SELECT due FROM notify_escalation WHERE alarm_id = 'A1'")
        assert row == (None,)


async def test_acknowledge_before_escalation_sends_no_escalation(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="duty officer")
        await clock.advance(60)
        h.publish(alarm("A1", AlarmTransition.ACKNOWLEDGED, status="active_ack"))
        await h.settle()
        await clock.advance(20 * 60)
        await h.settle()
        assert recipients(receiver) == ["1001"]


async def test_repeat_after_last_step_until_acknowledged(make_harness, receiver, clock) -> None:
    section = site(receiver)
    section["routes"][0]["escalation"] = {
        "steps": [{"roles": ["duty_officer"]}, {"roles": ["unit_manager"], "after_minutes": 2}],
        "repeat_minutes": 3, "max_repeats": 2,
    }
    h = make_harness(section)
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="step 0")
        for expected in (["1001", "2001"], ["1001", "2001", "2001"], ["1001", "2001", "2001", "2001"]):
            await clock.advance(180 if len(expected) > 2 else 120)
            await wait_for(lambda: recipients(receiver) == expected, what=f"{expected}")
        await clock.advance(3600)  # max_repeats reached
        await h.settle()
        assert recipients(receiver) == ["1001", "2001", "2001", "2001"]


async def test_engine_escalate_event_moves_on_early_and_is_not_repeated_by_our_timer(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="step 0")
        await clock.advance(60)
        h.publish(alarm("A1", AlarmTransition.ESCALATE, step=1))  # the engine's 1-minute reminder
        await wait_for(lambda: recipients(receiver) == ["1001", "2001"], what="step 1 from the engine")
        await clock.advance(4 * 60)  # our own step-1 time passes: nothing new
        await h.settle()
        h.publish(alarm("A1", AlarmTransition.ESCALATE, step=1))  # a duplicate event: nothing new
        await h.settle()
        assert recipients(receiver) == ["1001", "2001"]
        await clock.advance(10 * 60)  # our step 2 at 15 min still comes
        await wait_for(lambda: recipients(receiver) == ["1001", "2001", "3000"], what="step 2")


async def test_without_own_timer_only_engine_events_escalate(make_harness, receiver, clock) -> None:
    section = site(receiver)
    section["routes"][0]["escalation"]["own_timer"] = False
    h = make_harness(section)
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="step 0")
        await clock.advance(3600)
        await h.settle()
        assert recipients(receiver) == ["1001"]
        h.publish(alarm("A1", AlarmTransition.ESCALATE, step=2))
        await wait_for(lambda: recipients(receiver) == ["1001", "3000"], what="engine step 2")


async def test_cleared_message_goes_to_everyone_told(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="step 0")
        await clock.advance(5 * 60)
        await wait_for(lambda: recipients(receiver) == ["1001", "2001"], what="step 1")
        h.publish(alarm("A1", AlarmTransition.CLEARED, status="cleared_unack"))
        await wait_for(lambda: len(sms(receiver)) == 4, what="cleared texts")
        cleared = [m for m in sms(receiver) if m["kind"] == "cleared"]
        assert sorted(m["to"] for m in cleared) == ["1001", "2001"]
        assert cleared[0]["title"].startswith("【已恢复】")
        await wait_for(lambda: any(r.json()["kind"] == "cleared" for r in receiver.ok("/hook")), what="group")
        await clock.advance(3600)  # cleared: escalation stopped
        await h.settle()
        assert len(sms(receiver)) == 4


async def test_quiet_hours_hold_non_urgent_messages_but_never_fire_or_gas(make_harness, receiver, clock) -> None:
    section = site(receiver)
    # 16:00 local at START: a quiet window 15:00-17:00 covers it.
    section["people"][0]["quiet_hours"] = [{"start": "15:00", "end": "17:00"}]
    section["routes"][0]["min_severity"] = "fault"
    h = make_harness(section)
    async with h.running():
        h.publish(alarm("F1", category=AlarmCategory.FIRE))
        h.publish(alarm("G1", category=AlarmCategory.GAS, severity=Severity.ALARM))
        h.publish(alarm("E1", category=AlarmCategory.ELECTRICAL_ALARM, severity=Severity.ALARM))
        await wait_for(lambda: sorted(m["alarm"] for m in sms(receiver) if m["to"] == "1001") == ["F1", "G1"],
                       what="fire and gas despite quiet hours")
        await clock.advance(59 * 60)
        await h.settle()
        # (escalations of F1/G1 reach others meanwhile; duty-a's electrical alarm still waits)
        assert "E1" not in [m["alarm"] for m in sms(receiver) if m["to"] == "1001"]
        await clock.advance(60)  # 17:00 local
        await wait_for(lambda: "E1" in [m["alarm"] for m in sms(receiver) if m["to"] == "1001"],
                       what="electrical alarm after quiet hours")


async def test_update_into_a_route_starts_it_once(make_harness, receiver) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("E1", category=AlarmCategory.ELECTRICAL_PRE_ALARM, severity=Severity.PRE_ALARM))
        h.publish(alarm("E1", AlarmTransition.UPDATE, category=AlarmCategory.ELECTRICAL_PRE_ALARM,
                        severity=Severity.ALARM, status="active_unack"))
        h.publish(alarm("E1", AlarmTransition.UPDATE, category=AlarmCategory.ELECTRICAL_PRE_ALARM,
                        severity=Severity.ALARM, status="active_unack"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="told once the severity qualifies")
        await h.settle()
        assert recipients(receiver) == ["1001"]


async def test_acknowledged_message_names_who_when_the_route_asks_for_it(make_harness, receiver) -> None:
    from firebus.sdk import ActorKind

    section = site(receiver)
    section["routes"][0]["notify_acknowledged"] = True
    h = make_harness(section)
    async with h.running():
        h.publish(alarm("A1"))
        await wait_for(lambda: recipients(receiver) == ["1001"], what="step 0")
        h.publish(alarm("A1", AlarmTransition.ACKNOWLEDGED, status="active_ack"),
                  Context(actor=ActorKind.USER, actor_id="李四"))
        await wait_for(lambda: len(sms(receiver)) == 2, what="acknowledged text")
        ack = sms(receiver)[1]
        assert ack["kind"] == "acknowledged" and ack["to"] == "1001"
        assert ack["title"].startswith("【已确认】") and "由李四确认" in ack["text"]


async def test_escalate_for_an_alarm_never_seen_starts_it_and_escalates(make_harness, receiver, clock) -> None:
    h = make_harness(site(receiver))
    async with h.running():
        h.publish(alarm("OLD", AlarmTransition.ESCALATE, step=1, ts=START + 60, value=3))
        await wait_for(lambda: sorted(recipients(receiver)) == ["1001", "2001"], what="steps 0 and 1")
        await h.settle()
        assert [m["kind"] for m in sms(receiver)] == ["new", "escalate"]
