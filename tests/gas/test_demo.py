"""The gas demo handed to the lead: docs' site snippet + shipped scenario on simulated time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import firebus.plugins.gas as gas_plugin
from firebus.sdk import Severity
from firebus.sdk.testing.waiting import eventually as wait_until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PLACES = """units:
  - key: demo
    buildings:
      - key: main
        floors:
          - {key: f1, locations: [{key: kitchen_2, name: Kitchen 2}, {key: boiler_room, name: Boiler room}]}
"""


async def test_gas_demo_story(tmp_path: Path, firebus_rig) -> None:
    doc = (ROOT / "docs" / "plugins" / "gas.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml demo-site\n(.*?)```", doc, re.S)

    def site(port: int | None) -> str:
        return (f"storage: {{path: {tmp_path / 'fb.db'}}}\n" + PLACES
                + block.replace("port: 5020", f"port: {port}").replace("poll_interval: 1", "poll_interval: 0.1")
                .replace("timeout: 20", "timeout: 1"))

    rig = await firebus_rig(site, plugins={"gas": gas_plugin},
                            scenario=ROOT / "plugins" / "gas" / "profiles" / "demo.scenario.yaml")
    await wait_until(lambda: rig.value("kitchen_2_gas", "gas_lel") is not None)
    reminder = await wait_until(lambda: rig.alarms(rule="gas.maintenance", device_key="kitchen_2_gas"))
    assert "sensor life due in 25 days" in reminder[0].message
    await rig.advance_to(140)  # Kitchen 2 at level 2 → valve and fan commanded
    kitchen = rig.sim.devices[21]
    await wait_until(lambda: kitchen.write_log.get("valve_close") and kitchen.write_log.get("fan_start"))
    await rig.advance_to(145)  # 2 s valve travel, 3 s fan start in simulated time
    await rig.wait_value("kitchen_2_gas", "valve_closed", True)
    await rig.wait_value("kitchen_2_gas", "fan_running", True)
    await rig.advance_to(190)  # boiler loop 2 at level 2: the fan starts, the valve sticks
    alarm = await wait_until(lambda: [a for a in rig.alarms(category="gas", device_key="boiler_gas_controller")
                                      if a.severity == Severity.FIRE])
    assert "boiler 2 burner" in alarm[0].message
    (stuck,) = await wait_until(lambda: rig.alarms(rule="gas.feedback", device_key="boiler_gas_controller"),
                                timeout=30)
    assert "valve failed to close" in stuck.message
    assert rig.alarms(rule="gas.feedback", device_key="kitchen_2_gas") == []
