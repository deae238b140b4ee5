"""A site (a real firebus core with the federation plugin) and a centre, for the tests."""

from __future__ import annotations

import asyncio
import collections
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import psycopg

from firebus.plugins import federation
from firebus.plugins.federation.centre import Centre, CentreConfig
from firebus.sdk import AlarmCategory, AlarmEvent, AlarmTransition, Lane, Severity, StateChanged
from firebus.sdk.testing.harness import site_yaml, start_core
from firebus.sdk.testing.waiting import eventually


def federated_site(db: Path, site_id: str, nats_url: str, extra: str = "") -> str:
    return site_yaml(db, extra=(
        f"federation:\n  site_id: {site_id}\n  servers: [{nats_url}]\n  ack_timeout_s: 1.0\n{extra}"))


@asynccontextmanager
async def running_site(tmp: Path, site_id: str, nats_url: str) -> AsyncIterator[Any]:
    async with start_core(federated_site(tmp / f"{site_id}.db", site_id, nats_url),
                          plugins={"federation": federation}) as core:
        yield core


@asynccontextmanager
async def running_centre(pg: str, nats_url: str, **options: Any) -> AsyncIterator[Centre]:
    centre = Centre(CentreConfig(pg=pg, nats=[nats_url], fetch_timeout_s=0.5, **options))
    task = asyncio.create_task(centre.run())
    try:
        await asyncio.wait_for(centre.ready.wait(), 20)
        yield centre
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


_T0 = time.time()


def reading(i: int, point: str = "p1", value: float | None = None) -> StateChanged:
    """A reading with its own millisecond (the site keys readings by point and ms)."""
    return StateChanged(point_id=point, device_id="d1", point_key="temp", point_class="temperature",
                        ts=_T0 + i * 0.01, new_value=float(i) if value is None else value)


def fire(alarm_id: str = "A1") -> AlarmEvent:
    return AlarmEvent(alarm_id=alarm_id, transition=AlarmTransition.NEW, category=AlarmCategory.FIRE,
                      severity=Severity.FIRE,
                      rule="smoke", device_id="d9", point_id="smoke1", message="Fire", message_zh="火警")


async def query(pg: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(pg) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def centre_seqs(pg: str, site_id: str) -> list[int]:
    rows = await query(pg, "SELECT seq FROM journal WHERE site_id = %s UNION ALL "
                           "SELECT seq FROM telemetry WHERE site_id = %s ORDER BY 1", site_id, site_id)
    return [r[0] for r in rows]


async def replicated(core: Any, pg: str, site_id: str, last: Any, timeout: float = 20.0, what: str = "") -> None:
    """Wait until every entry of the site's journal is at the centre, once ``last`` has committed;
    on a timeout say what is missing and what the publisher saw."""
    async def same() -> bool:
        if last is not None and not last.seq:
            return False
        seqs = await site_seqs(core)
        return bool(seqs) and seqs == await centre_seqs(pg, site_id)

    try:
        await eventually(same, timeout=timeout, what=what)
    except AssertionError:
        at_centre = await centre_seqs(pg, site_id)
        here, there = set(await site_seqs(core)), set(at_centre)
        missing, extra = sorted(here - there), sorted(there - here)
        twice = sorted(s for s, n in collections.Counter(at_centre).items() if n > 1)
        pub = federation.publisher_for(core)
        raise AssertionError(
            f"{what}: {len(missing)} missing at the centre (first {missing[:5]}, last {missing[-3:]}), "
            f"{len(extra)} not at the site, {len(twice)} stored twice (first {twice[:5]}); "
            f"last entry's seq {getattr(last, 'seq', None)}; publisher {pub.metrics() if pub else None}; "
            f"consumer {core.journal.metrics()['consumers'].get('federation')}") from None


async def site_seqs(core: Any) -> list[int]:
    rows = await core.storage.fetchall("SELECT seq FROM journal ORDER BY seq")
    return [r[0] for r in rows]


__all__ = ["Lane", "centre_seqs", "eventually", "fire", "query", "reading", "running_centre", "running_site",
           "site_seqs"]
