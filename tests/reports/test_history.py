"""``CoreAPI.history`` (core/history.py) on a real SQLite file with the core's schema:
rolled-up rows and journal entries past the rollup cursor, merged as the rollup would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from firebus.core.alarms.schema import ALARM_MIGRATIONS
from firebus.core.history import read_history
from firebus.core.storage import Storage
from firebus.sdk.core_api import HistoryBucket

pytestmark = pytest.mark.anyio
T0 = 1_796_000_400  # a 5-minute and hour boundary


def _state(seq: int, point: str, ts: float, value: float, late: int = 0) -> tuple:
    return (seq, ts, "StateChanged", "telemetry", point, round(ts * 1000), value, None, late)


async def test_rollups_and_the_pending_tail_are_one_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "fb.db"
    async with Storage(path, synchronous="NORMAL").running(ALARM_MIGRATIONS):
        pass
    db = sqlite3.connect(path)
    with db:
        rows = [_state(1, "p", T0 + 10, 10.0), _state(2, "p", T0 + 20, 30.0), _state(3, "q", T0 + 10, 5.0),
                # after the cursor: one in the same bucket as rolled rows, one new bucket, one late
                _state(4, "p", T0 + 30, 50.0), _state(5, "p", T0 + 400, 7.0), _state(6, "p", T0 + 5, 1.0, late=1)]
        db.executemany("INSERT INTO journal (seq, ts, type, lane, subject, vts, value, fault, late)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("INSERT INTO readings_5m VALUES ('p', ?, 2, 20.0, 10.0, 30.0, 30.0, 2)", (T0,))
        db.execute("INSERT INTO readings_1h VALUES ('p', ?, 2, 20.0, 10.0, 30.0, 30.0, 2)", (T0,))
        db.execute("INSERT INTO readings_5m VALUES ('q', ?, 1, 5.0, 5.0, 5.0, 5.0, 3)", (T0,))
        db.execute("INSERT INTO journal_cursors (name, seq, ahead, version, updated_ts) VALUES ('rollup', 3, '[]', 1, 0)")
    db.close()
    async with Storage(path, synchronous="NORMAL").running(ALARM_MIGRATIONS) as storage:
        five = await read_history(storage, ["p", "q", "p"], T0, T0 + 3600, HistoryBucket.FIVE_MIN)
        assert five.through_seq == 6
        # bucket T0: rolled (10, 30) + pending 50 + late 1 → n 4, mean 22.75, min 1, max 50, last 50 (late never last)
        assert five.rows["p"] == [(T0, 4, 22.75, 1.0, 50.0, 50.0), (T0 + 300, 1, 7.0, 7.0, 7.0, 7.0)]
        assert five.rows["q"] == [(T0, 1, 5.0, 5.0, 5.0, 5.0)]
        hour = await read_history(storage, ["p"], T0, T0 + 3600, HistoryBucket.HOUR)
        assert hour.rows["p"] == [(T0, 5, (10 + 30 + 50 + 7 + 1) / 5, 1.0, 50.0, 7.0)]
        # the range is on bucket starts; points without rows are absent
        later = await read_history(storage, ["p", "nothing"], T0 + 300, T0 + 600, HistoryBucket.FIVE_MIN)
        assert later.rows == {"p": [(T0 + 300, 1, 7.0, 7.0, 7.0, 7.0)]}
        empty = await read_history(storage, [], T0, T0 + 3600, HistoryBucket.HOUR)
        assert empty.rows == {} and empty.through_seq == 6
