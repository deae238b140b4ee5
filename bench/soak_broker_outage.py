"""Soak: a 60 s hung broker (and a restart) under a QoS 1 stream — the long form of
tests/reliability/test_broker_outage.py.

    .venv/bin/python bench/soak_broker_outage.py [--hang 60] --json

Prints one JSON line: confirmed messages, stored rows, missing sequence numbers,
and the link events the core logged (each outage must show up=false then up=true).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine, progress  # noqa: E402
from tests.reliability.test_broker_outage import outages  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    progress(f"hung broker for {args.hang:.0f} s, then a broker restart, under a 100 msg/s QoS 1 stream")
    with tempfile.TemporaryDirectory(prefix="fb-soak-") as tmp:
        out = await outages(Path(tmp), hang_s=args.hang)
    result = {"bench": "soak_broker_outage", "hang_s": args.hang, "confirmed": out.total, "stored": out.distinct,
              "duplicates": out.rows - out.distinct, "missing_seq": out.missing, "link_events_logged": out.logged_ups,
              "machine": machine()}
    emit(result) if args.json else print(json.dumps(result, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hang", type=float, default=60.0)
    p.add_argument("--json", action="store_true")
    anyio.run(main, p.parse_args())
