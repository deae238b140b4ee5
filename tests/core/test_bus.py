"""Event bus: isolation, lanes, overflow policies, state_reported filtering, lineage."""

from __future__ import annotations

import anyio
import pytest

from firebus.core.bus import EventBus
from firebus.sdk import (
    ActorKind,
    AlarmCategory,
    AlarmEvent,
    AlarmTransition,
    Context,
    OverflowPolicy,
    Severity,
    StateChanged,
    StateReported,
)
import anyio.lowlevel

pytestmark = pytest.mark.anyio


def reading(n: int) -> StateChanged:
    return StateChanged(point_id="p", device_id="d", point_key="k", point_class="temperature", ts=float(n), new_value=n)


def alarm(n: int) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=f"a{n}", transition=AlarmTransition.NEW, category=AlarmCategory.FIRE,
        severity=Severity.FIRE, rule="test",
    )


async def test_raising_and_blocked_subscribers_do_not_stop_delivery_to_others() -> None:
    bus = EventBus()
    got: list[int] = []
    release = anyio.Event()

    def raising(event) -> None:
        raise RuntimeError("broken plugin")

    async def blocked(event) -> None:
        await release.wait()  # never released during the test

    async with anyio.create_task_group() as tg:
        bus.attach(tg)
        bus.subscribe("raising", raising)
        bus.subscribe("blocked", blocked, maxsize=5)
        bus.subscribe("good", lambda e: got.append(e.data.new_value))
        bus.publish(reading(0))
        await anyio.sleep(0.05)  # the blocked handler now holds event 0
        for n in range(1, 100):
            bus.publish(reading(n))
        with anyio.fail_after(5):
            while len(got) < 100:
                await anyio.sleep(0.01)
        m = bus.metrics()["subscribers"]
        assert got == list(range(100))
        assert m["raising"]["errors"] == 100
        assert "broken plugin" in m["raising"]["last_error"]
        # The blocked one holds one event in its handler and sheds the rest past its bound.
        assert m["blocked"]["depth"] == 5
        assert m["blocked"]["dropped"] == 100 - 1 - 5
        tg.cancel_scope.cancel()


async def test_alarm_lane_is_never_dropped_and_overtakes_telemetry() -> None:
    bus = EventBus()
    order: list[str] = []
    gate = anyio.Event()

    async def slow(event) -> None:
        await gate.wait()
        order.append(event.type)

    async with anyio.create_task_group() as tg:
        bus.attach(tg)
        bus.subscribe("slow", slow, maxsize=10, overflow=OverflowPolicy.DROP_NEWEST)
        await anyio.sleep(0.01)
        bus.publish(reading(-1))  # occupies the handler
        await anyio.sleep(0.01)
        for n in range(1000):
            bus.publish(reading(n))
            if n % 100 == 0:
                bus.publish(alarm(n))
        gate.set()
        await bus.drain()
        stats = bus.metrics()["subscribers"]["slow"]
        assert order.count("AlarmEvent") == 10  # all of them, despite 990 telemetry drops
        assert stats["dropped"] == 990
        # After the one in the handler, every alarm comes before the queued telemetry.
        assert order[1:11] == ["AlarmEvent"] * 10
        tg.cancel_scope.cancel()


async def test_drop_oldest_keeps_the_newest_values() -> None:
    bus = EventBus()
    got: list[int] = []
    gate = anyio.Event()

    async def handler(event) -> None:
        await gate.wait()
        got.append(event.data.new_value)

    async with anyio.create_task_group() as tg:
        bus.attach(tg)
        bus.subscribe("live", handler, maxsize=3, overflow=OverflowPolicy.DROP_OLDEST)
        await anyio.sleep(0.01)
        for n in range(10):
            bus.publish(reading(n))
            await anyio.lowlevel.checkpoint()
        gate.set()
        await bus.drain()
        assert got == [0, 7, 8, 9]
        tg.cancel_scope.cancel()


async def test_state_reported_only_reaches_subscribers_that_ask_for_it() -> None:
    bus = EventBus()
    catch_all: list[str] = []
    explicit: list[str] = []
    async with anyio.create_task_group() as tg:
        bus.attach(tg)
        bus.subscribe("all", lambda e: catch_all.append(e.type))
        bus.subscribe("reported", lambda e: explicit.append(e.type), types=[StateReported])
        bus.publish(StateReported(point_id="p", ts=1.0, value=1))
        bus.publish(reading(1))
        await bus.drain()
        assert catch_all == ["StateChanged"]
        assert explicit == ["StateReported"]
        tg.cancel_scope.cancel()


async def test_context_lineage_links_reading_alarm_and_notification() -> None:
    reading_ctx = Context(actor=ActorKind.DEVICE, actor_id="dev-1")
    await anyio.sleep(0.002)  # ULIDs order by millisecond; within one they are random
    alarm_ctx = reading_ctx.child(ActorKind.RULE, "threshold")
    await anyio.sleep(0.002)
    notify_ctx = alarm_ctx.child(ActorKind.PLUGIN, "notify")
    assert alarm_ctx.parent_id == reading_ctx.id
    assert notify_ctx.parent_id == alarm_ctx.id
    assert alarm_ctx.actor is ActorKind.RULE and alarm_ctx.actor_id == "threshold"
    # ULIDs sort by creation time, so an incident trail reads in order.
    assert sorted([notify_ctx.id, reading_ctx.id, alarm_ctx.id]) == [reading_ctx.id, alarm_ctx.id, notify_ctx.id]


async def test_subscriber_names_are_unique_and_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        bus.attach(tg)
        off = bus.subscribe("x", lambda e: got.append(1))
        with pytest.raises(ValueError, match="already exists"):
            bus.subscribe("x", lambda e: None)
        bus.publish(reading(1))
        await bus.drain()
        off()
        bus.publish(reading(2))
        await bus.drain()
        assert got == [1]
        tg.cancel_scope.cancel()
