"""ManualClock semantics, and rules as pure functions (no mutation, JSON-safe state)."""

import copy

import anyio
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firebus.sdk import PointInfo
from firebus.sdk.clock import ManualClock, SystemClock
from firebus.sdk.rule import TickInput, ValueInput
from firebus.sdk.rules import GENERIC_RULES, ThresholdRule


@pytest.mark.anyio
async def test_manual_clock_wakes_sleepers_in_order_at_their_deadline():
    clock = ManualClock(1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name, seconds):
        await clock.sleep(seconds)
        woke.append((name, clock.time()))
        if name == "a":  # a sleep started by a woken task inside the same step
            await clock.sleep(1)
            woke.append(("a2", clock.time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "b", 5)
        tg.start_soon(sleeper, "a", 2)
        tg.start_soon(sleeper, "c", 50)
        await clock.settle()
        assert clock.sleepers == 3
        await clock.advance(4.999)
        assert woke == [("a", 1002.0), ("a2", 1003.0)]
        await clock.advance(0.001)
        assert woke[-1] == ("b", 1005.0)
        tg.cancel_scope.cancel()
    assert clock.time() == 1005.0


@pytest.mark.anyio
async def test_settle_returns_beside_a_task_ticking_every_tenth_of_a_second():
    """uvicorn's main loop sleeps 0.1 s between ticks.  A check that also re-looks every 0.1 s
    and first saw the ticker running stays in step with it: both timers fall due in the same
    loop turn, the check runs first and sees the ticker's finished sleep, forever (anyio's
    ``wait_all_tasks_blocked`` did this; an ``advance`` in CI timed out after 30 s)."""
    import asyncio

    started = anyio.Event()

    async def ticker(yields: int) -> None:
        started.set()
        for _ in range(yields):  # one of them is running when the first check looks
            await asyncio.sleep(0)
        while True:
            await asyncio.sleep(0.1)

    clock = ManualClock(0.0)
    async with anyio.create_task_group() as tg:
        for yields in range(4):
            tg.start_soon(ticker, yields)
        await started.wait()
        with anyio.fail_after(10):
            for _ in range(5):
                await clock.settle(timeout=5)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_settle_that_times_out_names_the_task_still_running():
    async def spinner() -> None:
        while True:
            await anyio.lowlevel.checkpoint()

    clock = ManualClock(0.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(spinner, name="spinner")
        with pytest.raises(TimeoutError, match="still running: spinner"):
            await clock.settle(timeout=0.3)
        tg.cancel_scope.cancel()
    with pytest.raises(ValueError):
        await clock.advance(-1)


@pytest.mark.anyio
async def test_cancelled_sleep_is_forgotten():
    clock = ManualClock(0.0)
    with anyio.move_on_after(0.05):
        await clock.sleep(10)
    assert clock.sleepers == 0 and clock.next_deadline() is None
    await SystemClock().sleep(0)


POINT = PointInfo(point_id="p", device_id="d", key="k", point_class="residual_current", unit="mA",
                  overrides={"rules": {"threshold": {"on_delay": 5, "off_delay": 3}}})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.one_of(st.floats(-1e6, 1e6), st.none(), st.text(max_size=3))), max_size=30))
def test_threshold_is_pure_and_its_state_is_json(steps):
    rule = ThresholdRule()
    opts = rule.options_for(POINT)
    state: dict = {}
    ts = 0.0
    for dt, value in steps:
        ts += dt
        frozen = copy.deepcopy(state)
        inp = TickInput(ts=ts) if value is None else ValueInput(ts=ts, key="k", value=value)
        ev = rule.evaluate(POINT, opts, inp, state)
        assert state == frozen  # never mutated
        state = msgspec.json.decode(msgspec.json.encode(ev.state))  # survives persistence
        alarm = next(c for c in ev.conditions if c.category == "electrical_alarm") if ev.conditions else None
        if alarm is not None and alarm.active:
            assert state["levels"]["alarm"]["phase"] in ("active", "off")
        held = isinstance(inp, ValueInput) and not isinstance(value, float)
        if ev.wake_at is not None and not held:  # a held (invalid) value keeps the old deadline
            assert ev.wake_at >= ts


def test_every_generic_rule_has_a_key_options_and_valid_defaults():
    keys = [r.type_key for r in GENERIC_RULES]
    assert len(set(keys)) == len(keys)
    for cls in GENERIC_RULES:
        rule = cls()
        for point_class in cls.defaults:
            point = PointInfo(point_id="p", device_id="d", key="k", point_class=point_class)
            assert rule.applies_to(point)
            rule.options_for(point)  # the shipped defaults validate
