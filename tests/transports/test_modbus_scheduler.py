"""The line scheduler and the hub's deadline arithmetic (pure logic: no line, no server)."""

from __future__ import annotations

import asyncio
import time

import pytest

from firebus.core.transports.modbus import RANK_ALARM, RANK_OTHER, RANK_TELEMETRY, LineScheduler

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_alarm_goes_before_queued_telemetry_and_arrival_order_within_a_rank():
    s = LineScheduler()
    assert await s.acquire(RANK_ALARM) == 0.0  # idle line: at once
    order: list[str] = []

    async def want(name: str, rank: int) -> None:
        await s.acquire(rank)
        order.append(name)
        s.release()

    tasks = [asyncio.create_task(want(n, r)) for n, r in
             [("t1", RANK_TELEMETRY), ("o1", RANK_OTHER), ("t2", RANK_TELEMETRY), ("a1", RANK_ALARM), ("a2", RANK_ALARM)]]
    await asyncio.sleep(0)  # all five queued behind the owner
    assert s.queued == 5
    s.release()
    await asyncio.gather(*tasks)
    assert order == ["a1", "a2", "o1", "t1", "t2"]
    assert s.queued == 0 and s.queued_max == 5


async def test_telemetry_past_its_deadline_is_skipped_alarm_never():
    s = LineScheduler()
    await s.acquire(RANK_ALARM)
    loop = asyncio.get_running_loop()
    soon = time.monotonic() + 0.01
    tele = asyncio.create_task(s.acquire(RANK_TELEMETRY, soon))
    alarm = asyncio.create_task(s.acquire(RANK_ALARM, soon))  # a deadline means nothing to an alarm read
    assert await tele is None  # expired while the line stayed busy
    assert not alarm.done()
    loop.call_soon(s.release)
    assert await alarm is not None
    s.release()
    # a deadline already past is skipped even on an idle line (it would end too late)
    assert await s.acquire(RANK_TELEMETRY, time.monotonic() - 0.001) is None
    assert await s.acquire(RANK_TELEMETRY, time.monotonic() + 1) == 0.0
    s.release()


async def test_cancelled_waiter_is_passed_over_and_the_line_not_lost():
    s = LineScheduler()
    await s.acquire(RANK_ALARM)
    gone = asyncio.create_task(s.acquire(RANK_ALARM))
    nxt = asyncio.create_task(s.acquire(RANK_TELEMETRY))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    s.release()
    assert await nxt is not None
    s.release()
    assert await s.acquire(RANK_OTHER) == 0.0  # idle again
