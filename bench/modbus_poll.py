"""Modbus polling throughput: points per second across several simulated gateways.

    .venv/bin/python bench/modbus_poll.py --json [--gateways 4 --units 8 --interval 0.02]

GATEWAYS real Modbus TCP servers (``firebus.core.sim.ModbusSimulator``, each on
its own port, in a separate process) serve UNITS electrical-fire detectors each
(profile ``rcd_temp4``: 14 points in 3 block reads).  The core polls every
device through its ``modbus_tcp`` transports (one TCP connection per gateway,
one outstanding request per line, as pymodbus requires) with the generic
``modbus_profile`` driver, decodes, ingests, runs the rules and commits.
``points_per_s`` = readings through ingest per second in the steady window;
``requests_per_s`` = Modbus requests the simulators answered per second.  The
poll interval is deliberately shorter than the lines can serve, so
``poll_skips`` (cycles the poller skipped because the previous one overran)
shows the lines are saturated and the figure is a ceiling, not the demand.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HERE, PYTHON, CpuMeter, emit, machine, progress  # noqa: E402

from firebus.core.runtime import running_core  # noqa: E402

PROFILE = Path(__file__).resolve().parents[1] / "core" / "sim" / "profiles" / "rcd_temp4.yaml"


def site(db: Path, ports: list[int], units: int, interval: float) -> str:
    lines = [f"storage: {{path: '{db}'}}", "transports:"]
    for g, port in enumerate(ports):
        lines.append(f"  - {{key: gw{g}, type: modbus_tcp, options: {{host: 127.0.0.1, port: {port}, timeout: 2}}}}")
    lines.append("devices:")
    for g in range(len(ports)):
        for u in range(1, units + 1):
            lines.append(f"  - {{key: gw{g}-u{u}, driver: modbus_profile, transport: gw{g}, "
                         f"options: {{unit: {u}, profile: '{PROFILE}', poll_interval: {interval}}}}}")
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    sims = subprocess.Popen([PYTHON, str(HERE / "_modbus_sims.py"), str(args.gateways), str(args.units), "rcd_temp4"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert sims.stdout is not None and sims.stdin is not None
    ports = json.loads(sims.stdout.readline())["ports"]
    try:
        with tempfile.TemporaryDirectory(prefix="fb-modbus-") as tmpdir:
            text = site(Path(tmpdir) / "fb.db", ports, args.units, args.interval)
            async with running_core(text, autoload=False) as core:
                n = args.gateways * args.units
                with anyio.fail_after(60):
                    while sum(1 for d in core.polled if core.availability.current.get(d) is not None) < n:
                        await anyio.sleep(0.1)
                await anyio.sleep(1.0)  # every device past setup
                progress(f"{n} devices on {args.gateways} gateways polling every {args.interval} s; "
                         f"measuring {args.seconds:.0f} s")
                r0, s0, t0 = core.ingest.readings_in, core.poll_skips, time.perf_counter()
                cpu = CpuMeter().start()
                await anyio.sleep(args.seconds)
                r1, s1, t1 = core.ingest.readings_in, core.poll_skips, time.perf_counter()
                cpu_figures = cpu.stop()
                unavailable = sum(1 for a in core.availability.current.values() if str(a) != "available")
    finally:
        out, _ = sims.communicate("", timeout=30)
    requests = json.loads(out.strip().splitlines()[-1])["requests"]
    result = {
        "bench": "modbus_poll",
        "points_per_s": round((r1 - r0) / (t1 - t0), 1),
        "gateways": args.gateways,
        "devices": args.gateways * args.units,
        "points_per_device": 14,
        "modbus_requests_answered": requests,
        "poll_skips_per_s": round((s1 - s0) / (t1 - t0), 1),
        "interval_s": args.interval,
        "unavailable_devices": unavailable,
        **cpu_figures,
        "seconds": args.seconds,
        "machine": machine(),
    }
    emit(result, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gateways", type=int, default=4)
    p.add_argument("--units", type=int, default=8)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse())
