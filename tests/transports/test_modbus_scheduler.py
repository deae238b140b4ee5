"""The line scheduler (pure logic), and the hub's finish-by deadlines against a slow pymodbus unit."""

from __future__ import annotations

import asyncio
import logging
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


async def test_telemetry_deadline_is_finish_by_from_the_measured_exchange_time(ctx, caplog):
    """A slow unit (0.15 s per answer): a telemetry read that cannot end by its deadline is not
    started; one that can is; a block that could never fit its poll's budget is read anyway."""
    from firebus.core.sim.modbus import ModbusSimulator, SimDevice, resolve_profile
    from firebus.core.transports.modbus import ModbusTcpOptions, ModbusTcpTransport
    from firebus.sdk.events import Lane
    from firebus.sdk.modbus import ModbusDeviceOptions, ModbusProfileDriver, ModbusSkipped

    async with ModbusSimulator([SimDevice(1, resolve_profile("pump_controller"))], latency=0.15) as sim:
        line = ModbusTcpTransport("slow", ModbusTcpOptions(host="127.0.0.1", port=sim.port, timeout=2, retries=0), ctx)
        await line.start()
        try:
            for _ in range(8):  # learn the exchange time
                await line.read(1, "discrete", 0, 2)
            assert 0.1 < line.estimate_s("discrete", 2) < 1.0
            n = sim.count()
            with pytest.raises(ModbusSkipped):  # idle line, but 0.1 s is too short for a 0.15 s exchange
                await line.read(1, "discrete", 0, 2, lane=Lane.TELEMETRY, deadline=time.monotonic() + 0.1)
            assert sim.count() == n  # never sent
            assert line.stats()["telemetry_skipped"] == 1
            await line.read(1, "discrete", 0, 2, lane=Lane.TELEMETRY, deadline=time.monotonic() + 1.0)

            class Driver(ModbusProfileDriver):
                type_key = "slow_test"
                profile = resolve_profile("pump_controller")

            class Ctx:
                transport = line
                device_id = None
                logger = logging.getLogger("firebus.test.slow")

            # a 0.1 s cycle leaves 0.08 s for telemetry: less than one exchange on this line
            drv = Driver(ModbusDeviceOptions(unit=1, poll_interval=0.1, alarm_interval=0.1), Ctx())
            with caplog.at_level(logging.WARNING, logger="firebus.test.slow"):
                got = await drv.poll()
            assert {r.point_key for r in got} == {p.point_key for p in Driver.profile.points}
            assert drv.telemetry_deferred == 0
            assert "cycle overruns" in caplog.text
        finally:
            await line.stop()
