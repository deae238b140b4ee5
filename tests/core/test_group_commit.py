"""Group commit (``storage.group_commit_ms``): a trickle of telemetry shares one transaction;
an alarm-lane write never waits for it, nor does telemetry once a full batch is queued."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from firebus.core.storage import Op, Storage
from firebus.sdk.events import Lane
import anyio.lowlevel

pytestmark = pytest.mark.anyio

SQL = "INSERT INTO quarantine (ts, source, reason, payload) VALUES (?, ?, ?, ?)"
WINDOW = 5.0  # long, so a loaded machine cannot split the group; the waits asserted are far shorter


def op(i: int, lane: Lane = Lane.TELEMETRY, done: anyio.Event | None = None) -> Op:
    return Op([(SQL, [(float(i), "test", "group commit", b"x")])], lane=lane,
              on_durable=(lambda *_: done.set()) if done is not None else None)


async def test_telemetry_handed_over_apart_commits_together_and_an_alarm_does_not_wait(tmp_path: Path) -> None:
    async with Storage(tmp_path / "fb.db", group_commit_s=WINDOW).running() as storage:
        writer = storage._writer
        await storage.barrier()
        commits = writer.commits
        for i in range(5):
            storage.submit(op(i))
            await anyio.lowlevel.checkpoint()  # a hand-over of its own each time
        alarm_done = anyio.Event()
        t0 = time.monotonic()
        storage.submit(op(99, Lane.ALARM, alarm_done))
        with anyio.fail_after(WINDOW / 2):
            await alarm_done.wait()  # not held for the telemetry's window
        assert time.monotonic() - t0 < WINDOW / 2
        await storage.barrier()
        assert await storage.fetchone("SELECT count(*) FROM quarantine") == (6,)
        # the alarm ended the wait: its transaction and at most one more for the telemetry
        assert writer.commits - commits <= 3, writer.commits - commits


async def test_a_full_batch_of_telemetry_commits_without_waiting(tmp_path: Path) -> None:
    async with Storage(tmp_path / "fb.db", group_commit_s=WINDOW, batch_max=10).running() as storage:
        await storage.barrier()
        done = anyio.Event()
        t0 = time.monotonic()
        for i in range(9):
            storage.submit(op(i))
            await anyio.lowlevel.checkpoint()
        storage.submit(op(9, done=done))  # the tenth row: a full batch
        with anyio.fail_after(WINDOW / 2):
            await done.wait()
        assert time.monotonic() - t0 < WINDOW / 2


async def test_without_group_commit_a_lone_reading_commits_at_once(tmp_path: Path) -> None:
    async with Storage(tmp_path / "fb.db").running() as storage:  # group_commit_s = 0
        await storage.barrier()
        done = anyio.Event()
        storage.submit(op(1, done=done))
        with anyio.fail_after(WINDOW / 2):
            await done.wait()
