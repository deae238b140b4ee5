"""The running core: ingest, state_reported, durability, identity across restarts, retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from firebus.core.config import load_text
from firebus.core.retention import downsample, purge
from firebus.core.runtime import running_core
from firebus.core.storage import SQL_QUARANTINE, SQL_READING, Storage
from firebus.sdk import (
    Availability,
    AvailabilityChanged,
    Event,
    DeviceInfo,
    NotReady,
    PointSpec,
    PolledDriver,
    Reading,
    StateChanged,
    StateReported,
    hookimpl,
)
from firebus.sdk.testing.waiting import eventually as wait_until

pytestmark = pytest.mark.anyio


class Opts(msgspec.Struct, forbid_unknown_fields=True):
    serial: str
    poll_interval: float = 0.05


class Script:
    """What the fake device answers; tests change it while the core runs."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {"rc": 0}
        self.reachable = True
        self.poll_delay = 0.0
        self.polls = 0


SCRIPTS: dict[str, Script] = {}


class FakeDetector(PolledDriver):
    """A pure-logic stand-in: the core's poll loop is what is under test here."""

    type_key = "test.detector"
    Options = Opts
    transports = ()

    async def setup(self) -> DeviceInfo:
        if not SCRIPTS[self.options.serial].reachable:
            raise NotReady("no answer")
        return DeviceInfo(identifiers={"serial": self.options.serial}, model="T-1", name="test detector")

    def points(self) -> list[PointSpec]:
        return [PointSpec(key="rc", point_class="residual_current", unit="mA")]

    async def poll(self) -> list[Reading]:
        script = SCRIPTS[self.options.serial]
        script.polls += 1
        if script.poll_delay:
            await anyio.sleep(script.poll_delay)
        if not script.reachable:
            raise TimeoutError("no response from unit 1")
        return [Reading(point_key=k, value=v) for k, v in script.values.items()]


class TestPlugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [FakeDetector]


def site(db: Path, serials: list[str]) -> str:
    devices = "".join(
        f"  - key: det-{s}\n    driver: test.detector\n    location: room\n    options: {{serial: {s}}}\n" for s in serials
    )
    return (
        f"storage: {{path: {db}}}\n"
        "units:\n  - key: u\n    buildings: [{key: b, floors: [{key: f, locations: [{key: room, name: Room 101}]}]}]\n"
        f"devices:\n{devices}"
    )


def start(db: Path, serials: list[str]):
    for s in serials:
        SCRIPTS.setdefault(s, Script())
    return running_core(load_text(site(db, serials), "site.yaml"), extra_plugins={"test": TestPlugin()}, autoload=False)


@pytest.fixture(autouse=True)
def fresh_scripts():
    SCRIPTS.clear()
    yield
    SCRIPTS.clear()


async def test_unchanged_readings_only_move_last_reported(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    async with start(db, ["S1"]) as core:
        changed: list[Any] = []
        reported: list[Any] = []
        core.bus.subscribe("changed", lambda e: changed.append(e.data.new_value), types=[StateChanged])
        core.bus.subscribe("reported", lambda e: reported.append(e.data.value), types=[StateReported])
        await wait_until(lambda: len(reported) >= 5)
        SCRIPTS["S1"].values["rc"] = 42
        await wait_until(lambda: 42 in changed)
        await core.storage.barrier()
        rows = await core.storage.fetchall("SELECT value FROM readings ORDER BY ts")
        assert [r[0] for r in rows] == [0, 42]  # one row per change, not per poll
        assert changed == [0, 42]
        point_id = core.registry.points_of_device(core.device_ids["det-S1"])[0].point_id
        state = await core.storage.fetchone("SELECT last_changed, last_reported FROM point_state WHERE point_id = ?", (point_id,))
        assert state[1] >= state[0]


async def test_durable_callback_fires_only_after_commit(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    seen: list[int] = []

    def on_durable() -> None:
        with sqlite3.connect(db) as other:  # another connection sees it: it is committed
            seen.append(other.execute("SELECT count(*) FROM quarantine").fetchone()[0])

    async with Storage(db).running() as storage:
        await storage.put(SQL_QUARANTINE, [(1.0, "t", "r", b"x")] * 3, on_durable)
        await storage.barrier()
    assert seen == [3]


async def test_event_log_is_append_only(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    async with start(db, ["S1"]) as core:
        await wait_until(lambda: core.ingest.changes >= 1)
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM event_log").fetchone()[0]
        assert count >= 1
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM event_log")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE event_log SET type = 'x'")


async def test_registry_identity_and_overrides_survive_restart_and_removal(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    async with start(db, ["S1", "S2"]) as core:
        await wait_until(lambda: len(core.registry.points_of_device(core.device_ids.get("det-S2", ""))) == 1)
        await wait_until(lambda: len(core.registry.points_of_device(core.device_ids.get("det-S1", ""))) == 1)
        first_id = core.device_ids["det-S1"]
        point_id = core.registry.points_of_device(first_id)[0].point_id
        await core.registry.set_device_overrides(first_id, name="Kitchen board RCD")
        await core.registry.set_point_overrides(point_id, alarm=250)
        assert core.registry.devices[first_id].original_name == "test detector"
    # Restart with S1 removed from the file: it is orphaned, not deleted.
    async with start(db, ["S2"]) as core:
        device = core.registry.devices[first_id]
        assert device.orphaned_at is not None
    # S1 comes back under a *different* config key: same id, history and overrides.
    SCRIPTS["S1"].values["rc"] = 7
    text = site(db, ["S2"]) + "  - key: renamed\n    driver: test.detector\n    location: room\n    options: {serial: S1}\n"
    async with running_core(load_text(text, "site.yaml"), extra_plugins={"test": TestPlugin()}, autoload=False) as core:
        await wait_until(lambda: core.device_ids.get("renamed") == first_id)
        device = core.registry.devices[first_id]
        assert device.orphaned_at is None
        assert device.name == "Kitchen board RCD"  # the person's name wins
        assert device.original_name == "test detector"  # the driver's is kept apart
        assert core.registry.point_info(point_id).overrides == {"alarm": 250}
        await wait_until(lambda: core.ingest.state(point_id) is not None and core.ingest.state(point_id).value == 7)
        await core.storage.barrier()  # the in-memory state runs ahead of its commit
        actions = await core.storage.fetchall("SELECT data FROM event_log WHERE type = 'RegistryUpdated'")
        kinds = [msgspec.json.decode(r[0])["action"] for r in actions]
        assert "restore" in kinds and "remove" in kinds


async def test_unreachable_device_is_unavailable_then_recovers(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    SCRIPTS["S9"] = Script()
    SCRIPTS["S9"].reachable = False
    async with start(db, ["S9"]) as core:
        events: list[str] = []
        core.bus.subscribe("avail", lambda e: events.append(str(e.data.availability)), types=[AvailabilityChanged])
        await wait_until(lambda: core.availability.get(core.device_ids["det-S9"]) is not None)
        assert str(core.availability.get(core.device_ids["det-S9"])) == "unavailable"
        SCRIPTS["S9"].reachable = True
        await wait_until(lambda: "available" in events, timeout=15)
        device_id = core.device_ids["det-S9"]
        assert core.registry.devices[device_id].identifiers["serial"] == "S9"
        # A timeout during polling: one change event per outage, not one per poll.
        await core.storage.barrier()  # events are delivered once committed: count from here
        await core.bus.drain()
        before = events.count("unavailable")
        SCRIPTS["S9"].reachable = False
        polls = SCRIPTS["S9"].polls
        await wait_until(lambda: SCRIPTS["S9"].polls >= polls + 5)
        await core.storage.barrier()
        await core.bus.drain()
        assert events.count("unavailable") == before + 1
        SCRIPTS["S9"].reachable = True
        await wait_until(lambda: events.count("available") == 2)


async def test_overrunning_poll_cycles_are_skipped_not_queued(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    SCRIPTS["S5"] = Script()
    SCRIPTS["S5"].poll_delay = 0.3  # six times the 0.05 s interval
    async with start(db, ["S5"]) as core:
        await wait_until(lambda: SCRIPTS["S5"].polls >= 3)
        assert core.poll_skips >= 10
    # No burst of queued polls: the number of polls is bounded by elapsed time / poll duration.
    assert SCRIPTS["S5"].polls <= 5


async def test_retention_rolls_up_then_purges_raw_but_never_the_event_log(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    async with Storage(db).running() as storage:
        base = 1_699_999_200  # a multiple of 3600 → buckets line up
        rows = [("p1", (base + i * 60) * 1000, float(i), None) for i in range(120)]  # 2 h, one per minute
        await storage.put(SQL_READING, rows)
        old_alarm = Event(data=AvailabilityChanged(device_id="d", availability=Availability.UNAVAILABLE), time_fired=base - 86400 * 999)
        await storage.log_event(old_alarm)
        await storage.barrier()
        await downsample(storage, now=base + 7200, lookback_s=7200)
        five = await storage.fetchall("SELECT bucket, n, mean, min, max, last FROM readings_5m ORDER BY bucket")
        assert len(five) == 24
        assert five[0] == (base, 5, 2.0, 0.0, 4.0, 4.0)
        hours = await storage.fetchall("SELECT bucket, n, min, max FROM readings_1h ORDER BY bucket")
        assert hours == [(base, 60, 0.0, 59.0), (base + 3600, 60, 60.0, 119.0)]
        # Running it again changes nothing (idempotent).
        await downsample(storage, now=base + 7200, lookback_s=7200)
        assert await storage.fetchall("SELECT bucket, n, mean, min, max, last FROM readings_5m ORDER BY bucket") == five
        await purge(storage, raw_retention_days=0, aggregate_5m_retention_days=400, now=base + 7200)
        left = await storage.fetchone("SELECT count(*) FROM readings")
        assert left == (0,)
        assert len(await storage.fetchall("SELECT * FROM readings_1h")) == 2
        assert await storage.fetchone("SELECT count(*) FROM event_log") == (1,)



async def test_a_batch_of_registry_writes_commits_in_one_transaction_parents_first(tmp_path: Path) -> None:
    """Grouping a batch's rows by statement must not put a device's identifiers before the
    device (FOREIGN KEY): that failed the batch and replayed it one operation at a time."""
    from firebus.core.storage import Op
    from firebus.sdk.events import Lane

    dev = ("INSERT INTO devices (id, driver, created_at, updated_at) VALUES (?, 'd', 0, 0)")
    ident = "INSERT INTO device_identifiers (namespace, value, device_id) VALUES (?, ?, ?)"
    async with Storage(tmp_path / "fb.db").running() as storage:
        storage.submit(Op([(dev, [("D0",)])], lane=Lane.ALARM))
        await storage.barrier()
        writer = storage._writer
        commits = writer.commits
        # One hand-over: D0's identifier first, then a new device and its identifier.
        for op in (Op([(ident, [("serial", "S0", "D0")])], lane=Lane.ALARM),
                   Op([(dev, [("D1",)])], lane=Lane.ALARM),
                   Op([(ident, [("serial", "S1", "D1")])], lane=Lane.ALARM)):
            storage.submit(op)
        await storage.barrier()
        assert writer.refused_ops == 0
        assert writer.commits - commits <= 2  # the batch (and the barrier), not one per operation
        rows = await storage.fetchall("SELECT value, device_id FROM device_identifiers ORDER BY value")
        assert rows == [("S0", "D0"), ("S1", "D1")]
