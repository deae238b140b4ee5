"""A consumer's first start commits its starting position before it reads anything.

Without that, a crash before the first checkpoint left no cursor; the next start
chose its position again ("start": the journal's end then) and skipped what had
been committed in between, unhandled — an alarm notify never sent (seen as a
flaky tests/notify/test_outbox.py replay test).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import anyio
import pytest

from firebus.core.alarms import ALARM_MIGRATIONS
from firebus.core.bus import EventBus
from firebus.core.journal import Journal
from firebus.core.storage import Storage
from firebus.sdk import AlarmEvent, Context, Event
from firebus.sdk.testing.waiting import eventually
from firebus.sdk.vocab import AlarmCategory, Severity

pytestmark = pytest.mark.anyio


def fire(n: int) -> Event:
    return Event(data=AlarmEvent(alarm_id=f"a{n}", transition="new", category=AlarmCategory.FIRE,
                                 severity=Severity.FIRE, rule="r", value=n), context=Context(), time_fired=float(n))


@asynccontextmanager
async def journal_on(db: Path) -> AsyncIterator[Journal]:
    """A real store and bus with a journal; leaving cancels everything — no clean save."""
    storage = Storage(db, synchronous="NORMAL")
    await storage.open(migrations=ALARM_MIGRATIONS)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(storage.run_writer)
            bus = EventBus()
            bus.attach(tg)
            journal = Journal(storage, bus)
            journal.start_seq = storage.last_seq  # "start" would begin after what is stored now
            journal.start_task = lambda func, *a, name="": tg.start_soon(func, *a)
            yield journal
            tg.cancel_scope.cancel()
    finally:
        await storage.close()


async def test_entries_committed_after_a_first_start_crash_are_delivered_at_the_next(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with journal_on(db) as journal:  # a first start, then a crash
        consumer = journal.subscribe("notify", lambda events: None, [AlarmEvent])
        await eventually(lambda: consumer.caught_up.is_set(), 10, "the consumer started")
        assert await journal.cursor("notify") is not None  # committed, not merely queued
    # Committed while the consumer was not running (the process died before it handled them).
    async with Storage(db, synchronous="NORMAL").running(ALARM_MIGRATIONS) as storage:
        storage.append([fire(1), fire(2)])
        await storage.barrier()
    got: list[Event] = []
    async with journal_on(db) as journal:
        journal.subscribe("notify", got.extend, [AlarmEvent])
        await eventually(lambda: len(got) == 2, 10, "both entries delivered")
        assert [e.data.alarm_id for e in got] == ["a1", "a2"]
