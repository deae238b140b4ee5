"""ACME RCM-200 plugin tests: the SDK's driver contract, then a real core polling a simulated detector.

Fixtures (``firebus_core``, ``firebus_modbus_sim`` …) come from firebus' pytest
plugin, installed with firebus itself; nothing here starts anything by hand.
"""

from __future__ import annotations

import pytest

import firebus_acme
from firebus.sdk import AlarmEvent, AlarmTransition, AvailabilityChanged, StateChanged
from firebus.sdk.testing.contracts import ModbusDriverContract
from firebus_acme import AcmeRcmDriver


class TestAcmeRcm200Contract(ModbusDriverContract):
    driver_class = AcmeRcmDriver
    manifest = firebus_acme.FIREBUS_MANIFEST
    plugin = firebus_acme
    options = {"unit": 7}
    values = {"residual_current": 35, "temperature": 41.5}


def device(unit: int = 7) -> str:
    return (f"  - {{key: rcm-1, driver: acme.rcm200, transport: gw, location: room, "
            f"options: {{unit: {unit}, poll_interval: 0.1}}}}\n")


@pytest.mark.anyio
async def test_core_polls_the_detector_and_raises_the_standard_alarm(
    firebus_core, firebus_modbus_sim, firebus_recorder, firebus_site_yaml
) -> None:
    values = {7: {"residual_current": 120, "temperature": 40.0}}
    async with firebus_modbus_sim({7: AcmeRcmDriver.profile}, values=values) as sim:
        site = firebus_site_yaml(modbus_port=sim.port, devices=device())
        async with firebus_core(site, plugins={"acme": firebus_acme}) as core:
            await firebus_recorder.wait_for(StateChanged, point_key="residual_current", new_value=120)
            await firebus_recorder.wait_for(StateChanged, point_key="temperature", new_value=40.0)
            sim.devices[7].set("residual_current", 480)  # above the GB 50116 alarm setting (300 mA)
            alarm = await firebus_recorder.wait_for(AlarmEvent, transition=AlarmTransition.NEW,
                                                    point_id=core.registry.point(core.device_ids["rcm-1"],
                                                                                 "residual_current").id)
            assert alarm.value == 480
            await core.storage.barrier()
            rows = await core.storage.fetchall("SELECT value FROM readings")
            assert 480 in [r[0] for r in rows]


@pytest.mark.anyio
async def test_a_silent_detector_becomes_unavailable(
    firebus_core, firebus_modbus_sim, firebus_recorder, firebus_site_yaml
) -> None:
    async with firebus_modbus_sim({7: AcmeRcmDriver.profile}) as sim:
        async with firebus_core(firebus_site_yaml(modbus_port=sim.port, devices=device()),
                                plugins={"acme": firebus_acme}):
            await firebus_recorder.wait_for(StateChanged, point_key="residual_current")
            sim.devices[7].forced_silent = True
            await firebus_recorder.wait_for(AvailabilityChanged, availability="unavailable")
