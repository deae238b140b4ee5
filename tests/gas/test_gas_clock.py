"""The production feedback deadline (60 s) on a ManualClock: a real core, simulator and linkage."""

from __future__ import annotations

from pathlib import Path

import pytest

import firebus.plugins.gas as gas_plugin
from firebus.sdk.clock import ManualClock
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import alarms_yaml, modbus_device, modbus_transport, site

pytestmark = pytest.mark.anyio


async def test_valve_fault_exactly_at_the_default_60_s_deadline(tmp_path: Path, firebus_rig, firebus_clock: ManualClock) -> None:
    clock = firebus_clock
    rig = await firebus_rig(
        lambda port: site(tmp_path / "fb.db", modbus_transport(port),
                          modbus_device("kitchen", 1).replace("poll_interval: 0.1", "poll_interval: 1.0"),
                          alarms_yaml(linkage=True, feedback_timeout=None)),
        plugins={"gas": gas_plugin}, clock=clock,
        modbus={1: gas_plugin.get_profile("point_detector")},
        values={1: {"gas_lel": 10.0, "valve_closed": False}})  # the valve is stuck
    sim, core, dev = rig.sim, rig.core, rig.sim.devices[1]

    async def step(seconds: float = 1.0) -> None:
        """One poll period of simulated time; wait (real time) for that poll's reads."""
        before = sim.count(unit=1)
        await clock.advance(seconds)
        await wait_until(lambda: sim.count(unit=1) > before)
        await core.storage.barrier()
        await clock.settle()

    await wait_until(lambda: rig.value("kitchen", "gas_lel") == 10.0)
    dev.set("gas_lel", 55.0)
    while not dev.write_log.get("valve_close"):
        await step()
    commanded = clock.time()
    # 59 s of polls with the valve still open: no fault yet.
    while clock.time() < commanded + 59:
        await step()
    assert rig.alarms(rule="gas.feedback") == []
    await step(2.0)
    (fault,) = await wait_until(lambda: rig.alarms(rule="gas.feedback", device_key="kitchen",
                                                   point_key="valve_closed"))
    assert "valve failed to close" in fault.message and "60 s after valve_close" in fault.message
    # The fan never reported running either (no feedback wired in this simulation).
    (fan,) = rig.alarms(rule="gas.feedback", device_key="kitchen", point_key="fan_running")
    assert "exhaust fan failed to start" in fan.message
    assert commanded + 60 <= fault.start_ts <= commanded + 61
