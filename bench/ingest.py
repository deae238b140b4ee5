"""Durable ingest at the storage ceiling, with its ceilings measured in the same run.

    .venv/bin/python bench/ingest.py --json                      # 1,000 and 10,000 devices
    .venv/bin/python bench/ingest.py --devices 1000 --seconds 10 --json

Path measured: ``bench/_fastpub.py`` (QoS 1, several processes, not the limit) →
Mosquitto → the core's MQTT transport (batch hand-over, manual ack) → push
driver decode → registry → ingest (in-memory state, no database read) →
journal entry → storage writer (``synchronous=FULL``, WAL) → commit → PUBACK,
and every committed entry through the alarm engine (every default rule on a
temperature point).  A message is counted once its PUBACK went out, i.e. once
its reading is on disk.

For each device count:

* ``receive_ceiling_per_s``: the transport alone draining a pre-queued backlog
  (handler only acks) — the most MQTT gives the core here;
* ``sqlite_ceiling_per_s``: plain ``sqlite3`` writing exactly the core's rows
  for a reading (the journal's state-change row, its unique key) in the
  writer's batch size, same synchronous mode;
* ``live``: the publisher offers as fast as it can for ``--seconds`` while the
  core ingests; ``msgs_per_s`` over the steady window (after 1 s), then the
  backlog the broker holds is drained (``drain_per_s``); every message a state
  change.  ``lost``/``duplicates`` compare the journal with what was sent;
* ``repeats``: the same with ``--repeats`` of the messages repeating their value
  (a realistic mix: repeats move ``last_reported`` only, no row);
* ``ratio_to_sqlite_ceiling`` = live msgs_per_s / sqlite ceiling;
  ``live_to_drain`` = live rate / drain rate (throughput must not collapse
  while the publisher is still publishing).
* ``live_cpu_pct_by_process`` / ``drain_cpu_pct_by_process``: CPU of the core,
  the broker, the publishers and the API reader (100 % = one core) — who had
  the two cores.  The publishers stand in for devices on other machines, so
  they run at ``--publisher-nice`` (default 10): they take the CPU the core and
  the broker leave, and still offer well over what the core takes (the
  ``offered_per_s`` printed beside every figure says by how much).  With
  ``--publisher-nice 0`` they took ~60 % of a core on a 2-core VM and the
  core's live rate followed its smaller share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, BenchPlugin, CpuMeter, ProcessesCpu, emit, machine, progress, rss_mb, site_yaml  # noqa: E402
from mqtt_ceiling import firebus_client  # noqa: E402

from firebus.core.journal.rows import SQL_J_STATE  # noqa: E402
from firebus.core.runtime import running_core  # noqa: E402
from firebus.core.storage import Storage  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402

HERE = Path(__file__).resolve().parent
WARMUP = 1.0


def start_fastpub(port: int, devices: int, *, seconds: float = 0.0, count: int = 0, repeats: float = 0.0,
                  processes: int = 2, client_id: str = "ingest-pub", start_seq: int = 0,
                  rate: float = 0.0, nice: int = 0) -> subprocess.Popen[str]:
    cmd = [PYTHON, str(HERE / "_fastpub.py"), "--port", str(port), "--devices", str(devices),
           "--processes", str(processes), "--client-id", client_id, "--repeats", str(repeats),
           "--start-seq", str(start_seq), "--rate", str(rate)]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    if count:
        cmd += ["--count", str(count)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.nice(nice)) if nice else None)


async def start_reader(core: Any, tg: Any) -> subprocess.Popen[str]:
    """The panel's HTTP API served by the running core, and a client process reading from it."""
    from firebus.core.web.auth import AuthStore
    from firebus.core.web.server import serve

    server = await tg.start(serve, core, "127.0.0.1", 0)
    auth = AuthStore(core.storage)
    await auth.create_user("bench", "admin", password="bench-password-1")
    token, _ = await auth.create_token("bench", label="bench")
    await core.storage.barrier()
    known = list(core.device_ids.values())
    ids = known[:: max(1, len(known) // 20)][:20]
    paths = [f"/api/devices/{i}" for i in ids] + ["/api/alarms", "/api/health"]
    return subprocess.Popen([PYTHON, str(HERE / "_reader.py"), server.url, token, *paths, "--rate", "20"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reader_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(input="", timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"_reader failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def pub_result(proc: subprocess.Popen[str], timeout: float = 900) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"_fastpub failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def sqlite_ceiling(path: Path, devices: int, synchronous: str, batch: int, rows: int = 300_000) -> dict[str, Any]:
    """The core's row per reading, written by a bare sqlite3 connection in the writer's batch size."""
    asyncio.run(_schema(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA cache_size=-16384")
    points = [f"01J{i:023d}" for i in range(devices)]
    seq = 0
    started = time.perf_counter()
    for b in range(rows // batch):
        chunk = []
        for i in range(batch):
            n = b * batch + i
            seq += 1
            chunk.append((seq, 1.8e9 + n / 1000, "telemetry", points[n % devices], 1_800_000_000_000 + n,
                          20.0 + n % 40 / 10, None, 0))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(SQL_J_STATE, chunk)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return {"sqlite_ceiling_per_s": round(rows / elapsed, 1), "sqlite_batch": batch}


async def _schema(path: Path) -> None:
    async with Storage(path).running():
        pass  # the core's schema, created by its own migrations


def _stored(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT subject || ':' || vts) FROM journal WHERE type = 'StateChanged'"
        ).fetchone()


async def live(broker: Mosquitto, tmp: Path, devices: int, args: argparse.Namespace, repeats: float,
               tag: str) -> dict[str, Any]:
    serials = [f"d{i}" for i in range(devices)]
    db = tmp / f"live-{tag}.db"
    site = site_yaml(db, broker.port, serials, synchronous=args.synchronous, receive_maximum=args.receive_maximum,
                     storage=f"state_checkpoint_s: {args.state_checkpoint_s}" if args.state_checkpoint_s else "",
                     client_id=f"fb-{tag}")
    async with running_core(site, extra_plugins={"bench": BenchPlugin()}, autoload=False) as core, \
            anyio.create_task_group() as web_tg:
        transport = core.transports["mqtt"]
        await transport.wait_connected(30)
        reader = await start_reader(core, web_tg) if args.reads else None
        progress(f"  {tag}: core up with {devices:,} devices; publishing for {args.seconds:.0f} s"
                 f" (repeats {repeats:.0%})")
        pub = start_fastpub(broker.port, devices, seconds=args.seconds, repeats=repeats,
                            processes=args.publishers, client_id=f"pub-{tag}", nice=args.publisher_nice)
        t0 = time.perf_counter()
        base = transport.acked
        stamps: list[tuple[float, int]] = []
        cpu: CpuMeter | None = None
        assert broker.proc is not None
        pids = {"core": os.getpid(), "broker": broker.proc.pid, "publisher": pub.pid}
        if reader is not None:
            pids["reader"] = reader.pid
        split: ProcessesCpu | None = None
        split_figures: dict[str, float] = {}
        while pub.poll() is None:
            now = time.perf_counter()
            stamps.append((now, transport.acked - base))
            if cpu is None and now - t0 >= WARMUP:
                cpu = CpuMeter().start()
                split = ProcessesCpu(pids).start()
            elif split is not None and not split_figures and now - t0 >= args.seconds - 0.5:
                split_figures = split.stop()  # while the publisher is still there to be read
            await asyncio.sleep(0.2)
        end = time.perf_counter()
        stamps.append((end, transport.acked - base))
        cpu_figures = cpu.stop() if cpu is not None else {}
        # In a thread: the reader may be waiting for an answer from this very loop, and
        # communicate() here would hold the loop until the reader's 30 s socket timeout.
        reads = await anyio.to_thread.run_sync(reader_result, reader) if reader is not None else None
        offered = await anyio.to_thread.run_sync(pub_result, pub)
        steady = [(t, n) for t, n in stamps if t - t0 >= WARMUP]
        (ta, na), (tb, nb) = steady[0], steady[-1]
        live_rate = (nb - na) / max(1e-9, tb - ta)
        backlog = offered["sent"] - (transport.acked - base)
        progress(f"  {tag}: {offered['sent']:,} sent ({offered['offered_per_s']:,.0f}/s offered), "
                 f"{live_rate:,.0f}/s acked while publishing; draining {backlog:,}")
        d0, a0 = time.perf_counter(), transport.acked - base
        drain_cpu = CpuMeter().start()
        drain_split = ProcessesCpu({"core": os.getpid(), "broker": broker.proc.pid}).start()
        deadline = d0 + 600
        while transport.acked - base < offered["sent"] and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        d1, a1 = time.perf_counter(), transport.acked - base
        drain_cpu_figures = drain_cpu.stop()
        drain_split_figures = drain_split.stop()
        drain_rate = (a1 - a0) / (d1 - d0) if a1 > a0 and d1 > d0 else None
        await core.storage.barrier()
        metrics = core.metrics()
        rss = rss_mb()
        web_tg.cancel_scope.cancel()
    rows, distinct = _stored(db)
    out: dict[str, Any] = {
        "msgs_per_s": round(live_rate, 1),
        "offered_per_s": offered["offered_per_s"],
        "sent": offered["sent"],
        "acked": a1,
        "drain_backlog": backlog,
        "drain_per_s": round(drain_rate, 1) if drain_rate else None,
        "live_to_drain": round(live_rate / drain_rate, 3) if drain_rate else None,
        **cpu_figures,
        "drain_core_process_cpu_pct": drain_cpu_figures["core_process_cpu_pct"],
        # Messages per second of the core's own CPU, live and draining: on 2 shared cores the
        # publishers take CPU while they publish, so the wall-clock ratio above understates the
        # core; this one says whether the core's work per message grows under overload.
        "live_msgs_per_cpu_s": round(live_rate / max(1e-9, cpu_figures.get("core_process_cpu_pct", 0) / 100), 1),
        "drain_msgs_per_cpu_s": round((drain_rate or 0) / max(1e-9, drain_cpu_figures["core_process_cpu_pct"] / 100),
                                      1),
        # who had the 2 cores (100 % = one core): the core's live rate follows its share
        "live_cpu_pct_by_process": split_figures,
        "drain_cpu_pct_by_process": drain_split_figures if drain_rate is not None else None,  # no backlog: nothing to split
        "rss_mb": rss,
        "unacked_max": transport.max_backlog,
        "unacked_bound": 2 * args.receive_maximum,
        "stored_changes": rows,
        "storage_commits": metrics["storage"]["commits"],
        "max_commit_ms": metrics["storage"]["max_commit_ms"],
        "engine_evaluated": metrics["alarms"].get("evaluated", 0),
        "rule_errors": metrics["alarms"].get("rule_errors", 0),
    }
    if reads is not None:
        out["api_reads"] = reads
    if repeats == 0:
        out["lost"] = offered["sent"] - distinct
        out["duplicates"] = rows - distinct
    else:
        # Repeats store no row: every message must still be acknowledged.  More acks than
        # messages sent are the broker's redeliveries (acknowledged again), not a loss.
        out["lost"] = max(0, offered["sent"] - a1)
        out["redelivered_acks"] = max(0, a1 - offered["sent"])
        out["repeats"] = repeats
    return out


async def one(devices: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    progress(f"{devices:,} devices")
    with Mosquitto(tmp / f"broker-{devices}", extra_config="max_queued_messages 0\n") as broker:
        progress("  ceiling 1/2: transport receive from a pre-queued backlog")
        recv = await firebus_client(broker, f"ceiling-{devices}", args.ceiling_messages, devices, args.publishers,
                                    legacy=False, receive_maximum=args.receive_maximum)
        progress(f"    {recv['msgs_per_s']:,.0f} msg/s")
        progress("  ceiling 2/2: SQLite, the core's rows")
        sq = await asyncio.to_thread(sqlite_ceiling, tmp / f"ceiling-{devices}.db", devices, args.synchronous,
                                     args.batch)
        progress(f"    {sq['sqlite_ceiling_per_s']:,.0f} readings/s")
        result: dict[str, Any] = {
            "devices": devices,
            "receive_ceiling_per_s": recv["msgs_per_s"],
            "receive_ceiling_offered_per_s": recv["offered_per_s"],
            **sq,
        }
        changes = await live(broker, tmp, devices, args, 0.0, f"{devices}-changes")
        result["live"] = changes
        result["msgs_per_s"] = changes["msgs_per_s"]
        result["ratio_to_sqlite_ceiling"] = round(changes["msgs_per_s"] / sq["sqlite_ceiling_per_s"], 3)
        result["ratio_to_receive_ceiling"] = round(changes["msgs_per_s"] / recv["msgs_per_s"], 3)
        result["lost"] = changes["lost"]
        result["duplicates"] = changes["duplicates"]
        result["cpu"] = changes.get("core_process_cpu_pct")
        result["unacked_max"] = changes["unacked_max"]
        if args.repeats > 0:
            mix = await live(broker, tmp, devices, args, args.repeats, f"{devices}-mix")
            result["repeats_mix"] = mix
    progress(f"  {devices:,} devices: {result['msgs_per_s']:,.0f} msg/s live "
             f"(ratio {result['ratio_to_sqlite_ceiling']} to SQLite), lost {result['lost']}, "
             f"duplicates {result['duplicates']}")
    return result


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="fb-ingest-", dir=os.environ.get("FIREBUS_BENCH_TMP")) as tmpdir:
        runs = [await one(n, args, Path(tmpdir)) for n in args.devices]
    emit({
        "bench": "ingest",
        "goal_msgs_per_s": 25_000,
        "goal_ratio_to_sqlite_ceiling": 0.5,
        "runs": runs,
        "seconds": args.seconds,
        "synchronous": args.synchronous,
        "receive_maximum": args.receive_maximum,
        "publisher_processes": args.publishers,
        "machine": machine(),
    }, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--seconds", type=float, default=20.0, help="publishing time of each live run")
    p.add_argument("--ceiling-messages", type=int, default=100_000)
    p.add_argument("--repeats", type=float, default=0.9, help="share of repeats in the mix run (0: skip it)")
    p.add_argument("--publishers", type=int, default=2, help="publisher processes")
    p.add_argument("--publisher-nice", type=int, default=10,
                   help="run the publishers at this nice level (they stand in for devices on other machines)")
    p.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    p.add_argument("--state-checkpoint-s", type=float, default=None,
                   help="storage.state_checkpoint_s of the site (default: the core's, 5 s)")
    p.add_argument("--receive-maximum", type=int, default=4000, help="the MQTT window (the transport's default)")
    p.add_argument("--batch", type=int, default=5000, help="the writer's batch_max (the SQLite ceiling's batch)")
    p.add_argument("--reads", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the HTTP API and read devices/alarms from it at 20 req/s while ingesting")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
