"""Memory and CPU per device: a site of N devices at rest and reporting at a steady rate.

    .venv/bin/python bench/footprint.py --json                          # 1,000, 10,000 and 50,000 devices
    .venv/bin/python bench/footprint.py --devices 1000 --interval 10 --json

Each device count runs in a fresh Python process (so memory is that site's alone):
a real Mosquitto, the real core with N push devices (the bench driver, one
temperature point each, every default alarm rule), durable ingest as in
``bench/ingest.py``.  Phases:

* ``first_start_s``: the core started on an empty database (the registry created);
* ``warmed_s``: one reading from every device, each acknowledged (every device
  has a point and a latest value);
* ``rest``: ``--rest-seconds`` with no traffic: core CPU and RSS;
* ``steady``: every device reports every ``--interval`` s (N / interval msg/s,
  from ``bench/_fastpub.py`` at nice 10) for ``--seconds``: core CPU, RSS,
  acknowledged rate, and CPU per message.

Figures: ``baseline_rss_mb`` is the process before the core starts (Python and
the imports); ``rss_mb`` minus it is what the core and its N devices hold;
``kb_per_device`` = that ÷ N.  CPU is the core process's, 100 % = one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, BenchPlugin, CpuMeter, emit, machine, progress, rss_mb, site_yaml  # noqa: E402
from ingest import pub_result, start_fastpub  # noqa: E402

from firebus.core.runtime import running_core  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402


async def one(devices: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    baseline = rss_mb()
    serials = [f"d{i}" for i in range(devices)]
    with Mosquitto(tmp / "broker", extra_config="max_queued_messages 0\n") as broker:
        site = site_yaml(tmp / "fb.db", broker.port, serials, client_id="fb-footprint")
        t0 = time.perf_counter()
        async with running_core(site, extra_plugins={"bench": BenchPlugin()}, autoload=False) as core:
            transport = core.transports["mqtt"]
            await transport.wait_connected(60)
            first_start = time.perf_counter() - t0
            progress(f"  {devices:,} devices: started in {first_start:.2f} s; one reading from each")
            t1 = time.perf_counter()
            base = transport.acked
            warm = start_fastpub(broker.port, devices, count=devices, processes=1, client_id="fp-warm", nice=10)
            await asyncio.to_thread(pub_result, warm)
            while transport.acked - base < devices:
                await asyncio.sleep(0.05)
            await core.storage.barrier()
            warmed = time.perf_counter() - t1

            progress(f"  at rest for {args.rest_seconds:.0f} s")
            cpu = CpuMeter().start()
            await asyncio.sleep(args.rest_seconds)
            rest = cpu.stop()
            rest_rss = rss_mb()

            rate = devices / args.interval
            progress(f"  every device every {args.interval:g} s: {rate:,.0f} msg/s for {args.seconds:.0f} s")
            pub = start_fastpub(broker.port, devices, seconds=args.seconds, rate=rate, processes=1,
                                client_id="fp-steady", start_seq=1, nice=10)
            await asyncio.sleep(1.0)  # the publisher connected and paced
            a0 = transport.acked
            c0 = core.metrics()["storage"]["commits"]
            cpu = CpuMeter().start()
            started = time.perf_counter()
            await asyncio.sleep(max(1.0, args.seconds - 2.0))
            steady = cpu.stop()
            acked = transport.acked - a0
            elapsed = time.perf_counter() - started
            commits = core.metrics()["storage"]["commits"] - c0
            offered = await asyncio.to_thread(pub_result, pub)
            steady_rss = rss_mb()
            metrics = core.metrics()
    held = steady_rss - baseline
    acked_rate = acked / elapsed
    cpu_pct = steady["core_process_cpu_pct"]
    return {
        "devices": devices,
        "first_start_s": round(first_start, 2),
        "warmed_s": round(warmed, 2),
        "baseline_rss_mb": baseline,
        "rest": {"core_cpu_pct": rest["core_process_cpu_pct"], "rss_mb": rest_rss},
        "steady": {
            "interval_s": args.interval,
            "asked_per_s": round(rate, 1),
            "offered_per_s": offered["offered_per_s"],
            "acked_per_s": round(acked_rate, 1),
            "core_cpu_pct": cpu_pct,
            "cpu_us_per_msg": round(cpu_pct / 100 / max(1e-9, acked_rate) * 1e6, 1),
            "commits_per_s": round(commits / elapsed, 1),
            "rss_mb": steady_rss,
        },
        "rss_mb": steady_rss,
        "kb_per_device": round(held * 1024 / devices, 1),
        "cpu_pct_per_1000_devices": round(cpu_pct / devices * 1000, 2),
        "rule_errors": metrics["alarms"].get("rule_errors", 0),
    }


def run_child(devices: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [PYTHON, str(Path(__file__).resolve()), "--one", str(devices), "--interval", str(args.interval),
           "--seconds", str(args.seconds), "--rest-seconds", str(args.rest_seconds)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"footprint run for {devices} devices failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1000, 10000, 50000])
    p.add_argument("--interval", type=float, default=10.0, help="seconds between two readings of a device")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the steady phase")
    p.add_argument("--rest-seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--one", type=int, default=-1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    if args.one >= 0:
        with tempfile.TemporaryDirectory(prefix="fb-footprint-") as tmp:
            print(json.dumps(asyncio.run(one(args.one, args, Path(tmp)))), flush=True)
        return 0
    runs = []
    for n in args.devices:
        progress(f"{n:,} devices")
        runs.append(run_child(n, args))
    emit({"bench": "footprint", "runs": runs, "interval_s": args.interval, "machine": machine()},
         one_line=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
