"""MQTT ingest with ack-after-commit: drain rate vs in-flight window and commit cycle.

    .venv/bin/python bench/transports_mqtt_window.py [messages] [commit_ms] [window ...]

A real Mosquitto (persistence on) holds ``messages`` QoS 1 messages for the
hub's session; then the hub connects and drains them.  Its handler collects
acks and a "commit" task acknowledges them in batches every ``commit_ms`` — the
shape of the core's storage writer.  Prints messages/s per window size, to
check the documented bound  throughput ≤ window ÷ commit cycle  (and how far the
broker honours the window: see docs/transports.md).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firebus.core.transports.mqtt import MqttOptions, MqttTransport
from firebus.sdk.testing.mosquitto import Mosquitto


class Ctx:
    logger = logging.getLogger("bench")

    def link_changed(self, up: bool, reason: str = "") -> None:
        pass

    async def run_in_background(self, func, *args, name=""):
        asyncio.create_task(func(*args))


def preload(broker: Mosquitto, n: int) -> None:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.connect(broker.host, broker.port)
    c.loop_start()
    infos = [c.publish("bench/x", b'{"seq": %d, "v": 12.5}' % i, qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()


async def run(broker: Mosquitto, n: int, window: int, commit_ms: float, client_id: str) -> tuple[float, int]:
    # register the session and its subscription, then go away while the backlog builds
    t = MqttTransport("b", MqttOptions(host=broker.host, port=broker.port, client_id=client_id,
                                       receive_maximum=window), Ctx())
    t.subscribe("bench/#", _noop)
    await t.start()
    await t.wait_connected()
    await asyncio.sleep(0.3)
    await t.stop()
    await asyncio.to_thread(preload, broker, n)

    pending: list = []
    done = asyncio.Event()
    count = 0

    async def handler(topic, payload, ack):
        pending.append(ack)

    async def committer():
        nonlocal count
        while count < n:
            await asyncio.sleep(commit_ms / 1000)
            batch, pending[:] = list(pending), []
            for ack in batch:
                ack()
            count += len(batch)
        done.set()

    t = MqttTransport("b", MqttOptions(host=broker.host, port=broker.port, client_id=client_id,
                                       receive_maximum=window), Ctx())
    t.subscribe("bench/#", handler)
    started = time.perf_counter()
    await t.start()
    task = asyncio.create_task(committer())
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    task.cancel()
    await t.stop()
    return n / elapsed, t.max_backlog


async def _noop(topic, payload, ack):
    ack()


async def main(n: int, commit_ms: float, windows: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker")
        broker.start()
        try:
            print(f"{n} messages, commit every {commit_ms} ms")
            print(f"{'window':>8} {'msg/s':>10} {'bound':>10} {'max held':>9}")
            for i, w in enumerate(windows):
                rate, held = await run(broker, n, w, commit_ms, f"bench-{i}")
                print(f"{w:>8} {rate:>10.0f} {w / (commit_ms / 1000):>10.0f} {held:>9}")
        finally:
            broker.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args[0]) if args else 20000
    commit_ms = float(args[1]) if len(args) > 1 else 20.0
    windows = [int(a) for a in args[2:]] or [20, 100, 1000, 2000]
    asyncio.run(main(n, commit_ms, windows))
