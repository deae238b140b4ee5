"""The core's ``modbus_rtu`` hub on a serial port: a paced pty pair, real pymodbus RTU units.

``PacedSerialLine`` moves bytes at the baud rate with the 3.5-character silences
of a real RS-485 line, so a line that telemetry saturates is saturated for real:
the alarm word must still be read every cycle and its change reach the alarm
engine within about one alarm interval, while telemetry reads are deferred and
counted; a unit that stops answering becomes a communication fault, and clears
when it answers again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.sim.modbus import ModbusSimulator, SimDevice
from firebus.core.sim.scenario import Drift
from firebus.core.sim.serial_line import PacedSerialLine
from firebus.sdk import AlarmCategory
from firebus.sdk.events import StateChanged
from firebus.sdk.modbus import RtuTiming, load_profile
from firebus.sdk.testing.waiting import eventually as wait_until

pytestmark = pytest.mark.anyio

BAUD = 38400
UNITS = 3
BLOCKS = 8  # telemetry blocks of 60 registers per unit: ~1.8 × what the line carries per alarm interval
INTERVAL = 0.5  # alarm and telemetry interval, s


def profile_text() -> str:
    lines = ["name: pty_rtu", "max_gap: 60", "max_count: 100", "points:",
             "  - {point_key: fire_alarm, point_class: fire, table: holding, address: 0, dtype: bit, bit: 0}",
             "  - {point_key: device_fault, point_class: fault, table: holding, address: 0, dtype: bit, bit: 1}"]
    for b in range(BLOCKS):
        base = 200 * (b + 1)
        lines.append(f"  - {{point_key: t{b}, point_class: temperature, table: holding, address: {base}, dtype: int16}}")
        lines.append(f"  - {{point_key: t{b}_end, point_class: temperature, table: holding, "
                     f"address: {base + 59}, dtype: int16}}")
    return "\n".join(lines) + "\n"


def site(tmp: Path, port: str, profile: Path) -> str:
    text = (f"storage: {{path: '{tmp / 'fb.db'}', synchronous: NORMAL}}\n"
            "transports:\n"
            f"  - {{key: rs485, type: modbus_rtu, options: {{port: '{port}', baudrate: {BAUD}, "
            "message_wait_ms: 0, timeout: 0.3, retries: 0}}\n"
            "devices:\n")
    for u in range(1, UNITS + 1):
        text += (f"  - {{key: u{u}, name: unit {u}, driver: modbus_profile, transport: rs485, options: "
                 f"{{unit: {u}, profile: '{profile}', alarm_interval: {INTERVAL}, telemetry_interval: {INTERVAL}}}}}\n")
    return text


async def test_rtu_line_alarm_first_when_saturated_and_silent_unit_is_a_fault(tmp_path: Path) -> None:
    profile_path = tmp_path / "pty_rtu.yaml"
    profile_path.write_text(profile_text())
    profile = load_profile(profile_path)
    timing = RtuTiming.of(BAUD, 8, "N", 1)
    # the line really is saturated: telemetry asks more than the wire carries
    assert UNITS * BLOCKS * timing.read_s("holding", 60) > 1.5 * INTERVAL

    changes: list[tuple[float, str, str, Any]] = []  # (monotonic, device id, point, value)

    def record(core: Any) -> None:
        def on_event(ev: Any) -> None:
            d = ev.data
            if isinstance(d, StateChanged) and not d.late:
                changes.append((time.monotonic(), d.device_id, d.point_key, d.new_value))
        core.bus.subscribe("test-rtu-pty", on_event, types=[StateChanged])

    with PacedSerialLine(BAUD) as wire:
        units = [SimDevice(u, profile, {f"t{b}": Drift(start=10 * u + b, rate=0) for b in range(BLOCKS)})
                 for u in range(1, UNITS + 1)]
        sim = ModbusSimulator(units, serial_port=wire.device_port, baudrate=BAUD)
        await sim.start()
        try:
            async with running_core(load_text(site(tmp_path, wire.client_port, profile_path), "site.yaml"),
                                    autoload=False, before_start=record) as core:
                ids = await wait_until(lambda: len(core.device_ids) == UNITS and dict(core.device_ids))
                line = core.transports["rs485"]

                def value(key: str, point: str) -> Any:
                    for p in core.registry.points_of_device(core.device_ids[key]):
                        if p.key == point:
                            st = core.ingest.state(p.point_id)
                            return None if st is None else st.value
                    return None

                # 1. readings arrive from every unit, decoded through the RTU frames
                await wait_until(lambda: all(value(f"u{u}", f"t{b}") == 10 * u + b
                                             for u in range(1, UNITS + 1) for b in range(BLOCKS)),
                                 what="every unit's telemetry")
                assert value("u2", "device_fault") is False

                # 2. saturated: the hub defers telemetry …
                await wait_until(lambda: line.stats()["telemetry_skipped"] >= 5, what="telemetry deferred")
                # … and still reads the alarm word of every unit every cycle: over the time the line
                # takes for 40 telemetry reads (~3 cycles' worth of wire), count each unit's alarm reads
                n0 = len(sim.requests)
                t0 = sim.now()
                await wait_until(lambda: sum(1 for r in sim.requests[n0:] if r.address != 0) >= 40,
                                 what="telemetry flowing in the room alarms leave")
                window = sim.requests[n0:]
                cycles = (window[-1].t - t0) / INTERVAL
                for u in range(1, UNITS + 1):
                    alarm_reads = sum(1 for r in window if r.unit == u and r.address == 0)
                    assert alarm_reads >= cycles - 1.5, (u, alarm_reads, cycles)  # none skipped

                # 3. a device's fault bit set while saturated reaches the engine within ~one cycle,
                #    and the engine raises its alarm (the built-in device_status rule)
                set_at = time.monotonic()
                units[1].set("device_fault", True)
                seen = await wait_until(lambda: next((c[0] for c in changes if c[1] == ids["u2"]
                                                      and c[2] == "device_fault" and c[3] is True), None),
                                        what="the fault bit's state change")
                # next alarm read (≤ one interval) + the exchange on the wire; a read queued behind the
                # cycle's telemetry would add up to TELEMETRY_BUDGET × interval more
                assert seen - set_at < INTERVAL + 0.5, seen - set_at
                await wait_until(lambda: [a for a in core.alarms.open_alarms() if a.active
                                          and a.category is AlarmCategory.FAULT], what="the device fault alarm")
                assert line.stats()["lanes"]["alarm"].get("skipped", 0) == 0

                # 4. a unit that stops answering is a communication fault; its neighbours are not
                units[2].forced_silent = True
                subject = f"device:{ids['u3']}"
                await wait_until(lambda: [a for a in core.alarms.open_alarms() if a.active and a.subject == subject
                                          and a.category is AlarmCategory.OFFLINE], what="unit 3's fault")
                assert str(core.availability.get(ids["u3"])) == "unavailable"
                assert str(core.availability.get(ids["u1"])) == "available"
                n1 = len(changes)
                units[0].set("fire_alarm", True)  # the line still carries alarms of the others
                await wait_until(lambda: any(c[1] == ids["u1"] and c[2] == "fire_alarm" and c[3] is True
                                             for c in changes[n1:]), what="unit 1's alarm with unit 3 silent")
                units[2].forced_silent = False
                await wait_until(lambda: not [a for a in core.alarms.open_alarms() if a.active
                                              and a.subject == subject and a.category is AlarmCategory.OFFLINE],
                                 what="unit 3's fault cleared")
                await wait_until(lambda: str(core.availability.get(ids["u3"])) == "available", what="unit 3 back")
        finally:
            await sim.stop()
    assert wire.stats()["frames"] > 0
