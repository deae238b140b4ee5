"""Sustained end-to-end ingest, with its ceilings measured in the same run.

    .venv/bin/python bench/ingest.py --seconds 30 --json

Path measured: publisher process --QoS 1--> Mosquitto --> the core's MQTT
transport (manual ack) → push driver decode → registry → ingest (state, bus
``StateChanged``) → alarm engine (every default rule on a temperature point) →
SQLite commit (WAL, ``synchronous=FULL`` unless ``--synchronous NORMAL``) →
PUBACK.  ``msgs_per_s`` counts PUBACKs the core sent (a message is counted
only once its reading is committed) over the steady window (the first second
is warm-up).  Every message changes its point's value, so every message is a
state change, a rule evaluation and a ``readings`` row: the worst case.

Ceilings, same machine, same run, same publisher process:

* ``paho_qos1_receive_per_s``: one paho subscriber (QoS 1, automatic PUBACK,
  ``on_message`` only counts) — the most a Python MQTT client receives here;
* ``sqlite_rows_per_s``: plain ``sqlite3`` writing the core's two rows per
  reading (``readings`` INSERT + ``point_state`` UPSERT) in transactions of
  1000, same journal mode and ``synchronous`` as the core.

At the end every sequence number published must be stored exactly once
(``lost`` and ``duplicates`` are reported; both must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BenchPlugin,
    CpuMeter,
    emit,
    machine,
    progress,
    publisher_result,
    site_yaml,
    start_publisher,
)

from firebus.core.runtime import running_core  # noqa: E402
from firebus.core.storage import Storage  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402

WARMUP = 1.0


def paho_ceiling(broker: Mosquitto, seconds: float, devices: int) -> dict[str, float]:
    received = 0
    stamps: list[tuple[float, int]] = []
    ready = threading.Event()

    def on_message(client, userdata, msg) -> None:
        nonlocal received
        received += 1

    def on_subscribe(*a) -> None:
        ready.set()

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.connect(broker.host, broker.port)
    c.subscribe("bench/+/t", qos=1)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError("ceiling subscriber: no SUBACK")
    # The same publisher program and message shape as the firebus run (the core is not running yet).
    pub = start_publisher(broker.port, "--devices", str(devices), "--seconds", str(seconds),
                          "--client-id", "bench-pub-ceiling", "--prefix", "c")
    t0 = time.perf_counter()
    while pub.poll() is None:
        stamps.append((time.perf_counter(), received))
        time.sleep(0.25)
    offered = publisher_result(pub)
    deadline = time.perf_counter() + 60
    while received < offered["sent"] and time.perf_counter() < deadline:
        stamps.append((time.perf_counter(), received))
        time.sleep(0.05)
    stamps.append((time.perf_counter(), received))
    c.disconnect()
    c.loop_stop()
    steady = [(t, n) for t, n in stamps if t - t0 >= WARMUP]
    (ta, na), (tb, nb) = steady[0], steady[-1]
    return {
        "paho_qos1_receive_per_s": round((nb - na) / (tb - ta), 1),
        "paho_publisher_offered_per_s": offered["offered_per_s"],
        "paho_received": received,
        "paho_sent": offered["sent"],
    }


async def sqlite_ceiling(path: Path, synchronous: str, rows: int = 200_000, batch: int = 1000) -> dict[str, float]:
    async with Storage(path).running():
        pass  # the core's schema, created by its own migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    points = [f"p{i}" for i in range(1000)]
    from firebus.core.storage import SQL_READING, SQL_STATE

    started = time.perf_counter()
    for b in range(rows // batch):
        readings, states = [], []
        for i in range(batch):
            n = b * batch + i
            ts = 1_800_000_000 + n / 1000
            pid = points[n % len(points)]
            readings.append((pid, int(ts * 1000), 20.0 + n % 40 / 10, None))
            states.append((pid, 20.0 + n % 40 / 10, None, ts, ts, ts))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQL_STATE, states)
        conn.executemany(SQL_READING, readings)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return {"sqlite_rows_per_s": round(rows / elapsed, 1), "sqlite_batch": batch}


async def firebus_run(broker: Mosquitto, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    serials = [f"d{i}" for i in range(args.devices)]
    db = tmp / "firebus.db"
    site = site_yaml(db, broker.port, serials, synchronous=args.synchronous, receive_maximum=args.receive_maximum)
    async with running_core(site, extra_plugins={"bench": BenchPlugin()}, autoload=False) as core:
        transport = core.transports["mqtt"]
        await transport.wait_connected(20)
        await anyio.sleep(0.5)  # subscriptions in place
        progress(f"core up with {len(serials)} devices; publishing for {args.seconds:.0f} s")
        pub = start_publisher(broker.port, "--devices", str(args.devices), "--seconds", str(args.seconds),
                              "--rate", str(args.rate))
        t0 = time.perf_counter()
        base = transport.acked
        stamps: list[tuple[float, int]] = []
        cpu = None
        last_report = t0
        while pub.poll() is None:
            now = time.perf_counter()
            stamps.append((now, transport.acked - base))
            if cpu is None and now - t0 >= WARMUP:
                cpu = CpuMeter().start()
            if now - last_report >= 5:
                last_report = now
                rate = (stamps[-1][1] - stamps[-10][1]) / (stamps[-1][0] - stamps[-10][0]) if len(stamps) > 10 else 0
                progress(f"  t={now - t0:5.1f} s acked={stamps[-1][1]:,} ({rate:,.0f}/s) "
                         f"backlog={transport.max_backlog} storage_q={core.storage.metrics()['queue']}")
            await anyio.sleep(0.25)
        end = time.perf_counter()
        stamps.append((end, transport.acked - base))
        cpu_figures = cpu.stop() if cpu is not None else {}
        offered = await anyio.to_thread.run_sync(publisher_result, pub)
        steady = [(t, n) for t, n in stamps if t - t0 >= WARMUP]
        (ta, na), (tb, nb) = steady[0], steady[-1]
        live_rate = (nb - na) / (tb - ta)
        progress(f"publisher done: {offered['sent']:,} sent ({offered['offered_per_s']:,.0f}/s offered); draining")
        drain_start = time.perf_counter()
        deadline = drain_start + max(120.0, args.seconds * 4)
        while transport.acked - base < offered["sent"] and time.perf_counter() < deadline:
            await anyio.sleep(0.1)
        drained_at = time.perf_counter()
        total_acked = transport.acked - base
        metrics = core.metrics()
    rows, distinct = _stored(db)
    return {
        "msgs_per_s": round(live_rate, 1),
        "readings_per_s": round(live_rate, 1),  # one reading per message
        **cpu_figures,
        "offered_per_s": offered["offered_per_s"],
        "sent": offered["sent"],
        "acked": total_acked,
        "end_to_end_per_s_incl_drain": round(total_acked / (drained_at - t0), 1),
        "drain_s_after_publisher": round(drained_at - drain_start, 2),
        "stored_rows": rows,
        "lost": offered["sent"] - distinct,
        "duplicates": rows - distinct,
        "max_unacked_held": transport.max_backlog,
        "storage_commits": metrics["storage"]["commits"],
        "rule_errors": metrics["alarms"].get("rule_errors", 0),
    }


def _stored(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT point_id || ':' || ts) FROM readings").fetchone()
    return rows, distinct


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="fb-bench-") as tmpdir:
        tmp = Path(tmpdir)
        # Queue everything the core has not taken yet: a broker that sheds would hide a slow core.
        with Mosquitto(tmp / "broker", extra_config="max_queued_messages 0\n") as broker:
            progress(f"ceiling 1/2: raw paho QoS 1 receive for {args.ceiling_seconds:.0f} s")
            paho = await anyio.to_thread.run_sync(paho_ceiling, broker, args.ceiling_seconds, args.devices)
            progress(f"  {paho['paho_qos1_receive_per_s']:,.0f} msg/s")
            progress("ceiling 2/2: SQLite batched writes")
            sq = await sqlite_ceiling(tmp / "ceiling.db", args.synchronous)
            progress(f"  {sq['sqlite_rows_per_s']:,.0f} readings/s")
            fb = await firebus_run(broker, tmp, args)
    result = {
        "bench": "ingest",
        "msgs_per_s": fb.pop("msgs_per_s"),
        "ratio_to_paho_ceiling": round(fb["readings_per_s"] / paho["paho_qos1_receive_per_s"], 3),
        "ratio_to_sqlite_ceiling": round(fb["readings_per_s"] / sq["sqlite_rows_per_s"], 3),
        **fb,
        **paho,
        **sq,
        "seconds": args.seconds,
        "devices": args.devices,
        "synchronous": args.synchronous,
        "receive_maximum": args.receive_maximum,
        "machine": machine(),
    }
    if args.json:
        emit(result)
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="publishing time for the firebus run")
    p.add_argument("--ceiling-seconds", type=float, default=8.0, help="publishing time for the paho ceiling")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=0.0, help="offered msg/s (0: as fast as the publisher goes)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--receive-maximum", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
