"""GB/T 26875.3 link figures: fire alarm → confirmed by the centre, with background state traffic;
frames/s the centre listener decodes and confirms; codec decode/encode rates.

    .venv/bin/python bench/uplink.py --json [--duration 20] [--rate 50] [--gap 0.1] [--blast 20000]
    .venv/bin/python bench/uplink.py --json --core [--duration 20] [--telemetry 1000] [--gap 0.5]

Phase 1 (no journal yet): the UITD side is ``UitdClient`` in this process, the centre is a
``CentreServer`` in a child process (its own CPU), both on 127.0.0.1.  The UITD submits
``rate`` state uploads per second (component states and analog values) and a fire alarm every
``gap`` seconds; latency = submission → the centre's confirm arriving back (the outcome's
latency), so it includes the UITD's queue, both encoders and decoders, the centre's handler
and two loopback hops.  Then a raw client pipelines ``blast`` upload frames on one connection
and counts the confirms: the centre listener's decode-and-confirm ceiling on one core.

``--core`` (phase 2): the whole path in a real core — ``telemetry`` temperature readings per
second go through ingest into the journal (each an analog upload, type 3), a fire
``AlarmEvent`` is journalled every ``gap`` seconds, and the uplink (a manual-ack journal
consumer, ``max_unacked`` 1000) sends both to the child-process centre.  Latency = the
alarm's publish → the centre's confirm back at the uplink (journal commit, consumer,
translation, outbox, link, centre).  The telemetry the link cannot carry waits in the
journal; the figures say how much was confirmed and how much was still waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, emit, machine, progress, quantiles_ms  # noqa: E402

from firebus.plugins.gb26875 import codec  # noqa: E402
from firebus.plugins.gb26875.client import ClientConfig, Endpoint, UitdClient  # noqa: E402
from firebus.plugins.gb26875.framer import Framer  # noqa: E402
from firebus.plugins.gb26875.model import Frame, Header, TimeTag, address  # noqa: E402
from firebus.plugins.gb26875.outbox import Priority  # noqa: E402
from firebus.plugins.gb26875.session import Role, SessionConfig  # noqa: E402
from firebus.plugins.gb26875.simsite import SimSite  # noqa: E402
from firebus.plugins.gb26875.vectors import load_vectors  # noqa: E402

UITD, CENTRE = address(889), address(88888)


async def serve_centre() -> None:
    """Child process: a confirming centre; prints its port, runs until stdin closes."""
    from firebus.plugins.gb26875.server import CentreServer, ListenerConfig

    server = CentreServer(ListenerConfig(host="127.0.0.1", port=0, session=SessionConfig(
        role=Role.CENTRE, local_address=CENTRE)))
    await server.start()
    print(server.port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop()


async def latency(port: int, duration: float, rate: float, gap: float, window: int) -> dict[str, object]:
    site = SimSite(seed=1)
    client = UitdClient(ClientConfig(centres=(Endpoint("127.0.0.1", port),), session=SessionConfig(
        role=Role.UITD, local_address=UITD, peer_address=CENTRE, window=window, heartbeat=0)))
    run = asyncio.create_task(client.run())
    await asyncio.wait_for(client.connected.wait(), 10)
    fires, states = [], []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def background() -> None:
        n = 0
        while loop.time() - start < duration:
            n += 1
            states.append(client.submit(site.random_upload(), priority=Priority.STATE))
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))

    async def alarms() -> None:
        n = 0
        while loop.time() - start < duration:
            n += 1
            fires.append(client.submit(site.fire_alarm(n)))
            await asyncio.sleep(max(0.0, start + n * gap - loop.time()))

    await asyncio.gather(background(), alarms())
    fire_out = [await s.outcome() for s in fires]
    state_out = [await s.outcome() for s in states]
    client.stop()
    await run
    return {
        "fire": quantiles_ms([o.latency for o in fire_out if o.ok]),
        "state": quantiles_ms([o.latency for o in state_out if o.ok]),
        "not_confirmed": sum(not o.ok for o in fire_out + state_out),
        "state_rate_offered": rate,
        "fire_gap_s": gap,
        "window": window,
    }


async def blast(port: int, count: int) -> dict[str, object]:
    adu = codec.decode(load_vectors()[0].data).frame.adu  # A1: one component state, 78 bytes
    now = TimeTag.now()
    frames = b"".join(codec.encode(Frame(Header(serial=i & 0xFFFF, time=now, source=UITD, destination=CENTRE,
                                                command=2), adu)) for i in range(count))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = Framer()
    got = 0
    t0 = time.perf_counter()
    writer.write(frames)

    async def read() -> None:
        nonlocal got
        while got < count:
            chunk = await reader.read(65536)
            if not chunk:
                return
            got += sum(1 for f in framer.feed(chunk) if isinstance(f, bytes))

    await asyncio.gather(writer.drain(), asyncio.wait_for(read(), 120))
    elapsed = time.perf_counter() - t0
    writer.close()
    return {"frames": count, "confirmed": got, "seconds": round(elapsed, 3),
            "frames_per_s": round(got / elapsed)}


async def core_latency(port: int, duration: float, telemetry: float, gap: float) -> dict[str, object]:
    import tempfile

    import firebus.plugins.gb26875 as plugin
    from firebus.core.config import load_text
    from firebus.core.runtime import running_core
    from firebus.sdk import AlarmEvent, PointSpec, Reading
    from firebus.sdk.events import AlarmTransition
    from firebus.sdk.vocab import AlarmCategory, Severity

    tmp = Path(tempfile.mkdtemp(prefix="fb-uplink-"))
    site = f"""
storage: {{path: '{tmp / "b.db"}', synchronous: NORMAL}}
gb26875:
  uplink: {{address: 889, centre_address: 88888, centres: [{{host: 127.0.0.1, port: {port}}}], heartbeat: 0}}
"""
    async with running_core(load_text(site, "bench.yaml"), extra_plugins={"gb26875": plugin}, autoload=False) as core:
        up = plugin.uplink_for(core)
        await asyncio.wait_for(up.client.connected.wait(), 10)
        devices = []
        for i in range(20):
            d = await core.registry.resolve_device({"serial": f"T{i}"}, driver="leakage.bench", config_key=f"t{i}")
            await core.registry.ensure_points(d.id, [PointSpec(key="t", point_class="temperature", unit="°C")])
            devices.append(d)
        published: dict[int, float] = {}  # id(event) → monotonic publish time
        events: list[object] = []
        fire_lat: list[float] = []
        confirmed_telemetry = 0
        orig = up._answered

        def spy(sub: object, outcome: object) -> None:
            nonlocal confirmed_telemetry
            if getattr(sub, "priority", None) == Priority.FIRE:
                for e in events:
                    if getattr(e, "seq", 0) == sub.key:  # type: ignore[attr-defined]
                        fire_lat.append(time.monotonic() - published[id(e)])
                        break
            elif getattr(outcome, "ok", False):
                confirmed_telemetry += 1
            orig(sub, outcome)  # type: ignore[arg-type]

        up._answered = spy  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        start = loop.time()
        offered = 0

        async def background() -> None:
            nonlocal offered
            tick, n = 0.01, 0
            while loop.time() - start < duration:
                n += 1
                k = int(telemetry * tick)
                for j in range(k):
                    d = devices[(offered + j) % len(devices)]
                    await core.ingest.ingest(d, [Reading(point_key="t", value=30 + ((offered + j) % 97) / 10)])
                offered += k
                await asyncio.sleep(max(0.0, start + n * tick - loop.time()))

        async def alarms() -> None:
            n = 0
            while loop.time() - start < duration:
                n += 1
                e = core.bus.publish(AlarmEvent(alarm_id=f"bench-{n}", transition=AlarmTransition.NEW,
                                                category=AlarmCategory.FIRE, severity=Severity.FIRE, rule="bench",
                                                device_id=devices[n % len(devices)].id))
                published[id(e)] = time.monotonic()
                events.append(e)
                await asyncio.sleep(max(0.0, start + n * gap - loop.time()))

        await asyncio.gather(background(), alarms())
        elapsed = loop.time() - start
        deadline = time.monotonic() + 15
        while len(fire_lat) < len(events) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        metrics = up.metrics()
    return {
        "fire": quantiles_ms(fire_lat),
        "fire_ms_each": [round(x * 1000, 1) for x in fire_lat],
        "fire_sent": len(events),
        "telemetry_offered_per_s": round(offered / elapsed),
        "telemetry_confirmed_per_s": round(confirmed_telemetry / elapsed),
        "telemetry_waiting_at_end": metrics["unacked"],
        "fire_gap_s": gap,
        "budget_s": 10.0,
    }


def codec_rates(n: int = 20000) -> dict[str, int]:
    data = load_vectors()[0].data
    t0 = time.perf_counter()
    for _ in range(n):
        frame = codec.decode(data, codec.Mode.TOLERANT).frame
    t1 = time.perf_counter()
    for _ in range(n):
        codec.encode(frame, codec.Mode.TOLERANT)
    t2 = time.perf_counter()
    framer = Framer()
    stream = data * 1000
    for _ in range(n // 1000):
        framer.feed(stream)
    t3 = time.perf_counter()
    return {"decode_per_s": round(n / (t1 - t0)), "encode_per_s": round(n / (t2 - t1)),
            "framer_frames_per_s": round(n / (t3 - t2))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=50.0, help="background state uploads per second")
    p.add_argument("--gap", type=float, default=0.1, help="seconds between fire alarms")
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--blast", type=int, default=20000)
    p.add_argument("--json", action="store_true")
    p.add_argument("--core", action="store_true", help="phase 2: journal → uplink → centre inside a real core")
    p.add_argument("--telemetry", type=float, default=1000.0, help="--core: background readings per second")
    p.add_argument("--serve-centre", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_centre:
        asyncio.run(serve_centre())
        return 0
    child = subprocess.Popen([PYTHON, __file__, "--serve-centre"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        if args.core:
            progress(f"centre on port {port}; core path: {args.duration:g} s of {args.telemetry:g} readings/s + "
                     f"a fire alarm every {args.gap:g} s")
            lat = asyncio.run(core_latency(port, args.duration, args.telemetry, args.gap))
            progress(f"blasting {args.blast} frames (the centre listener's ceiling)")
            ceiling = asyncio.run(blast(port, args.blast))
            emit({"bench": "gb26875_uplink_core", "machine": machine(), "core_path": lat,
                  "centre_listener": ceiling}, one_line=args.json)
            return 0
        progress(f"centre on port {port}; {args.duration:g} s of {args.rate:g} state/s + a fire alarm every "
                 f"{args.gap:g} s")
        lat = asyncio.run(latency(port, args.duration, args.rate, args.gap, args.window))
        progress(f"blasting {args.blast} frames")
        ceiling = asyncio.run(blast(port, args.blast))
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(10)
    result = {"bench": "gb26875_uplink", "machine": machine(), "latency": lat, "centre_listener": ceiling,
              "codec": codec_rates()}
    emit(result, one_line=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
