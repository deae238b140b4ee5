"""Modbus RTU at line rate, and alarm reads on a saturated line, through a paced pty pair.

    .venv/bin/python bench/modbus_rtu.py --json [--bauds 9600,115200 --seconds 15]

For each baud rate a device process (this script with ``--device-side``, its own
GIL) opens a ``firebus.core.sim.serial_line.PacedSerialLine`` — two pty pairs
joined by a relay that moves bytes at the baud rate, keeps 3.5 characters of
silence between frames and hands a request to the units t3.5 after its last
byte — and serves ``--units`` RTU units on it with the pymodbus simulator.  The
character is 8N2 (11 bits, the Modbus standard's frame without parity): Linux
ptys refuse parity bits.

1. **line rate**: the core's ``modbus_rtu`` hub (``message_wait_ms: 0``; it still
   keeps t3.5 itself) reads FC03 × 10 registers back to back from four callers
   for ``--seconds``.  ``theoretical_requests_per_s`` = 1 / ((8 + 25) × 11 / baud
   + 2 × t3.5) (``RtuTiming``; no turnaround), ``ratio`` = measured / theoretical.
   Everything else counts against the ratio: the simulated units' own processing
   (``relay.devices_turnaround_ms_p50``), the master's beyond its t3.5
   (``relay.client_turnaround_ms_p50`` − t3.5), the relay waking late.
2. **saturated**: a real core polls the units through the same hub with the
   ``modbus_profile`` driver: each unit has an alarm status word (read every
   ``--alarm-interval`` s at alarm priority) and telemetry blocks of 60
   registers due as often, sized so telemetry asks ``--overload`` × what the
   line can carry.  Each unit's alarm bit toggles every ``--toggle`` s (set and
   clear are both alarm-class changes).  ``alarm_latency`` = the StateChanged
   on the core's bus − the moment the bit changed in the simulator (same
   machine, CLOCK_MONOTONIC in both processes); it includes waiting for the next
   alarm read, so it is bounded by the alarm interval plus one exchange.
   ``telemetry_skipped`` is the hub's count of telemetry reads it deferred;
   ``alarm_reads_missed`` counts cycles in which a unit's alarm word was not read
   (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, CpuMeter, emit, machine, progress, quantiles_ms  # noqa: E402

from firebus.sdk.modbus import RtuTiming  # noqa: E402

STOPBITS = 2  # 8N2: 11 bits per character without parity (ptys refuse parity)
BLOCK = 60  # registers per telemetry read
BLOCK_STRIDE = 200  # addresses between telemetry blocks (more than max_gap: one read each)


def profile_yaml(blocks: int) -> str:
    lines = ["name: bench_rtu", "max_gap: 8", "max_count: 100", "alarm_interval: 1", "points:",
             "  - {point_key: fire_alarm, point_class: fire, table: holding, address: 0, dtype: bit, bit: 0}",
             "  - {point_key: device_fault, point_class: fault, table: holding, address: 0, dtype: bit, bit: 1}"]
    for b in range(blocks):
        base = BLOCK_STRIDE * (b + 1)
        lines.append(f"  - {{point_key: t{b}_a, point_class: temperature, table: holding, address: {base}, dtype: int16}}")
        lines.append(f"  - {{point_key: t{b}_b, point_class: temperature, table: holding, "
                     f"address: {base + BLOCK - 1}, dtype: int16}}")
    # the points between the two ends are not mapped but read: max_gap must span them
    lines[1] = f"max_gap: {BLOCK}"
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- device side


def relay_side(args: argparse.Namespace) -> None:
    """The paced wire, alone in its process: its timing never waits for the simulator's GIL."""
    from firebus.core.sim.serial_line import PacedSerialLine

    with PacedSerialLine(args.baud, stopbits=STOPBITS) as wire:
        print(json.dumps({"client_port": wire.client_port, "device_port": wire.device_port}), flush=True)
        windows = json.loads(sys.stdin.read() or "{}")  # name → [t0, t1]: turnarounds of that phase
        print(json.dumps({"wire": wire.stats(), "phases": {k: wire.stats(tuple(w)) for k, w in windows.items()}}),
              flush=True)


def device_side(args: argparse.Namespace) -> None:
    from firebus.core.sim.modbus import ModbusSimulator, SimDevice
    from firebus.core.sim.scenario import Behaviour, Drift
    from firebus.sdk.modbus import parse_profile

    class Toggle(Behaviour, tag="bench_toggle"):
        period: float = 3.0
        phase: float = 0.0

        def base_value(self, t: float) -> Any:
            return t >= self.phase and math.floor((t - self.phase) / self.period) % 2 == 0

    profile = parse_profile(profile_yaml(args.blocks), "bench_rtu.yaml")

    async def main() -> None:
        devices = []
        for u in range(1, args.units + 1):
            behaviours: dict[str, Any] = {
                f"t{b}_a": Drift(start=20 + u, rate=0.5, noise=0.5) for b in range(args.blocks)}
            behaviours["fire_alarm"] = Toggle(period=args.toggle, phase=args.toggle_start + 0.37 * u)
            devices.append(SimDevice(u, profile, behaviours, seed=u))
        sim = ModbusSimulator(devices, serial_port=args.port, baudrate=args.baud, stopbits=STOPBITS,
                              latency=args.turnaround)
        await sim.start()
        t0 = sim._t0
        print(json.dumps({"t0": t0}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        reqs = [[round(t0 + r.t, 6), r.unit, r.fc, r.address, r.count] for r in sim.requests]
        print(json.dumps({"requests": reqs}), flush=True)
        await sim.stop()

    asyncio.run(main())


class Devices:
    """The paced wire and the simulated units, each in a process of its own."""

    def __init__(self, baud: int, args: argparse.Namespace, blocks: int) -> None:
        self.relay = subprocess.Popen([PYTHON, __file__, "--relay-side", "--baud", str(baud)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.relay.stdout is not None
        ports = json.loads(self.relay.stdout.readline())
        self.port: str = ports["client_port"]
        cmd = [PYTHON, __file__, "--device-side", "--baud", str(baud), "--port", ports["device_port"],
               "--units", str(args.units), "--blocks", str(blocks), "--toggle", str(args.toggle),
               "--turnaround", str(args.turnaround), "--toggle-start", str(args.toggle_start)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        try:
            self.t0: float = json.loads(self.proc.stdout.readline())["t0"]
        except ValueError:
            self.relay.kill()
            raise SystemExit("the simulated units did not start (see their error above)") from None

    def finish(self, windows: dict[str, list[float]] | None = None) -> dict[str, Any]:
        out, _ = self.proc.communicate("", timeout=60)
        result = json.loads(out.strip().splitlines()[-1])
        out, _ = self.relay.communicate(json.dumps(windows or {}), timeout=30)
        return {**result, **json.loads(out.strip().splitlines()[-1])}


# --------------------------------------------------------------------------- master side


class _Ctx:
    def __init__(self) -> None:
        self.logger = logging.getLogger("bench.modbus_rtu")

    def link_changed(self, up: bool, reason: str = "") -> None:
        if not up:
            progress(f"line down: {reason}")

    async def run_in_background(self, func: Any, *a: Any, name: str = "") -> None:
        raise RuntimeError("not used")


async def line_rate(port: str, baud: int, seconds: float, callers: int, units: int) -> dict[str, Any]:
    from firebus.core.transports.modbus import ModbusRtuOptions, ModbusRtuTransport

    line = ModbusRtuTransport("rs485", ModbusRtuOptions(port=port, baudrate=baud, stopbits=STOPBITS,
                                                        message_wait_ms=0, timeout=1.0, retries=0), _Ctx())
    await line.start()
    done = 0
    bad = 0
    stop_at = 0.0

    async def caller(i: int) -> None:
        nonlocal done, bad
        unit = 1 + i % units
        while time.monotonic() < stop_at:
            regs = await line.read(unit, "holding", 0, 10)
            done += 1
            bad += len(regs) != 10
    try:
        await line.read(1, "holding", 0, 10)  # connected, warm
        t0 = time.monotonic()
        stop_at = t0 + seconds
        await asyncio.gather(*(caller(i) for i in range(callers)))
        elapsed = time.monotonic() - t0
    finally:
        await line.stop()
    theo = 1 / line.timing.read_s("holding", 10)
    measured = done / elapsed
    return {"request": "FC03 x 10 registers (8 + 25 bytes)", "requests": done, "bad_answers": bad,
            "theoretical_requests_per_s": round(theo, 2), "measured_requests_per_s": round(measured, 2),
            "ratio": round(measured / theo, 3),
            "exchange_ms_theoretical": round(1000 / theo, 3), "exchange_ms_measured": round(1000 / measured, 3),
            "window": [t0, t0 + elapsed]}


def saturated_site(db: Path, port: str, baud: int, profile: Path, units: int, interval: float) -> str:
    lines = [f"storage: {{path: '{db}', synchronous: NORMAL}}", "transports:",
             f"  - {{key: rs485, type: modbus_rtu, options: {{port: '{port}', baudrate: {baud}, stopbits: {STOPBITS}, "
             "message_wait_ms: 0, timeout: 1, retries: 0}}", "devices:"]
    for u in range(1, units + 1):
        lines.append(f"  - {{key: u{u}, driver: modbus_profile, transport: rs485, options: {{unit: {u}, "
                     f"profile: '{profile}', alarm_interval: {interval}, telemetry_interval: {interval}}}}}")
    return "\n".join(lines) + "\n"


async def saturated(dev: Devices, baud: int, args: argparse.Namespace, blocks: int, tmp: Path) -> dict[str, Any]:
    import anyio

    from firebus.core.runtime import running_core
    from firebus.sdk.events import StateChanged

    profile = tmp / "bench_rtu.yaml"
    profile.write_text(profile_yaml(blocks))
    changes: list[tuple[float, str, Any]] = []  # (monotonic, device id, value)

    def before(core: Any) -> None:
        def on_event(ev: Any) -> None:
            data = ev.data
            if isinstance(data, StateChanged) and data.point_key == "fire_alarm" and not data.late:
                changes.append((time.monotonic(), data.device_id, data.new_value))
        core.bus.subscribe("bench-alarms", on_event, types=[StateChanged])

    text = saturated_site(tmp / "fb.db", dev.port, baud, profile, args.units, args.alarm_interval)
    async with running_core(text, autoload=False, before_start=before) as core:
        with anyio.fail_after(120):
            while sum(1 for d in core.polled if str(core.availability.current.get(d)) == "available") < args.units:
                await anyio.sleep(0.1)
        await anyio.sleep(2 * args.alarm_interval)
        line = core.transports["rs485"]
        s0 = line.stats()
        cpu = CpuMeter().start()
        t0 = time.monotonic()
        n0 = len(changes)
        await anyio.sleep(args.seconds)
        t1 = time.monotonic()
        cpu_figures = cpu.stop()
        s1 = line.stats()
        unit_of = {core.device_ids[f"u{u}"]: u for u in range(1, args.units + 1)}
        window_changes = [c for c in changes[n0:] if t0 <= c[0] <= t1]
        deferred = sum(getattr(d, "telemetry_deferred", 0) for d in core.polled.values())
    return {"t": (t0, t1), "s0": s0, "s1": s1, "changes": window_changes, "unit_of": unit_of,
            "cpu": cpu_figures, "deferred": deferred}


def alarm_edges(changes: list[tuple[float, str, Any]], unit_of: dict[str, int], t0_sim: float,
                args: argparse.Namespace, t0: float, t1: float) -> tuple[list[float], int, int]:
    """Every edge of a unit's alarm bit inside the window, matched with the first StateChanged
    to its new value after it: (latencies, edges never seen, edges expected)."""
    seen: dict[int, list[tuple[float, bool]]] = {}
    for at, device_id, value in changes:
        u = unit_of.get(device_id)
        if u is not None:
            seen.setdefault(u, []).append((at, bool(value)))
    latencies: list[float] = []
    missed = expected = 0
    horizon = 3 * args.alarm_interval  # a change seen later than this is a miss
    for u in range(1, args.units + 1):
        phase = t0_sim + args.toggle_start + 0.37 * u
        k = max(0, math.ceil((t0 + 0.5 - phase) / args.toggle))
        while (edge := phase + k * args.toggle) <= t1 - horizon:
            expected += 1
            value = k % 2 == 0  # on from even edges (the Toggle behaviour)
            nxt = edge + args.toggle
            hit = next((at for at, v in seen.get(u, []) if edge <= at < min(nxt, edge + horizon) and v is value),
                       None)
            if hit is None:
                missed += 1
            else:
                latencies.append(hit - edge)
            k += 1
    return latencies, missed, expected


def blocks_for(baud: int, args: argparse.Namespace) -> int:
    """Telemetry blocks per unit so that telemetry asks ``overload`` × what the line has left after alarms."""
    timing = RtuTiming.of(baud, 8, "N", STOPBITS)
    alarm_load = args.units / args.alarm_interval * timing.read_s("holding", 1)
    per_block = timing.read_s("holding", BLOCK)
    room = max(0.05, 1.0 - alarm_load) * args.alarm_interval
    return max(1, math.ceil(args.overload * room / per_block / args.units))


async def run_baud(baud: int, args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    blocks = blocks_for(baud, args)
    dev = Devices(baud, args, blocks)
    timing = RtuTiming.of(baud, 8, "N", STOPBITS)
    windows: dict[str, list[float]] = {}
    try:
        progress(f"{baud} baud: line rate, {args.seconds:.0f} s")
        lr = await line_rate(dev.port, baud, args.seconds, args.callers, args.units)
        windows["line_rate"] = lr["window"]
        progress(f"{baud} baud: saturated line, {args.units} units x {blocks} telemetry blocks, {args.seconds:.0f} s")
        with tempfile.TemporaryDirectory(prefix="fb-rtu-") as tmp:
            sat = await saturated(dev, baud, args, blocks, Path(tmp))
        windows["saturated"] = list(sat["t"])
    finally:
        result = dev.finish(windows)
    reqs = result["requests"]
    lr.pop("window")
    # A ceiling measured in the same run: the formula plus what these simulated units take to
    # answer (the formula has no turnaround; real units have one too), so the rest is the master's.
    units_ms = result["phases"]["line_rate"]["devices_turnaround_ms_p50"] or 0.0
    lr["units_turnaround_ms_p50"] = units_ms
    lr["client_turnaround_ms_p50"] = result["phases"]["line_rate"]["client_turnaround_ms_p50"]
    ceiling = 1000 / (lr["exchange_ms_theoretical"] + units_ms)
    lr["ratio_to_formula_plus_units_turnaround"] = round(lr["measured_requests_per_s"] / ceiling, 3)
    t0, t1 = sat["t"]
    in_sat = [r for r in reqs if t0 <= r[0] <= t1]
    busy = sum(timing.read_s("holding", r[4]) for r in in_sat if r[2] == 3)
    alarm_reads = [r for r in in_sat if r[2] == 3 and r[3] == 0]
    tele_reads = [r for r in in_sat if r[2] == 3 and r[3] != 0]
    # Alarm reads never skipped: every unit's status word read in every cycle of the window.
    cycles = (t1 - t0) / args.alarm_interval
    missed = 0
    for u in range(1, args.units + 1):
        times = sorted(r[0] for r in alarm_reads if r[1] == u)
        gaps = [y - x for x, y in zip([t0, *times], [*times, t1])]
        missed += sum(max(0, math.ceil(g / args.alarm_interval - 1.5)) for g in gaps)
    lat, edges_missed, edges_expected = alarm_edges(sat["changes"], sat["unit_of"], dev.t0, args, t0, t1)
    s0, s1 = sat["s0"], sat["s1"]
    return {
        "baud": baud,
        "bits_per_char": timing.bits_per_char,
        "t3_5_ms": round(1000 * timing.silence_s, 3),
        "line_rate": lr,
        "saturated": {
            "units": args.units,
            "telemetry_blocks_per_unit": blocks,
            "telemetry_offered_x_capacity": args.overload,
            "alarm_interval_s": args.alarm_interval,
            "requests_per_s": round(len(in_sat) / (t1 - t0), 2),
            "line_utilisation_theoretical": round(busy / (t1 - t0), 3),
            "alarm_reads_per_s": round(len(alarm_reads) / (t1 - t0), 2),
            "alarm_reads_expected_per_s": round(args.units / args.alarm_interval, 2),
            "alarm_reads_missed": missed,
            "telemetry_reads_per_s": round(len(tele_reads) / (t1 - t0), 2),
            "telemetry_skipped": s1["telemetry_skipped"] - s0["telemetry_skipped"],
            "telemetry_skipped_per_s": round((s1["telemetry_skipped"] - s0["telemetry_skipped"]) / (t1 - t0), 2),
            "alarm_queue_wait": {k: v for k, v in s1["lanes"]["alarm"].items() if k.startswith("wait")},
            "alarm_latency": quantiles_ms(lat),
            "alarm_edges": edges_expected,
            "alarm_edges_missed": edges_missed,
            "cycles": round(cycles, 1),
            **sat["cpu"],
        },
        "relay": result["wire"],
        # other work on the machine shows in every figure here: three processes must wake per exchange
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    out = []
    for baud in args.bauds:
        out.append(await run_baud(baud, args))
    emit({"bench": "modbus_rtu", "levels": out, "seconds": args.seconds, "callers": args.callers,
          "machine": machine()}, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bauds", type=lambda s: [int(x) for x in s.split(",")], default=[9600, 115200])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--units", type=int, default=8)
    p.add_argument("--callers", type=int, default=4, help="concurrent readers in the line-rate phase")
    p.add_argument("--alarm-interval", type=float, default=1.0)
    p.add_argument("--overload", type=float, default=3.0, help="telemetry offered / line capacity")
    p.add_argument("--toggle", type=float, default=2.3, help="seconds between alarm-bit changes per unit")
    p.add_argument("--turnaround", type=float, default=0.0, help="simulated unit turnaround, s")
    p.add_argument("--json", action="store_true")
    # device side (internal)
    p.add_argument("--device-side", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--relay-side", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", default="", help=argparse.SUPPRESS)
    p.add_argument("--baud", type=int, default=9600, help=argparse.SUPPRESS)
    p.add_argument("--blocks", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--toggle-start", type=float, default=1.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse()
    if a.relay_side:
        relay_side(a)
    elif a.device_side:
        device_side(a)
    else:
        asyncio.run(main(a))
