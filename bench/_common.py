"""Shared parts of the benchmark scripts: the machine, a telemetry push driver, site files, CPU meters.

Everything here is real: the scripts start a real Mosquitto, a real core and
real publisher processes.  The push driver is the smallest honest one (msgspec
typed decode of one JSON reading per message), so the figures measure the
core's path (transport → decode → registry → ingest → bus → rules → commit →
PUBACK), not a vendor payload mapping.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from firebus.sdk import DeviceReport, NoOptions, PointSpec, PushDriver, Reading, hookimpl

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mosq = ""
    try:
        from firebus.sdk.testing.mosquitto import find_mosquitto

        out = subprocess.run([find_mosquitto(), "-h"], capture_output=True, text=True, timeout=5)
        mosq = (out.stdout or out.stderr).splitlines()[0].strip()
    except Exception:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": mosq,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def emit(result: dict[str, Any], one_line: bool = True) -> None:
    """The figures on stdout: one JSON line (``--json``), or indented for people."""
    print(json.dumps(result, sort_keys=False) if one_line else json.dumps(result, indent=2), flush=True)


# -- CPU ----------------------------------------------------------------------------------------


class CpuMeter:
    """CPU used by this process (all threads) and by the whole machine between start and stop."""

    def start(self) -> "CpuMeter":
        self._wall = time.perf_counter()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self._proc = ru.ru_utime + ru.ru_stime
        self._sys = _proc_stat()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        ru = resource.getrusage(resource.RUSAGE_SELF)
        proc = ru.ru_utime + ru.ru_stime - self._proc
        busy0, total0 = self._sys
        busy1, total1 = _proc_stat()
        machine_pct = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
        return {
            # 100 % = one core fully busy (threads included: paho network thread, SQLite thread)
            "core_process_cpu_pct": round(100.0 * proc / wall, 1),
            # share of all cores (broker and publisher processes included)
            "machine_cpu_pct": round(machine_pct, 1),
        }


def process_cpu_s(pid: int, *, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by a process and, with ``children``, its
    descendants (living ones directly, reaped ones through their parent's counters)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            if not children:
                break
            total += (int(fields[13]) + int(fields[14])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


class ProcessesCpu:
    """CPU of named processes (with their children) between start and stop, 100 % = one core.

    The split says who had the machine: on 2 shared cores the load generator and the
    broker compete with the core, and the core's own rate follows its share."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        # this process's children (publishers, readers) are named apart, not counted in it
        self._own = os.getpid()

    def _now(self) -> dict[str, float]:
        return {name: process_cpu_s(pid, children=pid != self._own) for name, pid in self.pids.items()}

    def start(self) -> "ProcessesCpu":
        self._wall = time.perf_counter()
        self._t0 = self._now()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        return {name: round(100.0 * (t - self._t0[name]) / wall, 1) for name, t in self._now().items()}


def _proc_stat() -> tuple[int, int]:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return 0, 1
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- the benchmark push driver -------------------------------------------------------------------


class BenchPayload(msgspec.Struct):
    s: int  # sequence number per device (makes the timestamp unique)
    v: float | bool
    ts: float


class TelemetryDriver(PushDriver):
    """``bench/<serial>/t`` → a temperature reading; ``bench/<serial>/s`` → a smoke state."""

    type_key = "bench.telemetry"
    Options = NoOptions
    transports = ("mqtt",)
    _decoder = msgspec.json.Decoder(BenchPayload)

    def subscriptions(self) -> list[str]:
        return ["bench/+/t"]

    def alarm_subscriptions(self) -> list[str]:
        # Smoke states only: the transport gives them a session and window of their own.
        return ["bench/+/s"]

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        msg = self._decoder.decode(payload)
        _, serial, kind = topic.split("/")
        key = "t" if kind == "t" else "smoke"
        return [DeviceReport(identifiers={"serial": serial}, readings=[Reading(point_key=key, value=msg.v, ts=msg.ts)])]

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return [
            PointSpec(key="smoke", point_class="smoke", name="smoke")
            if r.point_key == "smoke"
            else PointSpec(key="t", point_class="temperature", unit="°C", name="cable temperature")
            for r in report.readings
        ]


class BenchPlugin:
    @hookimpl
    def firebus_register_drivers(self, core: Any) -> list[type]:
        return [TelemetryDriver]


def site_yaml(
    db: Path,
    mqtt_port: int | None,
    serials: list[str],
    *,
    synchronous: str = "FULL",
    receive_maximum: int | None = None,
    extra: str = "",
    client_id: str = "firebus-bench",
    storage: str = "",
) -> str:
    """``storage``: more keys of the storage section, e.g. ``"state_checkpoint_s: 60"``."""
    lines = [f"storage: {{path: '{db}', synchronous: {synchronous}{', ' + storage if storage else ''}}}"]
    if mqtt_port is not None:
        lines += [
            "transports:",
            "  - key: mqtt",
            "    type: mqtt",
            f"    options: {{port: {mqtt_port}, client_id: {client_id}"
            + (f", receive_maximum: {receive_maximum}" if receive_maximum else "") + "}",
        ]
    if serials:
        lines.append("devices:")
        lines += [
            f"  - {{key: {s}, driver: bench.telemetry, transport: mqtt, identifiers: {{serial: {s}}}}}"
            for s in serials
        ]
    return "\n".join(lines) + "\n" + extra


def start_publisher(port: int, *args: str) -> subprocess.Popen[str]:
    """bench/_publisher.py in its own process (its own GIL, its own core when there is one)."""
    return subprocess.Popen(
        [PYTHON, str(HERE / "_publisher.py"), "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def publisher_result(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"publisher failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def quantiles_ms(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    xs = sorted(values)

    def q(p: float) -> float:
        # nearest-rank: the value below which p of the samples fall
        idx = min(len(xs) - 1, max(0, int(round(p * len(xs) + 0.5)) - 1))
        return round(xs[idx] * 1000, 2)

    return {"n": len(xs), "p50_ms": q(0.50), "p99_ms": q(0.99), "p99_9_ms": q(0.999), "max_ms": round(xs[-1] * 1000, 2)}
