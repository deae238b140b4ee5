"""Telemetry rollups and retention.

Rollups follow the journal from a cursor of their own (``rollup``): each pass
aggregates the state changes committed since (count, mean, min, max, last per
5-minute and per hourly bucket) and merges them into ``readings_5m`` and
``readings_1h`` in the same transaction as the new cursor — so every reading is
counted once, a late one lands in the bucket of its own time, and a pass
interrupted by a crash is simply done again.  Aggregation runs inside SQLite
on a reader connection (a ``GROUP BY`` over a seq range), not row by row in
Python.

Raw telemetry (state changes on the telemetry lane) is deleted after
``raw_retention_days``, never before it is rolled up and never before every
active durable consumer has read it; 5-minute rows after
``aggregate_5m_retention_days``; hourly rows are kept.  Alarm-lane entries and
every other journal entry are never deleted (a trigger refuses it anyway).
Deletes run in chunks, each its own transaction, so alarms never wait behind
a purge.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from firebus.sdk.events import Lane

from .journal import SQL_CURSOR
from .storage import Op, Storage

log = logging.getLogger(__name__)

ROLLUP = "rollup"
CHUNK = 200_000  # journal entries per rollup transaction

_AGGREGATE = """
SELECT subject, (vts / 1000 / 300) * 300 AS bucket, count(*), sum(value), min(value), max(value),
       max(CASE WHEN late = 0 THEN seq END)
FROM journal
WHERE seq > ? AND seq <= ? AND type = 'StateChanged' AND typeof(value) IN ('integer', 'real')
GROUP BY subject, bucket
"""

_MERGE = """
INSERT INTO {table} (point_id, bucket, n, mean, min, max, last, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (point_id, bucket) DO UPDATE SET
  mean = ({table}.mean * {table}.n + excluded.mean * excluded.n) / ({table}.n + excluded.n),
  n = {table}.n + excluded.n,
  min = min({table}.min, excluded.min),
  max = max({table}.max, excluded.max),
  last = CASE WHEN coalesce(excluded.last_seq, -1) > coalesce({table}.last_seq, -1)
              THEN excluded.last ELSE {table}.last END,
  last_seq = max(coalesce({table}.last_seq, -1), coalesce(excluded.last_seq, -1))
"""
MERGE_5M = _MERGE.format(table="readings_5m")
MERGE_1H = _MERGE.format(table="readings_1h")


async def _commit(storage: Storage, parts: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    import asyncio

    done = asyncio.Event()
    storage.submit(Op(parts, None, done.set, Lane.TELEMETRY))
    await done.wait()


async def downsample(storage: Storage, *, now: float | None = None, lookback_s: float | None = None) -> int:
    """Roll up every state change committed since the last pass; returns how many were read.

    ``now`` and ``lookback_s`` are accepted for callers of the time-window API; the
    cursor makes them unnecessary (nothing is read twice, nothing skipped).
    """
    row = await storage.fetchone("SELECT seq FROM journal_cursors WHERE name = ?", (ROLLUP,))
    cursor = int(row[0]) if row else 0
    version_row = await storage.fetchone("SELECT version FROM journal_cursors WHERE name = ?", (ROLLUP,))
    version = int(version_row[0]) if version_row else 0
    top_row = await storage.fetchone("SELECT coalesce(max(seq), 0) FROM journal")
    top = int(top_row[0]) if top_row else 0
    read = 0
    while cursor < top:
        upto = min(top, cursor + CHUNK)
        groups = await storage.fetchall(_AGGREGATE, (cursor, upto))
        last_seqs = [g[6] for g in groups if g[6] is not None]
        lasts: dict[int, Any] = {}
        for i in range(0, len(last_seqs), 900):
            part = last_seqs[i:i + 900]
            lasts.update(await storage.fetchall(
                f"SELECT seq, value FROM journal WHERE seq IN ({', '.join('?' * len(part))})", part))
        five: list[tuple[Any, ...]] = []
        hours: dict[tuple[str, int], list[Any]] = {}
        for point_id, bucket, n, total, lo, hi, last_seq in groups:
            last = lasts.get(last_seq) if last_seq is not None else None
            five.append((point_id, bucket, n, total / n, lo, hi, last, last_seq))
            hour = hours.get((point_id, bucket - bucket % 3600))
            if hour is None:
                hours[(point_id, bucket - bucket % 3600)] = [n, total, lo, hi, last, last_seq]
            else:
                hour[0] += n
                hour[1] += total
                hour[2] = min(hour[2], lo)
                hour[3] = max(hour[3], hi)
                if last_seq is not None and (hour[5] is None or last_seq > hour[5]):
                    hour[4], hour[5] = last, last_seq
            read += n
        one_h = [(p, b, n, total / n, lo, hi, last, ls) for (p, b), (n, total, lo, hi, last, ls) in hours.items()]
        version += 1
        parts: list[tuple[str, list[tuple[Any, ...]]]] = []
        if five:
            parts += [(MERGE_5M, five), (MERGE_1H, one_h)]
        parts.append((SQL_CURSOR, [(ROLLUP, upto, "[]", version, time.time())]))
        await _commit(storage, parts)
        cursor = upto
    return read


async def _seq_before(storage: Storage, ts: float, lo: int, hi: int) -> int:
    """The largest seq ≤ ``hi`` whose entry was made before ``ts`` (seq order follows time)."""
    best = lo
    while lo <= hi:
        mid = (lo + hi) // 2
        row = await storage.fetchone("SELECT seq, ts FROM journal WHERE seq >= ? ORDER BY seq LIMIT 1", (mid,))
        if row is None or row[0] > hi:
            hi = mid - 1
            continue
        if row[1] < ts:
            best = row[0]
            lo = row[0] + 1
        else:
            hi = mid - 1
    return best


async def purge(
    storage: Storage, *, raw_retention_days: float, aggregate_5m_retention_days: float, now: float | None = None,
    consumer_horizon_days: float = 7.0,
) -> int:
    """Delete raw telemetry past retention (rolled up and read by every active consumer)."""
    now = time.time() if now is None else now
    cursors = await storage.fetchall("SELECT name, seq, updated_ts FROM journal_cursors")
    rolled = next((seq for name, seq, _ in cursors if name == ROLLUP), 0)
    # A consumer not heard from for a week (a plugin removed) must not keep history forever.
    active = [seq for name, seq, updated in cursors if name != ROLLUP and updated >= now - consumer_horizon_days * 86400]
    limit = min([rolled, *active])
    first = await storage.fetchone("SELECT min(seq) FROM journal")
    if not first or first[0] is None or limit <= 0:
        deleted = 0
    else:
        upto = await _seq_before(storage, now - raw_retention_days * 86400, int(first[0]), limit)
        deleted = 0
        start = int(first[0]) - 1
        while start < upto:
            end = min(upto, start + 20_000)
            await storage.execute(
                "DELETE FROM journal WHERE seq > ? AND seq <= ? AND type = 'StateChanged' AND lane = 'telemetry'",
                (start, end),
            )
            deleted += end - start
            start = end
    await storage.execute(
        "DELETE FROM readings_5m WHERE bucket < ?", (int(now - aggregate_5m_retention_days * 86400),)
    )
    return deleted
