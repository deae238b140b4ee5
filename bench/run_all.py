"""Run every benchmark (``make bench``) and collect their JSON lines.

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results.jsonl]

Each script prints one JSON line; this runner prints them as they finish and
appends them to ``--out`` (one line per benchmark, machine and date inside),
which docs/benchmarks.md is filled from.  ``--quick`` shortens every run (a
smoke check that the scripts work, not figures to quote).  The older
text-output scripts (alarms_throughput.py, transports_mqtt_window.py) run at
the end with ``--with-text``; their output is kept as text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["ingest.py", "--seconds", "30", "--json"],
    ["alarm_latency.py", "--json"],
    ["coldstart.py", "--devices", "10000", "--json"],
    ["modbus_poll.py", "--json"],
]
QUICK = [
    ["ingest.py", "--seconds", "5", "--ceiling-seconds", "3", "--devices", "100", "--json"],
    ["alarm_latency.py", "--rates", "1000", "--alarms", "30", "--gap", "0.1", "--devices", "100", "--json"],
    ["coldstart.py", "--devices", "1000", "--repeat", "1", "--json"],
    ["modbus_poll.py", "--seconds", "3", "--json"],
]
TEXT = [["alarms_throughput.py"], ["transports_mqtt_window.py"]]


def run(cmd: list[str], timeout: float) -> tuple[int, str]:
    started = time.perf_counter()
    print(f"== {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]], stdout=subprocess.PIPE, text=True,
                          timeout=timeout)
    print(f"   exit {proc.returncode} after {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return proc.returncode, proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--with-text", action="store_true", help="also run the text-output benchmarks")
    p.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    p.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()
    failed = 0
    for cmd in QUICK if args.quick else FULL:
        code, out = run(cmd, args.timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            failed += 1
            continue
        result = json.loads(lines[-1])
        result["command"] = "bench/" + " ".join(cmd)
        result["quick"] = args.quick
        line = json.dumps(result)
        print(line, flush=True)
        with args.out.open("a") as f:
            f.write(line + "\n")
    if args.with_text:
        for cmd in TEXT:
            code, out = run(cmd, args.timeout)
            print(json.dumps({"bench": cmd[0], "exit": code, "text": out.strip()}), flush=True)
            failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
