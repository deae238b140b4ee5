"""Alarm latency: a smoke message leaving the publisher → its notification arriving at a webhook.

    .venv/bin/python bench/alarm_latency.py --json [--rates 1000 5000] [--alarms 300]

For each background rate a fresh Mosquitto and core (notify plugin with one
webhook channel) run; a telemetry publisher process offers ``rate`` msg/s of
temperature readings over 1000 devices, and a second publisher process sends
``alarms`` smoke alarms, each from another detector, ``--gap`` seconds apart.
Each alarm goes: QoS 1 publish → Mosquitto → MQTT transport → decode → ingest
→ bus → alarm engine (``two_detector`` single-detector fire alarm, committed
before it is announced) → notify (outbox row committed) → webhook POST → the
receiver process.  Latency = receiver arrival − publisher send (same machine,
same wall clock); it includes the loopback HTTP request, so it is an upper
bound of "leaving the notify plugin".  Alarms share the MQTT connection with
the telemetry: if the core cannot keep up with the background rate, alarms
queue behind telemetry in the broker and the figures show it.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchPlugin, PYTHON, HERE, emit, machine, progress, quantiles_ms, site_yaml, start_publisher  # noqa: E402

from firebus.core.runtime import running_core  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402


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


async def one_level(tmp: Path, rate: float, args: argparse.Namespace) -> dict:
    receiver = Receiver()
    try:
        with Mosquitto(tmp / f"broker-{int(rate)}", extra_config="max_queued_messages 0\n") as broker:
            telemetry = [f"d{i}" for i in range(args.devices)]
            detectors = [f"a{k}" for k in range(args.alarms)]
            site = site_yaml(tmp / f"fb-{int(rate)}.db", broker.port, telemetry + detectors,
                             extra=notify_section(f"http://127.0.0.1:{receiver.port}/hook"))
            async with running_core(site, extra_plugins={"bench": BenchPlugin()}) as core:
                await core.transports["mqtt"].wait_connected(20)
                from firebus.plugins import notify

                service = notify.service_for(core)
                assert service is not None, "notify plugin not running"
                with anyio.fail_after(30):
                    await service.wait_ready()
                by_id = {core.device_ids[k]: k for k in detectors}
                duration = args.alarms * args.gap + 4
                bg = None
                if rate:
                    bg = start_publisher(broker.port, "--devices", str(args.devices), "--rate", str(rate),
                                         "--seconds", str(duration), "--client-id", "bench-bg")
                    await anyio.sleep(2.0)  # background at its rate before the first alarm
                progress(f"background {rate:,.0f} msg/s; {args.alarms} alarms {args.gap} s apart")
                alarm_pub = start_publisher(broker.port, "--alarms", str(args.alarms), "--alarm-gap", str(args.gap),
                                            "--prefix", "a", "--client-id", "bench-alarms")
                out, err = await anyio.to_thread.run_sync(lambda: alarm_pub.communicate(timeout=duration + 120))
                sent = {}
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
                    await anyio.sleep(0.2)
                bg_result = None
                if bg is not None:
                    bg.terminate()
                    bg.wait(10)
                acked = core.transports["mqtt"].acked
                backlog = core.transports["mqtt"].max_backlog
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
    missing = sorted(set(sent) - seen)
    return {
        "background_msgs_per_s": rate,
        **quantiles_ms(latencies),
        "alarms_sent": len(sent),
        "notified": len(seen),
        "not_notified_within_settle": len(missing),
        "core_acked_msgs": acked,
        "max_unacked_held": backlog,
        "bg": bg_result,
    }


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    levels = []
    with tempfile.TemporaryDirectory(prefix="fb-latency-") as tmpdir:
        for rate in args.rates:
            level = await one_level(Path(tmpdir), rate, args)
            level.pop("bg", None)
            progress(f"  {rate:,.0f} msg/s: p50 {level.get('p50_ms')} ms, p99 {level.get('p99_ms')} ms, "
                     f"p99.9 {level.get('p99_9_ms')} ms ({level['notified']}/{level['alarms_sent']} notified)")
            levels.append(level)
    result = {"bench": "alarm_latency", "levels": levels, "alarms_per_level": args.alarms, "gap_s": args.gap,
              "telemetry_devices": args.devices, "synchronous": "FULL", "machine": machine()}
    emit(result, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", type=float, nargs="+", default=[1000.0, 5000.0])
    p.add_argument("--alarms", type=int, default=300)
    p.add_argument("--gap", type=float, default=0.05, help="seconds between alarms")
    p.add_argument("--devices", type=int, default=1000, help="telemetry devices")
    p.add_argument("--settle", type=float, default=120.0, help="max seconds to wait for the last notification")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    anyio.run(main, parse())
