"""The journal's manual-acknowledgement consumer (``ack="manual"``), on a real bus and store.

What the uplink relies on: the saved cursor moves only over a contiguous acknowledged
prefix, unacknowledged entries come again after a restart, and with ``max_unacked``
reached telemetry waits while alarm-lane entries are still delivered.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import pytest

from firebus.core.alarms import ALARM_MIGRATIONS
from firebus.core.bus import EventBus
from firebus.core.journal import Journal, quiesce
from firebus.core.storage import Storage
from firebus.sdk import AlarmEvent, Event, Lane, StateChanged
from firebus.sdk.vocab import AlarmCategory, Severity

pytestmark = pytest.mark.anyio


class Site:
    def __init__(self, storage: Storage, bus: EventBus, tg: Any) -> None:
        self.storage, self.bus, self.tg = storage, bus, tg
        self.journal = Journal(storage, bus)
        self.journal.start_seq = storage.last_seq
        self.journal.start_task = lambda func, *a, name="": tg.start_soon(func, *a)
        self.got: list[Event] = []
        self.changed = anyio.Event()

    def handler(self, events: list[Event]) -> None:
        self.got.extend(events)
        self.changed.set()

    async def wait(self, predicate: Any, timeout: float = 5.0) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                self.changed = anyio.Event()
                if predicate():
                    return
                await self.changed.wait()

    def reading(self, n: int) -> None:
        self.bus.publish(StateChanged(point_id=f"p{n % 3}", device_id="d", point_key="k", point_class="temperature",
                                      ts=float(n), new_value=n))

    def fire(self, n: int) -> None:
        self.bus.publish(AlarmEvent(alarm_id=f"a{n}", transition="new", category=AlarmCategory.FIRE,
                                    severity=Severity.FIRE, rule="r", value=n))


@asynccontextmanager
async def site(path: Path) -> AsyncIterator[Site]:
    storage = Storage(path, synchronous="NORMAL")
    await storage.open(migrations=ALARM_MIGRATIONS)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(storage.run_writer)
            bus = EventBus()
            bus.attach(tg)
            s = Site(storage, bus, tg)
            try:
                yield s
            finally:
                await quiesce(bus, storage)
                for c in s.journal.consumers.values():
                    c.stop()
                    c.save()
                await storage.barrier()
                tg.cancel_scope.cancel()
    finally:
        await storage.close()


async def test_cursor_moves_over_the_acknowledged_prefix_and_restart_redelivers(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with site(db) as s:
        c = s.journal.subscribe("up", s.handler, [StateChanged, AlarmEvent], ack="manual", initial="earliest")
        for n in range(6):
            s.reading(n)
        await s.wait(lambda: len(s.got) == 6)
        seqs = [e.seq for e in s.got]
        c.ack(seqs[0])
        c.ack(seqs[1])
        c.ack(seqs[3])  # a gap at seqs[2]
        c.ack(seqs[3])  # repeated: ignored
        c.ack(10_000)  # unknown: ignored
        cursor, ahead = c.acked_position()
        assert cursor == seqs[1] and ahead == {seqs[3]}
        assert c.unacked == 3
        assert c.metrics()["acked_cursor"] == seqs[1]
    async with site(db) as s:
        s.journal.subscribe("up", s.handler, [StateChanged, AlarmEvent], ack="manual")
        await s.wait(lambda: len(s.got) == 3)
        assert [e.seq for e in s.got] == [seqs[2], seqs[4], seqs[5]]  # the unacknowledged, in order


async def test_alarms_pass_a_full_window_and_telemetry_waits(tmp_path: Path) -> None:
    async with site(tmp_path / "j.db") as s:
        c = s.journal.subscribe("up", s.handler, [StateChanged, AlarmEvent], ack="manual", max_unacked=3,
                                initial="earliest", checkpoint_s=30.0)
        await c.caught_up.wait()
        for n in range(10):
            s.reading(n)
        await s.wait(lambda: len(s.got) >= 3)
        await quiesce(s.bus, s.storage)
        assert c.unacked == 3 and len(s.got) == 3  # telemetry waits
        s.fire(1)
        await s.wait(lambda: any(isinstance(e.data, AlarmEvent) for e in s.got))  # the alarm does not
        assert c.unacked == 4
        # acknowledging makes room: the rest comes, in order, from the journal
        while len([e for e in s.got if isinstance(e.data, StateChanged)]) < 10:
            for e in list(s.got):
                c.ack(e.seq)
            await s.wait(lambda: c.unacked > 0 or len(s.got) >= 11)
        values = [e.data.new_value for e in s.got if isinstance(e.data, StateChanged)]
        assert values == list(range(10))
        assert len({e.seq for e in s.got}) == len(s.got)  # nothing twice


async def test_restart_backlog_delivers_alarm_entries_first(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    async with site(db) as s:
        s.journal.subscribe("up", s.handler, [StateChanged, AlarmEvent], ack="manual", initial="earliest")
        for n in range(5):
            s.reading(n)
        s.fire(7)
        for n in range(5, 8):
            s.reading(n)
        await s.wait(lambda: len(s.got) == 9)
    async with site(db) as s:
        s.journal.subscribe("up", s.handler, [StateChanged, AlarmEvent], ack="manual", max_unacked=2)
        await s.wait(lambda: len(s.got) >= 1)
        assert isinstance(s.got[0].data, AlarmEvent)  # the fire alarm before the queued readings
        assert s.got[0].lane is Lane.ALARM


async def test_manual_rejects_provisional() -> None:
    from firebus.core.journal.consumer import DurableConsumer

    class J:
        bus = None

    with pytest.raises(ValueError, match="manual"):
        DurableConsumer(J(), "x", lambda e: None, [StateChanged], ack="manual", provisional=True)  # type: ignore[arg-type]
