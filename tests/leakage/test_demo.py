"""The demo handed to the lead: the docs' site snippet and the shipped scenario, run on simulated time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import firebus.plugins.leakage as leakage_plugin
from firebus.sdk.testing.waiting import eventually as wait_until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PLACES = """units:
  - key: demo
    buildings:
      - key: tower
        floors:
          - {key: b1, locations: [{key: b1_switch_room, name: B1 switch room}]}
          - {key: f3, locations: [{key: f3_power_room, name: 3F power room}]}
"""


def demo_site_block(doc: str) -> str:
    text = (ROOT / "docs" / "plugins" / doc).read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml demo-site\n(.*?)```", text, re.S)
    return block


async def test_leakage_demo_story(tmp_path: Path, firebus_rig) -> None:
    block = demo_site_block("leakage.md")

    def site(port: int | None) -> str:
        return (f"storage: {{path: {tmp_path / 'fb.db'}}}\n" + PLACES
                + block.replace("port: 5020", f"port: {port}").replace("poll_interval: 2", "poll_interval: 0.1"))

    rig = await firebus_rig(site, plugins={"leakage": leakage_plugin},
                            scenario=ROOT / "plugins" / "leakage" / "profiles" / "demo.scenario.yaml")
    await wait_until(lambda: rig.value("ap2_board", "residual_current") is not None
                     and rig.value("al1_board", "residual_current") is not None)
    await rig.advance_to(70)  # AP2 jumps 60 → 170 mA
    (jump,) = await wait_until(lambda: rig.alarms(rule="leakage.jump"))
    assert "AP2 incomer" in jump.message
    await rig.advance_to(130)  # AL1 past 300 mA and its detector latched
    await wait_until(lambda: rig.alarms(rule="threshold", category="electrical_alarm"))
    await wait_until(lambda: rig.alarms(rule="leakage.device_flags", category="electrical_alarm"))
    await rig.advance_to(205)  # AP2 T3 probe lead broken
    (wiring,) = await wait_until(lambda: rig.alarms(rule="leakage.device_flags", category="fault"))
    assert "WP3 kitchen feeder L3" in wiring.message
    await rig.advance_to(245)  # AL1 T4 open circuit
    await wait_until(lambda: (st := rig.state("al1_board", "temperature_4")) is not None
                     and st.fault == "open_circuit")
