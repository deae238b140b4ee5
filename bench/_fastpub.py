"""A QoS 1 load generator that is not the limit: a minimal asyncio MQTT publisher.

    .venv/bin/python bench/_fastpub.py --port 1883 --devices 1000 --count 100000 --processes 2
    .venv/bin/python bench/_fastpub.py --port 1883 --devices 1000 --rate 30000 --seconds 20

No client library: each PUBLISH frame is the pre-encoded topic of its device plus a
formatted payload, written many frames per ``write``; the broker's PUBACKs are
only counted.  At most ``--window`` messages are unconfirmed (MQTT 3.1.1, so the
broker's ``max_inflight_messages`` does not apply to what we send).  Several
processes (``--processes``) each own a slice of the devices (device i goes to
process i mod P) and a client id of their own.

Payload: the JSON the bench drivers decode (``bench/_common.py`` ``BenchPayload``):
``{"s": <seq per device>, "v": <value>, "ts": <BASE_TS + seq/1000>}`` on
``--topic`` (default ``bench/{serial}/t``, serial = ``<prefix><i>``).  Every
message changes its device's value unless it is one of the ``--repeats`` share
(0..1), which repeat the previous value (a new timestamp, not a state change).

Prints one JSON line: sent, acked, seconds, offered_per_s (sent ÷ time to the
last write), acked_per_s, processes, last_seq (next seq per device, when
``--last-seq``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_TS = 1_800_000_000.0


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, d = divmod(n, 128)
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


class FastPublisher(asyncio.Protocol):
    def __init__(self, args: argparse.Namespace, devices: list[int]) -> None:
        self.args = args
        self.devices = devices
        self.serials = [f"{args.prefix}{i}" for i in devices]
        self.topics = [self._topic_field(args.topic.format(serial=s)) for s in self.serials]
        self.seqs = [args.start_seq] * len(devices)
        self.values = [20.0] * len(devices)
        self.rng = random.Random(args.seed + (devices[0] if devices else 0))
        self.sent = 0
        self.acked = 0
        self.pid = 0
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.connack = asyncio.get_running_loop().create_future()
        self.room = asyncio.Event()
        self.done = asyncio.Event()
        self.lost = asyncio.get_running_loop().create_future()

    @staticmethod
    def _topic_field(topic: str) -> bytes:
        b = topic.encode()
        return len(b).to_bytes(2, "big") + b

    # -- protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        self.room.set()
        self.done.set()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        i = 0
        n = len(buf)
        acks = 0
        while n - i >= 2:
            first, length = buf[i], buf[i + 1]
            if length >= 0x80:
                raise RuntimeError("unexpected long packet from the broker")
            if n - i < 2 + length:
                break
            if first == 0x40:
                acks += 1
            elif first == 0x20 and not self.connack.done():
                self.connack.set_result(buf[i + 3])
            i += 2 + length
        self.buf = buf[i:]
        if acks:
            self.acked += acks
            if self.sent - self.acked < self.args.window:
                self.room.set()
            if self.finished and self.acked >= self.sent:
                self.done.set()

    finished = False

    # -- frames
    def frames(self, k: int) -> bytes:
        out = []
        topics, seqs, values = self.topics, self.seqs, self.values
        nd = len(topics)
        repeats = self.args.repeats
        rnd = self.rng.random
        for _ in range(k):
            j = self.sent % nd
            seq = seqs[j]
            seqs[j] = seq + 1
            if not repeats or rnd() >= repeats:
                values[j] = 20.0 + (seq % 40) / 10.0  # differs from the device's previous value
            payload = b'{"s":%d,"v":%.2f,"ts":%.3f}' % (seq, values[j], BASE_TS + seq / 1000.0)
            self.pid = self.pid % 65535 + 1
            body_len = len(topics[j]) + 2 + len(payload)
            out.append(b"\x32" + _varint(body_len) + topics[j] + self.pid.to_bytes(2, "big") + payload)
            self.sent += 1
        return b"".join(out)


async def run_one(args: argparse.Namespace, devices: list[int], client_id: str) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: FastPublisher(args, devices), args.host, args.port)
    cid = client_id.encode()
    # CONNECT 3.1.1, clean session, keepalive 60
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    assert proto.transport is not None
    proto.transport.write(b"\x10" + _varint(len(body)) + body)
    rc = await asyncio.wait_for(proto.connack, 10)
    if rc:
        raise RuntimeError(f"broker refused the publisher: return code {rc}")
    window = args.window
    chunk = 200
    started = time.perf_counter()
    end = started + args.seconds if args.seconds else float("inf")
    limit = args.count or 0
    rate = args.rate
    while True:
        now = time.perf_counter()
        if now >= end or (limit and proto.sent >= limit) or proto.lost.done():
            break
        room = window - (proto.sent - proto.acked)
        if room <= 0:
            proto.room.clear()
            await proto.room.wait()
            continue
        k = min(room, chunk)
        if limit:
            k = min(k, limit - proto.sent)
        if rate:
            due = int((now - started) * rate) - proto.sent
            if due <= 0:
                await asyncio.sleep(0.002)
                continue
            k = min(k, due)
        proto.transport.write(proto.frames(k))
        await asyncio.sleep(0)  # let the loop read PUBACKs and drain the socket
    offered_s = time.perf_counter() - started
    proto.finished = True
    if proto.acked < proto.sent:
        proto.done.clear()
        try:
            await asyncio.wait_for(proto.done.wait(), args.ack_timeout)
        except asyncio.TimeoutError:
            pass
    acked_s = time.perf_counter() - started
    proto.transport.write(b"\xe0\x00")
    proto.transport.close()
    result: dict[str, object] = {
        "sent": proto.sent, "acked": proto.acked, "seconds": round(offered_s, 3),
        "offered_per_s": round(proto.sent / offered_s, 1) if offered_s else 0.0,
        "acked_per_s": round(proto.acked / acked_s, 1) if acked_s else 0.0,
    }
    if args.last_seq:
        result["last_seq"] = dict(zip(proto.serials, proto.seqs))
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--client-id", default="bench-fastpub")
    p.add_argument("--prefix", default="d")
    p.add_argument("--topic", default="bench/{serial}/t", help="topic template; {serial} = <prefix><i>")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=0.0, help="msg/s for all processes together (0: unlimited)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: only --count)")
    p.add_argument("--count", type=int, default=0, help="messages for all processes together (0: only --seconds)")
    p.add_argument("--window", type=int, default=5000, help="unconfirmed messages per process")
    p.add_argument("--repeats", type=float, default=0.0, help="share 0..1 of messages that repeat the value")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--start-seq", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ack-timeout", type=float, default=120.0)
    p.add_argument("--last-seq", action="store_true", help="print the next seq of every device")
    p.add_argument("--worker", type=int, default=-1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.seconds and not args.count:
        p.error("give --seconds or --count")
    if not 0.0 <= args.repeats <= 1.0:
        p.error("--repeats is a share between 0 and 1")
    if args.processes < 1 or args.devices < args.processes:
        p.error("need 1 ≤ --processes ≤ --devices")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    P = args.processes
    if args.worker >= 0 or P == 1:
        k = max(0, args.worker)
        devices = list(range(k, args.devices, P))
        result = asyncio.run(run_one(args, devices, f"{args.client_id}-{k}" if P > 1 else args.client_id))
        print(json.dumps(result), flush=True)
        return 0
    raw = list(argv if argv is not None else sys.argv[1:])
    procs = []
    for k in range(P):
        extra = ["--worker", str(k)]
        if args.count:
            share = args.count // P + (1 if k < args.count % P else 0)
            extra += ["--count", str(share)]
        if args.rate:
            extra += ["--rate", str(args.rate / P)]
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *raw, *extra],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    parts = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            print(err, file=sys.stderr)
            return proc.returncode
        parts.append(json.loads(out.strip().splitlines()[-1]))
    seconds = max(float(x["seconds"]) for x in parts)
    sent = sum(int(x["sent"]) for x in parts)
    acked = sum(int(x["acked"]) for x in parts)
    result: dict[str, object] = {
        "sent": sent, "acked": acked, "seconds": seconds,
        "offered_per_s": round(sent / seconds, 1) if seconds else 0.0,
        "acked_per_s": round(sum(float(x["acked_per_s"]) for x in parts), 1),
        "processes": P,
    }
    if args.last_seq:
        merged: dict[str, int] = {}
        for x in parts:
            merged.update(x["last_seq"])  # type: ignore[arg-type]
        result["last_seq"] = merged
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
