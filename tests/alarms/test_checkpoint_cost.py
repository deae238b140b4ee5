"""Checkpoints stay linear: a change is handed to the writer once, not with every later flush.

Seen in bench/coldstart.py at 10,000 open alarms: after a restart every escalation
timer fired in one burst, each firing flushed, and each flush re-sent every
alarm row not yet confirmed on disk — O(n²) rows queued, 23 GB resident.
"""

import pytest

from firebus.core.alarms.store import SQL_ALARM
from firebus.sdk import AlarmCategory

from .harness import running
from .points import smoke

pytestmark = pytest.mark.anyio

N = 300


async def test_many_open_alarms_escalating_at_once_write_each_row_about_once(tmp_path):
    points = [smoke(f"s{i}", f"room{i}") for i in range(N)]
    async with running(tmp_path / "db.sqlite", points) as h:
        for i in range(N):
            await h.value_nowait(f"s{i}", True)
        await h.settle()
        assert len(h.alarm_events("new", category=AlarmCategory.FIRE)) == N

        rows = 0
        submit = h.core.storage.submit

        def counting(op):
            nonlocal rows
            rows += sum(len(r) for sql, r in op.parts if sql == SQL_ALARM)
            return submit(op)

        h.core.storage.submit = counting
        await h.advance(60)  # every fire alarm's first reminder is due in the same instant
        escalated = h.alarm_events("escalate", category=AlarmCategory.FIRE)
        assert len(escalated) == N
        # Each escalation changes its alarm once; a few rows more for ordering slack, never N².
        assert rows <= 2 * N, f"{rows} alarm rows submitted for {N} escalations"
