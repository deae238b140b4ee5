"""Property test: any sequence of readings, time steps, acknowledgements and restarts
leaves the alarm store consistent (one active alarm per identity, history matches the
alarm, memory matches disk, nothing re-raised by a restart)."""

import tempfile
from pathlib import Path

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firebus.sdk.clock import ManualClock

from .harness import running
from .points import gas, rc, smoke

POINTS = [rc(rules={"threshold": {"on_delay": 5}}), gas(), smoke("s1", "r1"), smoke("s2", "r1")]
VALUES = {
    "rc1": st.sampled_from([0.0, 150.0, 210.0, 290.0, 310.0, 65535, "x"]),
    "gas1": st.sampled_from([0.0, 24.0, 26.0, 49.0, 51.0]),
    "s1": st.booleans(),
    "s2": st.booleans(),
}
STEP = st.one_of(
    st.tuples(st.just("value"), st.sampled_from(sorted(VALUES))).flatmap(
        lambda t: st.tuples(st.just("value"), st.just(t[1]), VALUES[t[1]])
    ),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 4.9, 5.1, 61.0, 400.0])),
    st.tuples(st.just("ack"), st.integers(0, 5)),
    st.tuples(st.just("restart"), st.booleans()),
)


async def _check(h) -> None:
    alarms = await h.engine.list_alarms(limit=10_000)
    active_keys = [a.dedup_key for a in alarms if a.active]
    assert len(active_keys) == len(set(active_keys)), "two active alarms for one identity"
    on_disk_open = {a.id: a for a in alarms if a.open}
    assert {a.id for a in h.engine.open_alarms()} == set(on_disk_open)
    for alarm in alarms:
        history = [t.transition for t in await h.engine.history(alarm.id)]
        assert history[0] == "new"
        assert history.count("new") == 1
        assert ("cleared" in history) == (not alarm.active)
        assert ("acknowledged" in history) == alarm.acknowledged


async def _run(steps) -> None:
    clock = ManualClock(0.0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite"
        i = 0
        while i < len(steps):
            async with running(db, POINTS, clock=clock) as h:
                while i < len(steps):
                    step = steps[i]
                    i += 1
                    if step[0] == "value":
                        await h.value(step[1], step[2])
                    elif step[0] == "advance":
                        await h.advance(step[1])
                    elif step[0] == "ack":
                        unacked = [a for a in h.engine.open_alarms() if not a.acknowledged]
                        if unacked:
                            await h.engine.acknowledge(unacked[step[1] % len(unacked)].id, "prop")
                    elif step[0] == "restart":
                        h.crash_on_exit = not step[1]
                        break
                await h.settle()
                await _check(h)
                snapshot = {a.id: (a.active, a.acknowledged, a.count) for a in await h.engine.list_alarms(limit=10_000)}
            async with running(db, POINTS, clock=clock) as h2:
                assert not h2.alarm_events("new")  # a restart raises nothing by itself
                after = {a.id: (a.active, a.acknowledged, a.count) for a in await h2.engine.list_alarms(limit=10_000)}
                assert after == snapshot


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=25))
def test_any_sequence_keeps_the_alarm_store_consistent(steps):
    anyio.run(_run, steps)
