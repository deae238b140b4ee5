"""Receive ceiling of the MQTT transport from a pre-queued backlog, beside paho's, in one run.

    .venv/bin/python bench/mqtt_ceiling.py --messages 100000 --json

For each client: register a persistent session subscribed to ``bench/+/t`` (QoS 1),
go away, let ``bench/_fastpub.py`` queue ``--messages`` QoS 1 messages for it at
the broker (the offered rate is printed), then connect and time until every
message is received *and acknowledged one by one* (ack-after-handling, the shape
the core needs; our transport batches the PUBACKs of one loop iteration into one
write, paho sends one per ``client.ack``).  The handler only counts.

* ``firebus``: ``MqttTransport.subscribe_batch`` (routing, lanes and all), acks each
  message in the batch handler;
* ``firebus_legacy``: ``MqttTransport.subscribe`` (one awaited handler per message);
* ``paho_manual_ack``: paho-mqtt 2.x, ``manual_ack=True``, ``client.ack`` in ``on_message``.

Mosquitto runs on loopback with persistence on and no in-flight cap; publisher,
broker and subscriber share the machine's cores (pessimistic for everyone alike).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, CpuMeter, emit, machine, progress  # noqa: E402

from firebus.core.transports.mqtt import InboundMessage, MqttOptions, MqttTransport  # noqa: E402
from firebus.sdk.testing.mosquitto import Mosquitto  # noqa: E402

HERE = Path(__file__).resolve().parent
TOPIC = "bench/+/t"


class _Ctx:
    logger = logging.getLogger("bench.mqtt_ceiling")

    def link_changed(self, up: bool, reason: str = "") -> None:
        pass

    async def run_in_background(self, func: Any, *args: Any, name: str = "") -> None:
        asyncio.create_task(func(*args))


def fastpub(port: int, messages: int, devices: int, processes: int) -> dict[str, Any]:
    out = subprocess.run(
        [PYTHON, str(HERE / "_fastpub.py"), "--port", str(port), "--devices", str(devices),
         "--count", str(messages), "--processes", str(processes), "--client-id", "ceiling-pub"],
        capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"_fastpub failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def firebus_client(broker: Mosquitto, client_id: str, messages: int, devices: int, processes: int,
                         *, legacy: bool, receive_maximum: int) -> dict[str, Any]:
    def transport() -> MqttTransport:
        return MqttTransport("bench", MqttOptions(host=broker.host, port=broker.port, client_id=client_id,
                                                  receive_maximum=receive_maximum, keepalive=30), _Ctx())

    t = transport()
    t.subscribe_batch(TOPIC, lambda batch: [m.ack() for m in batch])
    await t.start()
    await t.wait_connected(10)
    await t.stop()
    offered = await asyncio.to_thread(fastpub, broker.port, messages, devices, processes)

    count = 0
    done = asyncio.Event()
    first: list[float] = []

    def on_batch(batch: list[InboundMessage]) -> None:
        nonlocal count
        if not first:
            first.append(time.perf_counter())
        for m in batch:
            m.ack()
        count += len(batch)
        if count >= messages:
            done.set()

    async def on_message(topic: str, payload: bytes, ack: Any) -> None:
        nonlocal count
        if not first:
            first.append(time.perf_counter())
        ack()
        count += 1
        if count >= messages:
            done.set()

    t = transport()
    if legacy:
        t.subscribe(TOPIC, on_message)
    else:
        t.subscribe_batch(TOPIC, on_batch)
    cpu = CpuMeter().start()
    started = time.perf_counter()
    await t.start()
    try:
        await asyncio.wait_for(done.wait(), 300)
    finally:
        elapsed = time.perf_counter() - started
        figures = cpu.stop()
        stats = t.stats()
        await t.stop()
    s = stats["sessions"]["telemetry"]  # type: ignore[index]
    return {
        "msgs_per_s": round(count / elapsed, 1),
        "received": count,
        "seconds": round(elapsed, 3),
        "first_message_after_s": round(first[0] - started, 3) if first else None,
        "max_unacked_held": s["max_unacked_held"],  # type: ignore[index]
        "paused_s": s["paused_s"],  # type: ignore[index]
        "offered_per_s": offered["offered_per_s"],
        **figures,
    }


def paho_client(broker: Mosquitto, client_id: str, messages: int, devices: int, processes: int) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    def make() -> mqtt.Client:
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        c.max_inflight_messages_set(1000)
        return c

    subscribed = threading.Event()
    c = make()
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_connect = lambda client, *a: client.subscribe(TOPIC, qos=1)
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("paho: no SUBACK")
    c.disconnect()
    c.loop_stop()
    offered = fastpub(broker.port, messages, devices, processes)

    count = 0
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        client.ack(msg.mid, msg.qos)
        count += 1
        if count >= messages:
            done.set()

    c = make()
    c.on_message = on_message
    cpu = CpuMeter().start()
    started = time.perf_counter()
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    ok = done.wait(600)
    elapsed = time.perf_counter() - started
    figures = cpu.stop()
    c.disconnect()
    c.loop_stop()
    if not ok:
        raise RuntimeError(f"paho received {count} of {messages}")
    return {"msgs_per_s": round(count / elapsed, 1), "received": count, "seconds": round(elapsed, 3),
            "offered_per_s": offered["offered_per_s"], **figures}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--processes", type=int, default=2, help="publisher processes filling the backlog")
    p.add_argument("--receive-maximum", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=1, help="repeat each client this many times (best and all)")
    p.add_argument("--skip-paho", action="store_true")
    p.add_argument("--json", action="store_true", help="one JSON line (else indented)")
    args = p.parse_args()
    result: dict[str, Any] = {"bench": "mqtt_ceiling", "machine": machine(), "messages": args.messages,
                              "devices": args.devices, "publisher_processes": args.processes}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "broker", extra_config=f"max_queued_messages {args.messages + 1000}\n")
        broker.start()
        try:
            runs: dict[str, list[dict[str, Any]]] = {"firebus": [], "firebus_legacy": [], "paho_manual_ack": []}
            for r in range(args.rounds):
                progress(f"round {r + 1}: firebus subscribe_batch")
                runs["firebus"].append(asyncio.run(firebus_client(
                    broker, f"ceiling-fb-{r}", args.messages, args.devices, args.processes, legacy=False,
                    receive_maximum=args.receive_maximum)))
                progress(f"  {runs['firebus'][-1]['msgs_per_s']:,.0f} msg/s; firebus subscribe (per message)")
                runs["firebus_legacy"].append(asyncio.run(firebus_client(
                    broker, f"ceiling-fbl-{r}", args.messages, args.devices, args.processes, legacy=True,
                    receive_maximum=args.receive_maximum)))
                progress(f"  {runs['firebus_legacy'][-1]['msgs_per_s']:,.0f} msg/s")
                if not args.skip_paho:
                    progress("  paho manual ack")
                    runs["paho_manual_ack"].append(paho_client(broker, f"ceiling-paho-{r}", args.messages,
                                                               args.devices, args.processes))
                    progress(f"  {runs['paho_manual_ack'][-1]['msgs_per_s']:,.0f} msg/s")
        finally:
            broker.stop()
    for name, rs in runs.items():
        if rs:
            best = max(rs, key=lambda x: x["msgs_per_s"])
            result[name] = {**best, "all_msgs_per_s": [x["msgs_per_s"] for x in rs]}
    if runs["paho_manual_ack"]:
        result["ratio_firebus_to_paho"] = round(result["firebus"]["msgs_per_s"] /
                                                result["paho_manual_ack"]["msgs_per_s"], 1)
    result["offered_per_s"] = max(x["offered_per_s"] for rs in runs.values() for x in rs)
    emit(result, one_line=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
