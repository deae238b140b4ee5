"""The centre's COPY text for a timestamp is the microsecond PostgreSQL's to_timestamp makes.

``ts`` is part of telemetry's key; a redelivered batch is converted by
``to_timestamp`` and the first copy by ``_iso``: any disagreement stores a
reading twice (seen once in CI before this test existed).
"""

from __future__ import annotations

import random

import psycopg
import pytest

from firebus.plugins.federation.centre import _iso


def test_iso_matches_to_timestamp_to_the_microsecond(pg_dsn: str) -> None:
    rng = random.Random(26875)
    values = [1_800_000_000 + i / 1000 for i in range(2000)]  # the tests' readings
    values += [rng.uniform(0, 4_000_000_000) for _ in range(5000)]
    values += [1_700_000_000.0000005, 1_700_000_000.9999996, 86_399.9999999, 0.0]
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT x, to_timestamp(x) = t::timestamptz FROM unnest(%s::float8[], %s::text[]) AS v(x, t)",
            (values, [_iso(v).decode() for v in values])).fetchall()
    wrong = [x for x, same in rows if not same]
    assert not wrong, f"{len(wrong)} of {len(values)} differ, e.g. {wrong[:3]}"


@pytest.mark.parametrize("ts, text", [(0.0, "1970-01-01 00:00:00.000000+00"),
                                      (1_800_000_000.5, "2027-01-15 08:00:00.500000+00")])
def test_iso_text(ts: float, text: str) -> None:
    assert _iso(ts).decode() == text
