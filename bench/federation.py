"""Federation figures: PostgreSQL COPY ceiling, centre ingest from JetStream, fire alarm latency.

    .venv/bin/python bench/federation.py --json [--sites 100] [--devices 10000] [--rounds 1]
                                         [--ceiling-rows 300000] [--alarm-gap 0.05] [--max-seconds 240]

Everything real and on loopback: its own nats-server (JetStream, file store) and its own
PostgreSQL cluster (initdb in a temp dir, fsync on), both started here.

1. **Ceiling**: ``ceiling_rows`` telemetry rows, built in memory beforehand, ``COPY``'d
   straight into the centre's ``telemetry`` table (same daily partition, same indexes),
   50,000 rows per transaction: what this PostgreSQL accepts with nothing else to do.
2. **Fill**: ``sites`` simulated sites publish ``devices`` × ``rounds`` state-change journal
   entries each into JetStream, exactly as the site plugin does (``envelope.encode``, subject
   ``firebus.<site>.journal.telemetry``, ``Nats-Msg-Id``, publish acks awaited).  One reading
   per device per round, so round 1 registers ``sites × devices`` latest-state rows.
3. **Ingest**: the centre (``Centre``, this process) drains the stream into PostgreSQL
   (fetch, decode, COPY into telemetry, COPY of one row per point into a staging table and
   the latest_state upsert from it, COMMIT, ack).  Rate = rows committed / (last commit − first
   commit); ``cpu_us_per_row``: CPU of the centre process, the PostgreSQL cluster and
   nats-server per row over the same span (who had the two cores, whatever else ran); the
   ceiling's ``postgresql_cpu_us_per_row`` is PostgreSQL's for the ceiling.  Meanwhile a child
   process (another CPU) publishes a fire ``AlarmEvent`` every ``alarm_gap`` seconds for a
   site; latency = its journal time at the "site" → COMMIT at the centre (the same clock).

Sites are simulated by a publisher, not by 100 firebus cores: the site side's own cost is the
journal consumer and one publish per entry (tests/federation run the real core).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine, process_cpu_s, progress  # noqa: E402

from firebus.plugins.federation import envelope  # noqa: E402
from firebus.plugins.federation.centre import Centre, CentreConfig  # noqa: E402
from firebus.plugins.federation.servers import NatsServer, PostgresCluster, find_nats_server  # noqa: E402
from firebus.sdk import (AlarmCategory, AlarmEvent, AlarmTransition, Context, Event, Lane, Severity,  # noqa: E402
                         StateChanged)


def quantiles_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    v = sorted(values)

    def q(p: float) -> float:
        return round(1000 * v[min(len(v) - 1, int(p * len(v)))], 1)

    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99), "max_ms": round(1000 * v[-1], 1)}


# -- 1. ceiling -------------------------------------------------------------------------------


def ceiling_lines(n: int, now: float) -> list[bytes]:
    stamp = dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat()
    out = []
    chunk: list[bytes] = []
    for i in range(n):
        chunk.append(f"ceil-{i % 100}\t{i}\t{stamp}\tp{i}\td{i}\t{stamp}\t{i * 0.5}\t\\N\t\\N\tf\ttelemetry".encode())
        if len(chunk) == 50_000:
            out.append(b"\n".join(chunk) + b"\n")
            chunk = []
    if chunk:
        out.append(b"\n".join(chunk) + b"\n")
    return out


def copy_ceiling(dsn: str, rows: int) -> dict[str, Any]:
    import psycopg

    chunks = ceiling_lines(rows, time.time())
    with psycopg.connect(dsn) as conn:
        t0 = time.perf_counter()
        for data in chunks:
            with conn.cursor() as cur:
                with cur.copy("COPY telemetry (site_id, seq, ts, point_id, device_id, vts, num, val, fault, late, "
                              "lane) FROM STDIN") as copy:
                    copy.write(data)
            conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE telemetry")  # TRUNCATE is not UPDATE/DELETE: the triggers allow it
        conn.commit()
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed)}


# -- 2. fill ----------------------------------------------------------------------------------


async def fill(url: str, sites: int, devices: int, rounds: int, deadline: float) -> dict[str, Any]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=20_000)
    t0 = time.perf_counter()
    base = time.time()
    sent = 0
    futures: list[Any] = []
    stopped_early = False
    for r in range(rounds):
        for d in range(devices):
            for s in range(sites):
                site = f"site-{s:03d}"
                seq = r * devices + d + 1
                event = Event(data=StateChanged(point_id=f"pt-{d}", device_id=f"dev-{d}", point_key="temperature",
                                                point_class="temperature", ts=base + seq * 0.001,
                                                new_value=20.0 + (seq % 100) / 10),
                              context=Context(id=""), time_fired=base + seq * 0.001, seq=seq, lane=Lane.TELEMETRY)
                futures.append(await js.publish_async(envelope.subject(site, Lane.TELEMETRY),
                                                      envelope.encode(site, event),
                                                      headers={"Nats-Msg-Id": envelope.msg_id(site, seq)}))
                sent += 1
                if len(futures) >= 10_000:
                    await asyncio.gather(*futures)
                    futures = []
                    if time.monotonic() > deadline:
                        stopped_early = True
                        break
            if stopped_early:
                break
        if stopped_early:
            break
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    await nc.close()
    return {"messages": sent, "seconds": round(elapsed, 2), "msgs_per_s": round(sent / elapsed),
            "stopped_at_deadline": stopped_early}


# -- 3. alarms from another process -------------------------------------------------------------


def alarm_publisher(url: str, gap: float, stop: Any, count: Any) -> None:
    async def run() -> None:
        import nats

        nc = await nats.connect(url)
        js = nc.jetstream()
        seq = 10_000_000
        while not stop.is_set():
            seq += 1
            now = time.time()
            event = Event(data=AlarmEvent(alarm_id=f"F{seq}", transition=AlarmTransition.NEW,
                                          category=AlarmCategory.FIRE, severity=Severity.FIRE, rule="smoke",
                                          device_id="dev-1", point_id="pt-1", message="Fire", message_zh="火警",
                                          ts=now),
                          context=Context(), time_fired=now, seq=seq, lane=Lane.ALARM)
            await js.publish(envelope.subject("site-000", Lane.ALARM), envelope.encode("site-000", event),
                             headers={"Nats-Msg-Id": envelope.msg_id("site-000", seq)})
            count.value += 1
            await asyncio.sleep(gap)
        await nc.close()

    asyncio.run(run())


def cpu_snapshot(pids: dict[str, tuple[int, bool]]) -> dict[str, float]:
    return {name: process_cpu_s(pid, children=children) for name, (pid, children) in pids.items()}


async def ingest(cfg: CentreConfig, expected: int, url: str, gap: float, deadline: float,
                 pids: dict[str, tuple[int, bool]]) -> dict[str, Any]:
    centre = Centre(cfg)
    latencies: list[float] = []
    first: list[float] = []
    last = [0.0]
    during: list[float] = []
    cpu: list[dict[str, float]] = []  # CPU seconds at the first telemetry commit, and at the latest
    rows_at: list[int] = []

    def on_commit(lane: str, entries: list[envelope.Incoming]) -> None:
        now = time.time()
        if lane == "alarm":
            for e in entries:
                if e.type == "AlarmEvent":
                    latencies.append(now - e.ts)
                    if centre.ingested["telemetry"] < expected:
                        during.append(now - e.ts)
        elif entries:
            snap = cpu_snapshot(pids)
            if not first:
                first.append(time.perf_counter())
                cpu[:] = [snap, snap]
                rows_at[:] = [centre.ingested["telemetry"], 0]
            last[0] = time.perf_counter()
            cpu[1] = snap
            rows_at[1] = centre.ingested["telemetry"]

    centre.on_commit = on_commit
    await centre.migrate()  # the ceiling truncated telemetry; partitions stay
    ctx = mp.get_context("spawn")
    stop, count = ctx.Event(), ctx.Value("i", 0)
    proc = ctx.Process(target=alarm_publisher, args=(url, gap, stop, count), daemon=True)
    proc.start()
    task = asyncio.create_task(centre.run())
    timed_out = False
    try:
        while centre.ingested["telemetry"] < expected:
            if time.monotonic() > deadline:
                timed_out = True
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(max(1.0, 3 * gap))  # the last alarms in flight
    finally:
        stop.set()
        proc.join(10)
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
    rows = centre.ingested["telemetry"]
    span = (last[0] - first[0]) if first else 0.0
    # CPU per row between the first and the last telemetry commit (the rows of the first batch
    # excluded, as from the rate): who had the two cores — independent of other jobs' load
    n = (rows_at[1] - rows_at[0]) if rows_at else 0
    cpu_us = {name: round(1e6 * (cpu[1][name] - cpu[0][name]) / n, 1) for name in pids} if n else {}
    return {
        "rows": rows, "expected": expected, "seconds": round(span, 2),
        "rows_per_s": round(rows / span) if span > 0 else None, "timed_out": timed_out,
        "batches": centre.batches["telemetry"], "latest_state_upserts": centre.rows["latest_state"],
        "errors": centre.errors, "last_error": centre.last_error,
        "centre_seconds": centre.metrics()["seconds"],
        "cpu_us_per_row": cpu_us,
        "alarms": {"published": count.value, "committed": len(latencies), "committed_while_ingesting": len(during),
                   "all": quantiles_ms(latencies), "while_ingesting": quantiles_ms(during)},
    }


async def count_latest(dsn: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM latest_state")
        row = await cur.fetchone()
        return int(row[0]) if row else 0


def versions(pg: PostgresCluster) -> dict[str, str]:
    out = {}
    try:
        out["nats_server"] = subprocess.run([find_nats_server(), "--version"], capture_output=True,
                                            text=True, timeout=5).stdout.strip()
        out["postgresql"] = subprocess.run([str(pg.bin / "postgres"), "--version"], capture_output=True,
                                           text=True, timeout=5).stdout.strip()
    except Exception:
        pass
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.max_seconds
    tmp = Path(tempfile.mkdtemp(prefix="firebus-bench-fed-"))
    nats_srv = NatsServer(tmp / "nats")
    pg = PostgresCluster(tmp / "pg")
    nats_srv.start()
    pg.start()
    try:
        dsn = pg.create_database("centre")
        cfg = CentreConfig(pg=dsn, nats=[nats_srv.url], telemetry_batch=args.batch, telemetry_writers=args.writers)
        centre = Centre(cfg)
        await centre.migrate()
        progress(f"COPY ceiling: {args.ceiling_rows} rows")
        pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        pg_cpu = process_cpu_s(pg_pid)
        ceiling = await asyncio.to_thread(copy_ceiling, dsn, args.ceiling_rows)
        # PostgreSQL's CPU per row of the ceiling (the TRUNCATE after it included: small)
        ceiling["postgresql_cpu_us_per_row"] = round(1e6 * (process_cpu_s(pg_pid) - pg_cpu) / args.ceiling_rows, 1)
        progress(f"ceiling {ceiling['rows_per_s']} rows/s; creating the stream")
        import nats

        nc = await nats.connect(nats_srv.url)
        centre.js = nc.jetstream()
        await centre.ensure_stream()
        await nc.close()
        progress(f"fill: {args.sites} sites × {args.devices} devices × {args.rounds} round(s)")
        filled = await fill(nats_srv.url, args.sites, args.devices, args.rounds,
                            started + args.max_seconds * 0.45)
        progress(f"filled {filled['messages']} in {filled['seconds']} s; ingesting")
        pids = {"centre": (os.getpid(), False), "postgresql": (pg_pid, True)}
        if nats_srv.proc is not None:
            pids["nats_server"] = (nats_srv.proc.pid, False)
        result = await ingest(cfg, filled["messages"], nats_srv.url, args.alarm_gap, deadline, pids)
        latest = await count_latest(dsn)
        ratio = round(result["rows_per_s"] / ceiling["rows_per_s"], 3) if result["rows_per_s"] else None
        p99 = result["alarms"]["while_ingesting"]["p99_ms"]
        return {
            "bench": "federation",
            "machine": {**machine(), **versions(pg)},
            "params": {"sites": args.sites, "devices_per_site": args.devices, "rounds": args.rounds,
                       "batch": args.batch, "writers": args.writers, "alarm_gap_s": args.alarm_gap, "max_seconds": args.max_seconds},
            "copy_ceiling": ceiling,
            "fill": filled,
            "ingest": result,
            "ingest_to_ceiling": ratio,
            "latest_state_rows": latest,
            "goals": {"ingest_ratio_ge_0.5": ratio is not None and ratio >= 0.5,
                      "fire_p99_le_1s_while_ingesting": p99 is not None and p99 <= 1000,
                      "latest_state_rows_1M": latest >= 1_000_000},
            "wall_s": round(time.monotonic() - started, 1),
        }
    finally:
        nats_srv.stop()
        pg.cleanup()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="one JSON line on stdout")
    p.add_argument("--sites", type=int, default=100)
    p.add_argument("--devices", type=int, default=10_000, help="devices (one point each) per site")
    p.add_argument("--rounds", type=int, default=1, help="readings per device")
    p.add_argument("--batch", type=int, default=10_000, help="centre telemetry batch (messages per fetch)")
    p.add_argument("--writers", type=int, default=1, help="centre telemetry writer sessions")
    p.add_argument("--ceiling-rows", type=int, default=300_000)
    p.add_argument("--alarm-gap", type=float, default=0.05, help="seconds between fire alarms")
    p.add_argument("--max-seconds", type=float, default=240.0, help="bound on the whole run")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    emit(result, one_line=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
