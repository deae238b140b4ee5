"""Load generator for the benchmarks, run as its own process (own GIL).

Telemetry mode: ``--devices N --rate R --seconds S`` publishes QoS 1 readings
round-robin over ``bench/d<i>/t`` (``--rate 0``: as fast as paho and the broker
take them, at most ``--window`` unconfirmed at once), then waits for every
PUBACK from the broker and prints one JSON line: sent, seconds, offered rate.

Alarm mode: ``--alarms K --alarm-gap G`` sends, every ``G`` s, a smoke alarm
(``bench/a<k>/s`` value true) from a different device, and prints one JSON line
per alarm with the wall-clock time just before ``publish`` (``sent``), which
the latency benchmark pairs with the notification's arrival.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

BASE_TS = 1_800_000_000.0


def client(port: int, client_id: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return c


def telemetry(args: argparse.Namespace) -> None:
    c = client(args.port, args.client_id)
    serials = [f"{args.prefix}{i}" for i in range(args.devices)]
    topics = [f"bench/{s}/t" for s in serials]
    seqs = [args.start_seq] * args.devices
    pending: deque = deque()
    sent = 0
    started = time.perf_counter()
    end = started + args.seconds
    tick = 0.01
    next_tick = started
    while True:
        now = time.perf_counter()
        if now >= end or (args.count and sent >= args.count):
            break
        if args.rate:
            # Paced in 10 ms ticks: the burst per tick is rate/100.
            due = int((now - started) * args.rate) - sent
            if due <= 0:
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.perf_counter()))
                continue
        else:
            due = 200
        for _ in range(due):
            i = sent % args.devices
            seq = seqs[i]
            seqs[i] += 1
            value = 20.0 + (seq % 40) / 10.0  # changes on every message: a state change each time
            payload = b'{"s":%d,"v":%.1f,"ts":%.3f}' % (seq, value, BASE_TS + seq / 1000.0)
            pending.append(c.publish(topics[i], payload, qos=1))
            sent += 1
        while len(pending) > args.window:
            pending.popleft().wait_for_publish(60)
    offered_s = time.perf_counter() - started
    for info in pending:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"sent": sent, "seconds": round(offered_s, 3), "offered_per_s": round(sent / offered_s, 1),
                      "last_seq": seqs}), flush=True)


def alarms(args: argparse.Namespace) -> None:
    c = client(args.port, args.client_id)
    time.sleep(0.2)
    for k in range(args.alarms):
        topic = f"bench/{args.prefix}{k}/s"
        now = time.time()
        payload = b'{"s":1,"v":true,"ts":%.6f}' % now
        sent = time.time()
        info = c.publish(topic, payload, qos=1)
        print(json.dumps({"device": f"{args.prefix}{k}", "sent": sent}), flush=True)
        info.wait_for_publish(30)
        time.sleep(args.alarm_gap)
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"done": args.alarms}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", default="bench-pub")
    p.add_argument("--prefix", default="d")
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--start-seq", type=int, default=0)
    p.add_argument("--window", type=int, default=2000)
    p.add_argument("--alarms", type=int, default=0)
    p.add_argument("--alarm-gap", type=float, default=0.2)
    args = p.parse_args()
    if args.alarms:
        alarms(args)
    else:
        telemetry(args)


if __name__ == "__main__":
    sys.exit(main())
