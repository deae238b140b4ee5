"""``CoreAPI.history``: rollups of the points' numeric state changes, as of one journal entry.

The rollup tables (``readings_5m``, ``readings_1h``, core/retention.py) hold every
entry up to the ``rollup`` cursor; the entries after it (at most one housekeeping
pass, about a minute) are aggregated here the same way and merged in.

Consistency without one long statement: the rollup rows are read per point (a
primary-key range each: rows come back as the result tuples, nothing is rebuilt in
Python), then one statement aggregates the journal tail and reports the rollup
cursor and the journal's last seq it saw.  A rollup pass commits its rows and its
cursor in one transaction, so if the cursor is the one seen before the per-point
reads, every read saw the same rolled-up state and the tail statement completes it
up to its own last seq (``History.through_seq``).  If a pass committed meanwhile,
the reads are done again (passes are a minute apart).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from firebus.sdk.core_api import History, HistoryBucket, HistoryRow

_TABLES = {HistoryBucket.FIVE_MIN: ("readings_5m", 300), HistoryBucket.HOUR: ("readings_1h", 3600)}
ATTEMPTS = 5

_ROLLED = """
SELECT bucket, n, mean, coalesce(min, mean), coalesce(max, mean),
       CASE WHEN typeof(last) IN ('integer', 'real') THEN last ELSE mean END
FROM {table} WHERE point_id = ? AND bucket >= ? AND bucket < ? AND mean IS NOT NULL ORDER BY bucket
"""

_CURSOR = "SELECT coalesce((SELECT seq FROM journal_cursors WHERE name = 'rollup'), 0)"

_TAIL = """
WITH c AS (SELECT coalesce((SELECT seq FROM journal_cursors WHERE name = 'rollup'), 0) AS r,
                  coalesce((SELECT max(seq) FROM journal), 0) AS s),
t AS (
  SELECT subject AS point_id, (vts / 1000 / {step}) * {step} AS bucket, count(*) AS n, avg(value) AS mean,
         min(value) AS lo, max(value) AS hi, max(CASE WHEN late = 0 THEN seq END) AS last_seq
  FROM journal
  WHERE seq > (SELECT r FROM c) AND seq <= (SELECT s FROM c) AND type = 'StateChanged'
    AND typeof(value) IN ('integer', 'real') AND subject IN (SELECT value FROM json_each(?1))
  GROUP BY subject, bucket
  HAVING bucket >= ?2 AND bucket < ?3
)
SELECT point_id, bucket, n, mean, lo, hi, (SELECT value FROM journal j WHERE j.seq = t.last_seq) FROM t
UNION ALL
SELECT NULL, r, s, NULL, NULL, NULL, NULL FROM c
"""


async def read_history(storage: Any, point_ids: Sequence[str], start: float, end: float,
                       bucket: HistoryBucket | str) -> History:
    table, step = _TABLES[HistoryBucket(bucket)]
    ids = list(dict.fromkeys(point_ids))
    lo, hi = int(start), int(-(-end // 1))
    rolled_sql, tail_sql = _ROLLED.format(table=table), _TAIL.format(step=step)
    for _ in range(ATTEMPTS):
        before = (await storage.fetchone(_CURSOR))[0]
        out: dict[str, list[HistoryRow]] = {}
        for pid in ids:
            rows = await storage.fetchall(rolled_sql, (pid, lo, hi))
            if rows:
                out[pid] = rows
        tail = await storage.fetchall(tail_sql, (json.dumps(ids), lo, hi))
        _, rolled, through, *_ = tail[-1]
        if rolled == before:
            break
    else:
        raise RuntimeError(f"history: the rollup cursor moved during {ATTEMPTS} reads in a row")
    if len(tail) > 1:
        _merge_tails(out, tail[:-1])
    return History(int(through), out)


def _merge_tails(out: dict[str, list[HistoryRow]], tails: list[tuple[Any, ...]]) -> None:
    """Merge the not-yet-rolled-up aggregates as core/retention.py's MERGE would (the tail is newer)."""
    index: dict[str, dict[int, int]] = {}
    for pid, b, n, mean, lo, hi, last in tails:
        series = out.setdefault(pid, [])
        at = index.get(pid)
        if at is None:
            at = index[pid] = {row[0]: i for i, row in enumerate(series)}
        i = at.get(b)
        if i is None:
            at[b] = len(series)
            series.append((b, n, mean, lo, hi, mean if last is None else last))
            continue
        _, on, omean, olo, ohi, olast = series[i]
        series[i] = (b, on + n, (omean * on + mean * n) / (on + n), min(olo, lo), max(ohi, hi),
                     olast if last is None else last)
    for pid in index:
        out[pid].sort(key=lambda row: row[0])
