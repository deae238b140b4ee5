"""Telemetry retention and downsampling.

Raw readings are rolled up into 5-minute and hourly aggregates (mean, min,
max, last, count) and then deleted after ``raw_retention_days``; 5-minute rows
after ``aggregate_5m_retention_days``; hourly rows are kept.  The event log is
never touched here (and a trigger refuses deletes on it anyway).

Each pass recomputes the buckets of the last two hours whole, so a late
reading (device clocks, redelivery after a crash) is folded in, and a pass is
idempotent: re-running it gives the same rows.
"""

from __future__ import annotations

import logging
import time

from .storage import Storage

log = logging.getLogger(__name__)

_ROLLUP = """
INSERT OR REPLACE INTO {table} (point_id, bucket, n, mean, min, max, last)
SELECT point_id, (ts / 1000 / {size}) * {size} AS bucket, count(*),
       avg(value), min(value), max(value),
       (SELECT r2.value FROM readings r2 WHERE r2.point_id = r.point_id
          AND r2.ts >= ((r.ts / 1000 / {size}) * {size}) * 1000
          AND r2.ts < ((r.ts / 1000 / {size}) * {size} + {size}) * 1000
        ORDER BY r2.ts DESC LIMIT 1)
FROM readings r
WHERE ts >= ? AND ts < ? AND typeof(value) IN ('integer', 'real')
GROUP BY point_id, bucket
"""


async def downsample(storage: Storage, *, now: float | None = None, lookback_s: float = 7200) -> None:
    """Roll raw readings from ``now - lookback_s`` up to the last closed buckets."""
    now = time.time() if now is None else now
    for table, size in (("readings_5m", 300), ("readings_1h", 3600)):
        start = (int(now - lookback_s) // size) * size
        end = (int(now) // size) * size  # only closed buckets
        if end <= start:
            continue
        await storage.execute(_ROLLUP.format(table=table, size=size), (start * 1000, end * 1000))


async def purge(
    storage: Storage, *, raw_retention_days: float, aggregate_5m_retention_days: float, now: float | None = None
) -> None:
    now = time.time() if now is None else now
    raw_cutoff = now - raw_retention_days * 86400
    # Never delete raw rows whose hour has not been rolled up yet.
    rolled = await storage.fetchone("SELECT max(bucket) FROM readings_1h")
    if rolled and rolled[0] is not None:
        raw_cutoff = min(raw_cutoff, rolled[0] + 3600)  # end of the last rolled-up hour
    else:
        raw_cutoff = min(raw_cutoff, now - 7200)
    await storage.execute("DELETE FROM readings WHERE ts < ?", (int(raw_cutoff * 1000),))
    await storage.execute(
        "DELETE FROM readings_5m WHERE bucket < ?", (int(now - aggregate_5m_retention_days * 86400),)
    )
