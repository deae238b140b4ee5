"""A consumer whose live queue overflows while its handler is busy misses nothing.

The overflow clears the live queue and the consumer reads the rest from the journal.
Its cursor must not move past the entries that were in that queue: when the handler
in hand returned, the cursor was worked out from the (now empty) queues and jumped to
the bus's newest entry, and the catch-up that followed started after everything dropped.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from firebus.sdk import Event, StateChanged
from firebus.sdk.testing.waiting import eventually

from .test_journal_first_start import journal_on
from .test_journal_idle_cursor import reading

pytestmark = pytest.mark.anyio


async def test_entries_dropped_from_an_overflowing_live_queue_are_read_from_the_journal(tmp_path: Path) -> None:
    async with journal_on(tmp_path / "j.db") as journal:
        got: list[int] = []
        busy = anyio.Event()
        go_on = anyio.Event()

        async def handler(events: list[Event]) -> None:
            got.extend(e.seq for e in events)
            if not busy.is_set():
                busy.set()
                await go_on.wait()  # a slow handler: the live queue fills behind it

        consumer = journal.subscribe("slow", handler, [StateChanged], maxsize=10, checkpoint_s=0.05)
        await eventually(lambda: consumer.caught_up.is_set(), 10, "the consumer started")
        journal.bus.publish_event(reading(1))
        await eventually(busy.is_set, 10, "the handler busy")
        for n in range(2, 102):
            journal.bus.publish_event(reading(n))
        await journal.storage.barrier()
        newest = journal.last_seq
        go_on.set()
        await eventually(lambda: len(set(got)) == 101, 10, f"every entry handled (got {len(set(got))})")
        assert len(got) == len(set(got)), "an entry was handled twice"
        await eventually(lambda: consumer.cursor == newest, 10, "the cursor at the newest entry")
