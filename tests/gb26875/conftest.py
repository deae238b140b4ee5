"""GB/T 26875.3 plugin fixtures: the reference vectors, frame builders, simulator processes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from firebus.plugins.gb26875.vectors import Vector, load_vectors

ROOT = Path(__file__).resolve().parents[2]
FIREBUS = str(Path(sys.executable).with_name("firebus"))
SHARED_VECTORS = ROOT.parent / "shared" / "reference" / "gb26875-3-vectors.txt"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Vector]:
    return {v.name: v for v in load_vectors()}


def run_cli(*args: str, stdin: str | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``firebus …`` as a user runs it."""
    return subprocess.run([FIREBUS, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


class SimProcess:
    """A ``firebus sim …`` process printing JSON lines; a thread collects them so tests
    can wait for an event with a deadline (never sleep to synchronise)."""

    def __init__(self, *args: str, stdin: bool = False) -> None:
        self.args = args
        self.proc = subprocess.Popen([FIREBUS, "sim", *args], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[str] = []
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                self.other.append(line)
                continue
            with self._cond:
                self.events.append(record)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0,
                 count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if predicate(e)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"sim {' '.join(self.args)}: {count} matching event(s) not seen within {timeout} s; "
                        f"events: {self.events[-15:]}; stderr: {self.stderr[-2000:]}")
                self._cond.wait(min(left, 0.2))

    def event(self, kind: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        return self.wait_for(lambda e: e.get("event") == kind and all(e.get(k) == v for k, v in match.items()),
                             timeout)[0]

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)


@pytest.fixture
def sims() -> Any:
    started: list[SimProcess] = []

    def start(*args: str, stdin: bool = False) -> SimProcess:
        p = SimProcess(*args, stdin=stdin)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
