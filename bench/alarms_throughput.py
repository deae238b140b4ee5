"""How many readings per second the alarm engine keeps up with (real bus, real SQLite).

    .venv/bin/python bench/alarms_throughput.py [readings] [points] [rate]

Readings sweep every point across its thresholds so rules change state and raise
and clear alarms on every reading (the worst case: an alarm storm).  With no
rate, readings are published as fast as possible (throughput); with a rate
(readings/s), paced in 10 ms ticks, the latency from publishing a reading to its
NEW alarm event is reported (p50/p99).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from alarms.harness import running  # noqa: E402
from alarms.points import rc  # noqa: E402

from firebus.sdk import AlarmEvent  # noqa: E402
from firebus.sdk.clock import SystemClock  # noqa: E402
import anyio.lowlevel


async def main(readings: int, n_points: int, rate: float) -> None:
    points = [rc(f"rc{i}", f"em{i}") for i in range(n_points)]
    with tempfile.TemporaryDirectory() as tmp:
        async with running(Path(tmp) / "bench.sqlite", points, clock=SystemClock()) as h:
            latencies: list[float] = []
            sent: dict[str, float] = {}

            def on_alarm(event):
                started = sent.pop(event.data.point_id or "", None)
                if started is not None and event.data.transition == "new":
                    latencies.append(time.perf_counter() - started)

            h.bus.subscribe("bench", on_alarm, types=[AlarmEvent])
            values = [100.0, 250.0, 350.0, 250.0]  # idle → pre-alarm → alarm → back
            started = time.perf_counter()
            for i in range(readings):
                p = points[i % n_points]
                value = values[(i // n_points) % len(values)]
                if value == 350.0:
                    sent[p.point_id] = time.perf_counter()
                await h.value_nowait(p.point_id, value)
                if rate and i % max(1, int(rate / 100)) == 0:
                    await anyio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                elif i % 500 == 0:
                    await anyio.lowlevel.checkpoint()
            await h.settle()
            elapsed = time.perf_counter() - started
    print(f"{readings} readings over {n_points} points in {elapsed:.2f} s: {readings / elapsed:,.0f} readings/s")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"reading → NEW alarm latency: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms ({len(latencies)} alarms)")


if __name__ == "__main__":
    args = sys.argv[1:]
    anyio.run(
        main,
        int(args[0]) if len(args) > 0 else 20_000,
        int(args[1]) if len(args) > 1 else 200,
        float(args[2]) if len(args) > 2 else 0.0,
    )
