"""Alarm latency under load: a smoke message leaving its publisher → its notification at a webhook.

    .venv/bin/python bench/alarm_latency.py --json
    .venv/bin/python bench/alarm_latency.py --rates 1000 --alarms 50 --json     # quick

First the core's ingest capacity is measured on this machine (a pre-queued
backlog of telemetry drained by the same core: ``ingest_capacity_per_s``).  Then
for each level a fresh Mosquitto and core (notify plugin, one webhook channel)
run; ``bench/_fastpub.py`` offers telemetry at the level's rate over
``--devices`` devices, and a second publisher sends ``--alarms`` smoke alarms,
each from another detector, ``--gap`` s apart.  Levels: each of ``--rates``,
then ``--overload`` × the measured capacity (marked ``"overload": true``): the
background then exceeds what the box sustains, and telemetry must degrade
(held at the broker, acknowledged later) while alarms do not.

Each alarm goes: QoS 1 publish → Mosquitto → the MQTT transport's alarm
session → decode → ingest (alarm lane) → writer (alarm transaction, ahead of
telemetry batches) → journal → alarm engine (``two_detector`` single-detector
fire alarm) → AlarmEvent committed → notify (outbox row, alarm lane) →
webhook POST → the receiver process.  Latency = receiver arrival − publisher
send, same machine, same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchPlugin, PYTHON, HERE, emit, machine, progress, quantiles_ms, site_yaml, start_publisher  # noqa: E402
from ingest import pub_result, start_fastpub  # noqa: E402

from firebus.core.runtime import running_core  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402

GOAL_P99_MS = {"normal": 50.0, "overload": 1000.0}


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([PYTHON, str(HERE / "_receiver.py")], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]
        self.arrivals: list[dict] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.arrivals.append(json.loads(line))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def notify_section(url: str) -> str:
    return (
        "plugins: {allow: [notify]}\n"
        "notify:\n"
        "  channels:\n"
        f"    - {{key: hook, type: webhook, options: {{url: '{url}'}}}}\n"
        "  people:\n"
        "    - {name: duty, roles: [duty_officer], contacts: {hook: duty}}\n"
        "  routes:\n"
        "    - {name: fire, channels: [hook], categories: [fire]}\n"
    )


async def capacity(tmp: Path, devices: int, messages: int) -> dict[str, Any]:
    """How fast this core drains telemetry on this machine (every message a state change)."""
    serials = [f"d{i}" for i in range(devices)]
    with Mosquitto(tmp / "broker-capacity", extra_config="max_queued_messages 0\n") as broker:
        site = site_yaml(tmp / "capacity.db", broker.port, serials, client_id="fb-capacity")
        async with running_core(site, extra_plugins={"bench": BenchPlugin()}, autoload=False) as core:
            await core.transports["mqtt"].wait_connected(30)
        pub = start_fastpub(broker.port, devices, count=messages, client_id="cap-pub")
        offered = await asyncio.to_thread(pub_result, pub)
        async with running_core(site, extra_plugins={"bench": BenchPlugin()}, autoload=False) as core:
            t = core.transports["mqtt"]
            started = time.perf_counter()
            while t.acked < messages:
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
    return {"ingest_capacity_per_s": round(messages / elapsed, 1), "capacity_messages": messages,
            "capacity_offered_per_s": offered["offered_per_s"]}


async def one_level(tmp: Path, rate: float, overload: bool, args: argparse.Namespace) -> dict[str, Any]:
    receiver = Receiver()
    tag = f"{int(rate)}"
    try:
        with Mosquitto(tmp / f"broker-{tag}", extra_config="max_queued_messages 0\n") as broker:
            telemetry = [f"d{i}" for i in range(args.devices)]
            detectors = [f"a{k}" for k in range(args.alarms)]
            site = site_yaml(tmp / f"fb-{tag}.db", broker.port, telemetry + detectors, client_id=f"fb-lat-{tag}",
                             extra=notify_section(f"http://127.0.0.1:{receiver.port}/hook"))
            async with running_core(site, extra_plugins={"bench": BenchPlugin()}) as core:
                transport = core.transports["mqtt"]
                await transport.wait_connected(30)
                from firebus.plugins import notify

                service = notify.service_for(core)
                assert service is not None, "notify plugin not running"
                await asyncio.wait_for(service.wait_ready(), 30)
                by_id = {core.device_ids[k]: k for k in detectors}
                # Where the time goes: the alarm's transition committed (the AlarmEvent on the bus)
                # vs the notification at the receiver.
                raised: dict[str, float] = {}

                def on_alarm(event: Any) -> None:
                    data = event.data
                    key = by_id.get(data.device_id or "")
                    if key is not None and str(data.transition) == "new" and key not in raised:
                        raised[key] = time.time()

                from firebus.sdk import AlarmEvent

                core.bus.subscribe("bench-probe", on_alarm, [AlarmEvent])
                duration = args.alarms * args.gap + 4
                bg = None
                if rate:
                    bg = start_fastpub(broker.port, args.devices, seconds=duration + 2, rate=rate,
                                       client_id=f"bg-{tag}", processes=args.publishers)
                    await asyncio.sleep(2.0)  # the background at its rate before the first alarm
                base = transport.acked
                progress(f"background {rate:,.0f} msg/s{' (overload)' if overload else ''}; "
                         f"{args.alarms} alarms {args.gap} s apart")
                alarm_pub = start_publisher(broker.port, "--alarms", str(args.alarms), "--alarm-gap", str(args.gap),
                                            "--prefix", "a", "--client-id", f"alarms-{tag}")
                out, _ = await asyncio.to_thread(alarm_pub.communicate, timeout=duration + 120)
                sent: dict[str, float] = {}
                for line in out.splitlines():
                    row = json.loads(line)
                    if "device" in row:
                        sent[row["device"]] = row["sent"]
                deadline = time.monotonic() + args.settle
                while time.monotonic() < deadline:
                    got = {by_id.get((a["body"].get("data") or {}).get("device_id")) for a in receiver.arrivals
                           if a["body"].get("kind") == "new"}
                    if set(sent) <= got:
                        break
                    await asyncio.sleep(0.1)
                acked_during = transport.acked - base
                offered = None
                if bg is not None:
                    try:
                        offered = await asyncio.to_thread(pub_result, bg, 120)
                    except Exception:  # the publisher's own end: figures only
                        bg.kill()
                metrics = core.metrics()
                stats = transport.stats()
    finally:
        receiver.close()
    latencies = []
    seen = set()
    for a in receiver.arrivals:
        body = a["body"]
        if body.get("kind") != "new":
            continue
        device = by_id.get((body.get("data") or {}).get("device_id"))
        if device in sent and device not in seen:
            seen.add(device)
            latencies.append(a["t"] - sent[device])
    if os.environ.get("FIREBUS_BENCH_TRACE"):
        progress("latencies in send order (ms): " + " ".join(f"{x * 1000:.0f}" for x in latencies))
        progress("to commit (ms): " + " ".join(f"{(raised[d] - sent[d]) * 1000:.0f}" for d in sent if d in raised))
    to_commit = [raised[d] - sent[d] for d in sent if d in raised]
    q = quantiles_ms(latencies)
    qc = quantiles_ms(to_commit)
    goal = GOAL_P99_MS["overload" if overload else "normal"]
    return {
        "background_msgs_per_s": rate,
        "overload": overload,
        **q,
        "alarm_committed_p50_ms": qc.get("p50_ms"),
        "alarm_committed_p99_ms": qc.get("p99_ms"),
        "goal_p99_ms": goal,
        "met": bool(q.get("p99_ms") is not None and q["p99_ms"] <= goal and len(seen) == len(sent)),
        "alarms_sent": len(sent),
        "notified": len(seen),
        "background_offered_per_s": offered["offered_per_s"] if offered else None,
        "telemetry_acked_during_level": acked_during,
        "telemetry_paused_s": sum(s.get("paused_s", 0) for s in stats.get("sessions", {}).values()),
        "max_unacked_held": transport.max_backlog,
        "storage_max_commit_ms": metrics["storage"]["max_commit_ms"],
    }


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    levels = []
    with tempfile.TemporaryDirectory(prefix="fb-latency-") as tmpdir:
        tmp = Path(tmpdir)
        cap = await capacity(tmp, args.devices, args.capacity_messages)
        progress(f"ingest capacity here: {cap['ingest_capacity_per_s']:,.0f} msg/s")
        plan = [(r, False) for r in args.rates]
        if args.overload > 0:
            plan.append((round(args.overload * cap["ingest_capacity_per_s"]), True))
        for rate, overload in plan:
            level = await one_level(tmp, rate, overload, args)
            progress(f"  {rate:,.0f} msg/s: p50 {level.get('p50_ms')} ms, p99 {level.get('p99_ms')} ms "
                     f"({level['notified']}/{level['alarms_sent']} notified; goal p99 ≤ {level['goal_p99_ms']:g} ms)")
            levels.append(level)
    emit({"bench": "alarm_latency", **cap, "levels": levels, "alarms_per_level": args.alarms, "gap_s": args.gap,
          "telemetry_devices": args.devices, "synchronous": "FULL", "machine": machine()}, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[1000.0])
    p.add_argument("--overload", type=float, default=3.0, help="the last level: this × the measured capacity (0: none)")
    p.add_argument("--alarms", type=int, default=200)
    p.add_argument("--gap", type=float, default=0.05, help="seconds between alarms")
    p.add_argument("--devices", type=int, default=1000, help="telemetry devices")
    p.add_argument("--publishers", type=int, default=2, help="background publisher processes")
    p.add_argument("--capacity-messages", type=int, default=200_000)
    p.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for the last notification")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
