"""A consumer of rare entry types still moves its cursor while other entries flow.

notify reads alarm entries only; at full ingest every other entry is a reading.
Its cursor stayed at its last alarm: ``lag`` in ``/api/metrics`` grew with every
reading (a healthy notify looked 150,000 entries behind), and a restart read the
journal from that old position.  Now an idle consumer's cursor follows the
journal's newest delivered entry, and is saved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from firebus.sdk import AlarmEvent, Context, Event, StateChanged
from firebus.sdk.testing.waiting import eventually

from .test_journal_first_start import fire, journal_on

pytestmark = pytest.mark.anyio


def reading(n: int) -> Event:
    return Event(data=StateChanged(point_id="p1", device_id="d1", point_key="t", point_class="temperature",
                                   ts=float(n), old_value=n - 1, new_value=n), context=Context())


async def test_an_idle_consumer_follows_the_journal_and_saves_its_cursor(tmp_path: Path) -> None:
    async with journal_on(tmp_path / "j.db") as journal:
        got: list[Event] = []
        consumer = journal.subscribe("notify", got.extend, [AlarmEvent], checkpoint_s=0.05)
        await eventually(lambda: consumer.caught_up.is_set(), 10, "the consumer started")
        journal.bus.publish_event(fire(1))
        await eventually(lambda: len(got) == 1, 10, "the alarm handled")
        for n in range(1, 201):
            journal.bus.publish_event(reading(n))
        await journal.storage.barrier()
        newest = journal.last_seq
        await eventually(lambda: consumer.cursor == newest, 10, "the cursor moved past the readings")
        assert consumer.metrics()["lag"] == 0

        async def saved() -> bool:
            stored = await journal.cursor("notify")
            return stored is not None and stored[0] == newest

        await eventually(saved, 10, "the cursor saved")
        # An alarm after the readings is still delivered: the cursor did not skip ahead of it.
        journal.bus.publish_event(fire(2))
        await eventually(lambda: len(got) == 2, 10, "the second alarm handled")
        assert [e.data.alarm_id for e in got] == ["a1", "a2"]
