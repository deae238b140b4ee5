"""``CoreAPI.history``: rollups of the points' numeric state changes, in one snapshot.

The rollup tables (``readings_5m``, ``readings_1h``, core/retention.py) hold every
entry up to the ``rollup`` cursor; the entries after it (at most one housekeeping
pass, about a minute) are aggregated here the same way.  Both parts are one SELECT,
so SQLite reads them in one snapshot: the result counts every entry up to the
journal's last seq at that instant and none after (``History.through_seq``).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from firebus.sdk.core_api import History, HistoryBucket, HistoryRow

_TABLES = {HistoryBucket.FIVE_MIN: ("readings_5m", 300), HistoryBucket.HOUR: ("readings_1h", 3600)}

_SQL = """
WITH c AS (SELECT coalesce((SELECT seq FROM journal_cursors WHERE name = 'rollup'), 0) AS r,
                  coalesce((SELECT max(seq) FROM journal), 0) AS s),
ids(id) AS (SELECT value FROM json_each(?1)),
t AS (
  SELECT subject AS point_id, (vts / 1000 / {step}) * {step} AS bucket, count(*) AS n, avg(value) AS mean,
         min(value) AS lo, max(value) AS hi, max(CASE WHEN late = 0 THEN seq END) AS last_seq
  FROM journal
  WHERE seq > (SELECT r FROM c) AND seq <= (SELECT s FROM c) AND type = 'StateChanged'
    AND typeof(value) IN ('integer', 'real') AND subject IN (SELECT id FROM ids)
  GROUP BY subject, bucket
  HAVING bucket >= ?2 AND bucket < ?3
)
SELECT 0, point_id, bucket, n, mean, coalesce(min, mean), coalesce(max, mean),
       CASE WHEN typeof(last) IN ('integer', 'real') THEN last ELSE mean END, last_seq, (SELECT s FROM c)
FROM {table} WHERE point_id IN (SELECT id FROM ids) AND bucket >= ?2 AND bucket < ?3 AND mean IS NOT NULL
UNION ALL
SELECT 1, point_id, bucket, n, mean, lo, hi, (SELECT value FROM journal j WHERE j.seq = t.last_seq), last_seq,
       (SELECT s FROM c)
FROM t
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, (SELECT s FROM c)
"""


async def read_history(storage: Any, point_ids: Sequence[str], start: float, end: float,
                       bucket: HistoryBucket | str) -> History:
    table, step = _TABLES[HistoryBucket(bucket)]
    ids = list(dict.fromkeys(point_ids))
    rows = await storage.fetchall(_SQL.format(table=table, step=step), (json.dumps(ids), int(start), int(-(-end // 1))))
    through = 0
    out: dict[str, list[HistoryRow]] = {}
    tails: list[tuple[Any, ...]] = []
    for tag, pid, b, n, mean, lo, hi, last, _last_seq, s in rows:
        through = int(s)
        if tag == 0:
            out.setdefault(pid, []).append((b, n, mean, lo, hi, last))
        elif tag == 1:
            tails.append((pid, b, n, mean, lo, hi, last))
    if tails:
        _merge_tails(out, tails)
    return History(through, out)


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
