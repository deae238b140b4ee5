"""Modbus hubs against real pymodbus servers (the simulator) on free loopback ports."""

from __future__ import annotations

import asyncio
import logging

import pytest
from firebus.core.sim.modbus import ModbusSimulator, SimDevice, resolve_profile
from firebus.core.sim.scenario import Drift, Fault, Follow, Steady
from firebus.core.transports.modbus import (
    ModbusRtuOptions,
    ModbusRtuTransport,
    ModbusTcpOptions,
    ModbusTcpTransport,
)
from firebus.sdk.modbus import (
    ModbusConnectionError,
    ModbusDeviceOptions,
    ModbusError,
    ModbusExceptionResponse,
    ModbusProfileDriver,
    ModbusTimeoutError,
    ModbusWriteVerifyError,
    OutageLog,
    Table,
    load_profile_resource,
)

from .conftest import RecordingContext

pytestmark = pytest.mark.anyio


class DriverCtx:
    def __init__(self, transport) -> None:
        self.transport = transport
        self.device_id = None
        self.logger = logging.getLogger("firebus.test.driver")


class RcdDriver(ModbusProfileDriver):
    type_key = "test_rcd"
    profile = load_profile_resource("firebus.core.sim.profiles", "rcd_temp4.yaml")


def tcp(sim: ModbusSimulator, ctx, **kw) -> ModbusTcpTransport:
    kw.setdefault("timeout", 1.0)
    kw.setdefault("retries", 0)
    return ModbusTcpTransport("line", ModbusTcpOptions(host="127.0.0.1", port=sim.port, **kw), ctx)


async def test_profile_driver_reads_every_point_in_batched_requests(ctx):
    dev = SimDevice(7, resolve_profile("rcd_temp4"), {
        "residual_current": Steady(value=280),
        "temperature_1": Steady(value=41.3),
        "temperature_2": Fault(base=30),  # open circuit sentinel
        "temperature_3_alarm": Steady(value=True),
        "residual_current_at_alarm": Steady(value=305.5),
    })
    async with ModbusSimulator([dev]) as sim:
        line = tcp(sim, ctx)
        await line.start()
        try:
            drv = RcdDriver(ModbusDeviceOptions(unit=7), DriverCtx(line))
            info = await drv.setup()
            assert info.identifiers == {"modbus": "line:7"}
            sim.requests.clear()
            got = {r.point_key: r for r in await drv.poll()}
        finally:
            await line.stop()
    assert got["residual_current"].value == 280
    assert got["temperature_1"].value == pytest.approx(41.3)
    assert got["temperature_2"].value is None and got["temperature_2"].fault == "open_circuit"
    assert got["temperature_3_alarm"].value is True and got["leakage_alarm"].value is False
    assert got["residual_current_at_alarm"].value == pytest.approx(305.5)  # word-swapped float
    assert len(got) == len(RcdDriver.profile.points)
    # 14 points, 3 contiguous groups → exactly 3 FC03 requests, counted on the server side
    assert [(r.fc, r.address, r.count) for r in sim.requests] == [(3, 0, 6), (3, 16, 2), (3, 32, 2)]


async def test_write_with_readback_and_limits(ctx):
    gas = SimDevice(3, resolve_profile("gas_detector"), {"valve_closed": Follow(source="valve_close", delay=0.0)})
    async with ModbusSimulator([gas]) as sim:
        line = tcp(sim, ctx)
        await line.start()
        try:
            drv = ModbusProfileDriver(ModbusDeviceOptions(unit=3, profile=str(_profile_path("gas_detector"))), DriverCtx(line))
            await drv.write("level1_setting", 20.0)
            await drv.write("valve_close", True)
            got = {r.point_key: r.value for r in await drv.poll()}
            assert got["level1_setting"] == pytest.approx(20.0)
            assert got["valve_close"] is True and got["valve_closed"] is True
            with pytest.raises(ValueError, match="outside"):
                await drv.write("level1_setting", 40)
            with pytest.raises(ValueError, match="not writable"):
                await drv.write("gas_lel", 1)
            with pytest.raises(ModbusExceptionResponse) as exc:
                await line.write_register(3, 0x0000, 1)  # an input-only address: the device refuses
            assert exc.value.code == 2
        finally:
            await line.stop()


async def test_write_readback_mismatch_is_an_error(ctx):
    class Stubborn(SimDevice):
        def write(self, table, address, values, t):  # accepts, but keeps the old value
            return None

    async with ModbusSimulator([Stubborn(1, resolve_profile("rcd_temp4"))]) as sim:
        line = tcp(sim, ctx)
        await line.start()
        try:
            drv = RcdDriver(ModbusDeviceOptions(unit=1), DriverCtx(line))
            with pytest.raises(ModbusWriteVerifyError):
                await drv.write("residual_current_setting", 300)
        finally:
            await line.stop()


async def test_silent_unit_times_out_and_recovers(ctx):
    dev = SimDevice(1, resolve_profile("rcd_temp4"), {"residual_current": Drift(start=100, rate=0)})
    async with ModbusSimulator([dev]) as sim:
        line = tcp(sim, ctx, timeout=0.3)
        await line.start()
        try:
            drv = RcdDriver(ModbusDeviceOptions(unit=1), DriverCtx(line))
            await drv.poll()
            dev.forced_silent = True
            with pytest.raises(ModbusTimeoutError):
                await drv.poll()
            dev.forced_silent = False
            got = {r.point_key: r.value for r in await drv.poll()}
            assert got["residual_current"] == 100
        finally:
            await line.stop()


async def test_dead_gateway_does_not_stall_another_line():
    ok_ctx, dead_ctx = RecordingContext("ok"), RecordingContext("dead")
    live = SimDevice(1, resolve_profile("rcd_temp4"))
    blackhole = SimDevice(1, resolve_profile("rcd_temp4"))
    blackhole.forced_silent = True  # accepts TCP, never answers: the worst kind of dead
    async with ModbusSimulator([live]) as sim_ok, ModbusSimulator([blackhole]) as sim_dead:
        good = tcp(sim_ok, ok_ctx)
        bad = ModbusTcpTransport("dead", ModbusTcpOptions(host="127.0.0.1", port=sim_dead.port, timeout=3, retries=0), dead_ctx)
        await good.start()
        await bad.start()
        try:
            d_good = RcdDriver(ModbusDeviceOptions(unit=1), DriverCtx(good))
            d_bad = RcdDriver(ModbusDeviceOptions(unit=1), DriverCtx(bad))
            bad_poll = asyncio.create_task(d_bad.poll())
            good_polls = 0
            while not bad_poll.done() and good_polls < 20:
                await d_good.poll()
                good_polls += 1
            # 20 full polls of the live line finished while the dead one was still waiting
            assert good_polls == 20 and not bad_poll.done()
            with pytest.raises(ModbusTimeoutError):
                await bad_poll
        finally:
            await good.stop()
            await bad.stop()


async def test_gateway_loss_raises_link_fault_once_and_recovers(ctx):
    dev = SimDevice(1, resolve_profile("rcd_temp4"), {"residual_current": Steady(value=150)})
    sim = ModbusSimulator([dev])
    await sim.start()
    port = sim.port
    line = ModbusTcpTransport("line", ModbusTcpOptions(host="127.0.0.1", port=port, timeout=0.5, retries=0,
                                                       reconnect_delay=0.05, reconnect_delay_max=0.2), ctx)
    await line.start()
    drv = RcdDriver(ModbusDeviceOptions(unit=1), DriverCtx(line))
    outage = OutageLog(logging.getLogger("firebus.test.outage"), "device 1")
    try:
        await drv.poll()
        assert ctx.links == []  # coming up at start is not an event
        await sim.stop()
        firsts = 0
        for _ in range(6):
            with pytest.raises(ModbusError) as exc:
                await drv.poll()
            assert isinstance(exc.value, (ModbusConnectionError, ModbusTimeoutError))
            firsts += outage.failed(exc.value)
            await asyncio.sleep(0.05)
        assert firsts == 1 and outage.failures == 6
        assert [up for up, _ in ctx.links] == [False]  # once per outage, not per poll
        sim2 = ModbusSimulator([dev], port=port)
        await sim2.start()
        try:
            async def poll_ok() -> bool:
                try:
                    await drv.poll()
                    return True
                except ModbusError:
                    return False

            for _ in range(200):
                if await poll_ok():
                    break
                await asyncio.sleep(0.05)
            assert outage.recovered()
            assert [up for up, _ in ctx.links] == [False, True]
        finally:
            await sim2.stop()
    finally:
        await line.stop()


async def test_nothing_listening_fails_fast_with_backoff(ctx):
    from firebus.sdk.testing.mosquitto import free_port

    line = ModbusTcpTransport("nowhere", ModbusTcpOptions(host="127.0.0.1", port=free_port(), timeout=1,
                                                          reconnect_delay=5, reconnect_delay_max=10), ctx)
    await line.start()  # never raises for a dead peer
    try:
        assert [up for up, _ in ctx.links] == [False]
        with pytest.raises(ModbusConnectionError, match="next attempt"):
            await line.read(1, Table.HOLDING, 0, 1)  # inside back-off: no connect attempt at all
    finally:
        await line.stop()


async def test_requests_are_serialised_with_message_gap(ctx):
    async with ModbusSimulator([SimDevice(u, resolve_profile("pump_controller")) for u in (1, 2, 3)]) as sim:
        line = tcp(sim, ctx, message_wait_ms=30)
        await line.start()
        try:
            await asyncio.gather(*(line.read(u, "discrete", 0, 2) for u in (1, 2, 3) for _ in range(4)))
        finally:
            await line.stop()
    times = [r.t for r in sim.requests]
    assert len(times) == 12
    # one outstanding request at a time, ≥ 30 ms of silence between exchanges
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.029


async def test_rtu_framing_over_a_serial_url(ctx):
    """The RTU hub through pyserial's socket:// URL against an RTU-framed server."""
    async with ModbusSimulator([SimDevice(5, resolve_profile("water_transmitter"), {
        "pressure_decimals": Steady(value=3), "pressure": Steady(value=0.42), "water_level": Steady(value=3.25),
    })], framer="rtu") as sim:
        line = ModbusRtuTransport("rs485", ModbusRtuOptions(port=f"socket://127.0.0.1:{sim.port}", timeout=1,
                                                            message_wait_ms=5), ctx)
        await line.start()
        try:
            drv = ModbusProfileDriver(ModbusDeviceOptions(unit=5, profile=str(_profile_path("water_transmitter"))), DriverCtx(line))
            got = {r.point_key: r.value for r in await drv.poll()}
        finally:
            await line.stop()
    assert got["pressure"] == pytest.approx(0.42)
    assert got["water_level"] == pytest.approx(3.25)
    assert sim.count(fc=3) == 1  # decimals + value + level in one read


def _profile_path(name: str):
    from importlib import resources

    return resources.files("firebus.core.sim.profiles").joinpath(f"{name}.yaml")


async def test_dead_units_behind_a_live_gateway_do_not_flap_the_link(ctx):
    """pymodbus drops the socket after a run of timeouts; the gateway itself is fine, so no link fault."""
    dead = SimDevice(1, resolve_profile("pump_controller"))
    dead.forced_silent = True
    async with ModbusSimulator([dead]) as sim:
        line = tcp(sim, ctx, timeout=0.2)
        await line.start()
        try:
            for _ in range(10):
                with pytest.raises((ModbusTimeoutError, ModbusConnectionError)):
                    await line.read(1, "discrete", 0, 2)
            dead.forced_silent = False
            assert await line.read(1, "discrete", 0, 2) == [False, False]
        finally:
            await line.stop()
    assert ctx.links == []


async def test_cancelled_request_cannot_leak_its_answer_into_the_next(ctx):
    """RTU frames have no transaction id: a late answer to a cancelled read must not become the next read's."""
    dev = SimDevice(1, resolve_profile("rcd_temp4"), {"residual_current": Steady(value=111),
                                                      "temperature_setting": Steady(value=99)})
    async with ModbusSimulator([dev], framer="rtu", latency=0.3) as sim:
        line = ModbusRtuTransport("rs485", ModbusRtuOptions(port=f"socket://127.0.0.1:{sim.port}", timeout=2,
                                                            message_wait_ms=0), ctx)
        await line.start()
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(line.read(1, "holding", 0x0001, 1), 0.1)
            # sent while the cancelled read's answer ([111]) is still on its way
            assert await line.read(1, "holding", 0x0021, 1) == [99]
            assert await line.read(1, "holding", 0x0001, 1) == [111]
        finally:
            await line.stop()


async def test_device_rejecting_gap_reads_gets_a_hint_and_max_gap_zero_fixes_it(ctx):
    from firebus.sdk.modbus import profile_from_data

    strict = SimDevice(1, resolve_profile("rcd_temp4"))
    strict.strict = True  # answers ILLEGAL ADDRESS for unmapped registers, like many real devices
    async with ModbusSimulator([strict]) as sim:
        line = tcp(sim, ctx)
        await line.start()
        try:
            gappy = profile_from_data({"name": "gappy", "max_gap": 40, "points": [
                {"point_key": "a", "point_class": "residual_current", "table": "holding", "address": 1},
                {"point_key": "b", "point_class": "residual_current", "table": "holding", "address": 0x20}]})

            class Gappy(ModbusProfileDriver):
                type_key = "gappy"
                profile = gappy

            with pytest.raises(ModbusExceptionResponse, match="max_gap: 0") as exc:
                await Gappy(ModbusDeviceOptions(unit=1), DriverCtx(line)).poll()
            assert exc.value.code == 2

            class Tight(ModbusProfileDriver):
                type_key = "tight"
                profile = profile_from_data({**msgspec_to_dict(gappy), "max_gap": 0})

            assert len(await Tight(ModbusDeviceOptions(unit=1), DriverCtx(line)).poll()) == 2
        finally:
            await line.stop()


def msgspec_to_dict(obj):
    import msgspec

    return msgspec.to_builtins(obj)
