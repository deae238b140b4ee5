"""Backups while the core writes, restore that refuses a database in use, the scheduled backup
of the site file's ``backup:`` line, and a release's database opened by the current core."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
from pathlib import Path

import anyio
import pytest

from firebus.core.backup import (
    BackupError,
    DatabaseLock,
    backups_in,
    parse_duration,
    prune,
    restore,
    run_schedule,
    take_backup,
    verify,
)
from firebus.core.cli import main
from firebus.core.config import ConfigError, load_text
from firebus.core.storage import Storage, StorageError
from firebus.sdk.migration import Migration
from firebus.sdk.testing.waiting import eventually as wait_for

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parent / "fixtures"
#: each transaction of the load writes a pair of rows: a consistent copy holds an even number
LOAD = [Migration("loadtest", 1, "CREATE TABLE load (i INTEGER NOT NULL, pad BLOB NOT NULL)", "test load")]
PAD = os.urandom(512)


def count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM load").fetchone()[0])
    finally:
        conn.close()


async def test_a_backup_under_write_load_is_one_consistent_verified_commit(tmp_path: Path) -> None:
    db = tmp_path / "data" / "firebus.db"
    async with Storage(db).running(LOAD) as storage:
        await storage.executemany("INSERT INTO load (i, pad) VALUES (?, ?)", [(i, PAD) for i in range(20_000)])
        stop = anyio.Event()
        written = [0]

        async def pump() -> None:
            i = 20_000
            while not stop.is_set():
                await storage.executemany("INSERT INTO load (i, pad) VALUES (?, ?)", [(i, PAD), (i + 1, PAD)])
                i += 2
                written[0] += 2

        async with anyio.create_task_group() as tg:
            tg.start_soon(pump)
            copies = []
            for _ in range(3):
                before = written[0]
                result = await anyio.to_thread.run_sync(take_backup, db, tmp_path / "backups")
                copies.append(result)
                await wait_for(lambda: _true(written[0] > before + 20))  # the core kept writing
            stop.set()
        live = (await storage.fetchone("SELECT count(*) FROM load"))[0]
    for result in copies:
        rows = count(result.path)
        assert rows % 2 == 0 and 20_000 <= rows <= live, rows  # no half transaction
        assert verify(result.path)["loadtest"] == 1
        assert not Path(f"{result.path}-wal").exists()  # one self-contained file
    assert [count(c.path) for c in copies] == sorted(count(c.path) for c in copies)
    assert backups_in(tmp_path / "backups") == [c.path for c in copies]
    assert not list((tmp_path / "backups").glob("*.partial"))


async def _true(value: bool) -> bool:
    return value


async def test_restore_refuses_while_the_database_is_open_and_keeps_what_it_replaces(tmp_path: Path) -> None:
    db = tmp_path / "firebus.db"
    async with Storage(db).running(LOAD) as storage:
        await storage.executemany("INSERT INTO load (i, pad) VALUES (?, ?)", [(1, PAD), (2, PAD)])
        backup = take_backup(db, tmp_path / "backups").path
        await storage.executemany("INSERT INTO load (i, pad) VALUES (?, ?)", [(3, PAD), (4, PAD)])
        with pytest.raises(BackupError, match="in use"):
            restore(backup, db)
        assert main(["restore", str(backup), "--data", str(tmp_path)]) == 1
    assert count(db) == 4  # untouched by the refused restores
    result = restore(backup, db)
    assert count(db) == 2 and result.versions["loadtest"] == 1
    assert result.moved_aside is not None and count(result.moved_aside) == 4  # never deleted


async def test_the_core_cannot_open_a_database_being_restored(tmp_path: Path) -> None:
    db = tmp_path / "firebus.db"
    with DatabaseLock(db, exclusive=True) as lock:
        assert lock.acquire()
        with pytest.raises(StorageError, match="being restored"):
            async with Storage(db).running():
                pass


def test_restore_verifies_the_backup_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live = tmp_path / "firebus.db"
    sqlite3.connect(live).executescript("CREATE TABLE schema_meta (component TEXT, version INT);"
                                        "INSERT INTO schema_meta VALUES ('core', 3);")
    before = live.read_bytes()
    bad = tmp_path / "firebus-20260101T000000.000Z.db"
    good = take_backup(live, tmp_path / "copy.db").path
    data = bytearray(good.read_bytes())
    data[4096:4096 + 8] = b"\xff" * 8  # the second page's b-tree header: not a valid page
    bad.write_bytes(bytes(data))
    assert main(["restore", str(bad), "--data", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err
    not_firebus = tmp_path / "other.db"
    sqlite3.connect(not_firebus).execute("CREATE TABLE t (x)")
    with pytest.raises(BackupError, match="not a firebus database"):
        restore(not_firebus, live)
    assert live.read_bytes() == before


def test_backup_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "--data", str(tmp_path / "missing")]) == 1
    assert "no database at" in capsys.readouterr().err
    assert main(["backup", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"firebus-2026010{d}T000000.000Z.db" for d in range(1, 6)]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a backup")
    removed = prune(tmp_path, keep=2)
    assert [p.name for p in removed] == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [*names[3:], "notes.txt"]


def test_the_backup_line_of_the_site_file() -> None:
    site = load_text("backup: {every: 1d, keep: 7, to: /srv/firebus-backups}\n").site
    assert site.backup is not None and (site.backup.every, site.backup.keep, site.backup.to) == (
        "1d", 7, "/srv/firebus-backups")
    assert [parse_duration(v) for v in ("30m", "12h", "1d", "1w", 90)] == [1800, 43200, 86400, 604800, 90]
    with pytest.raises(ConfigError) as info:
        load_text("site: {name: x}\nbackup: {every: 1 fortnight, keep: 0}\n", "site.yaml")
    lines = str(info.value).splitlines()
    assert any(line.startswith("site.yaml:2: backup.every:") for line in lines), lines
    assert any(line.startswith("site.yaml:2: backup.keep:") for line in lines), lines


async def test_the_core_backs_up_on_schedule_and_prunes(tmp_path: Path) -> None:
    db = tmp_path / "firebus.db"
    async with Storage(db).running(LOAD) as storage:
        await storage.executemany("INSERT INTO load (i, pad) VALUES (?, ?)", [(1, PAD), (2, PAD)])
        folder = tmp_path / "bk"
        seen: set[str] = set()

        async def rounds_done() -> bool:
            seen.update(p.name for p in backups_in(folder))
            return len(seen) >= 4

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_schedule, db, 0.05, 2, folder)
            await wait_for(rounds_done)
            tg.cancel_scope.cancel()
    assert len(backups_in(folder)) <= 3  # keep 2 (+ one taken as the schedule was stopped)
    assert all(count(p) == 2 for p in backups_in(folder))


SITE = """
site: {name: Upgrade test, timezone: Asia/Shanghai}
storage: {path: firebus.db}
backup: {every: 1d, keep: 3, to: bk}
"""


async def test_a_database_from_release_0_1_0_opens_and_migrates(tmp_path: Path) -> None:
    from firebus.core.runtime import running_core

    db = tmp_path / "firebus.db"
    with gzip.open(FIXTURES / "firebus-0.1.0.db.gz") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    old = verify(db)
    conn = sqlite3.connect(db)
    before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("alarms", "alarm_history", "journal", "web_users", "devices", "notify_outbox")}
    conn.close()
    # Every installed plugin, as `firebus run` loads them: each migrates its part.
    async with running_core(load_text(SITE, str(tmp_path / "site.yaml")), autoload=True,
                            base_dir=tmp_path) as core:
        await core.storage.barrier()
        for table, n in before.items():
            assert (await core.storage.fetchone(f"SELECT count(*) FROM {table}"))[0] >= n, table
        rows = await core.storage.fetchall("SELECT component, version FROM schema_meta")
        await wait_for(lambda: _true(bool(backups_in(tmp_path / "bk"))))  # the schedule's first backup
    now = dict(rows)
    assert all(now[c] >= v for c, v in old.items()), (old, now)
    assert verify(backups_in(tmp_path / "bk")[0]) == now


async def test_alarm_media_go_into_the_backup_folder_and_come_back_with_a_restore(tmp_path: Path) -> None:
    """Stills and clips live beside the database: a backup without them would lose the evidence."""
    from firebus.core.backup import MEDIA_DIR
    from firebus.sdk.media import MediaKind
    from firebus.sdk.testing.harness import site_yaml, start_core

    site_dir, bk = tmp_path / "site", tmp_path / "bk"
    db = site_dir / "fb.db"
    async with start_core(site_yaml(db)) as core:
        still = await core.media.put(b"\xff\xd8 a still \xff\xd9", "image/jpeg", kind=MediaKind.STILL)
        await core.storage.barrier()
        first = take_backup(db, bk)
        clip = await core.media.put(b"\x00\x00\x00\x18ftypmp42 a clip", "video/mp4", kind=MediaKind.CLIP)
        await core.storage.barrier()
        second = take_backup(db, bk)
    assert (first.media_copied, second.media_copied) == (1, 1)  # each backup adds only what is new
    stored = {p.relative_to(bk / MEDIA_DIR).as_posix() for p in (bk / MEDIA_DIR).rglob("*") if p.is_file()}
    assert len(stored) == 2
    assert take_backup(db, bk).media_copied == 0

    shutil.rmtree(site_dir)  # the disk is gone
    restore(second.path, db)
    async with start_core(site_yaml(db)) as core:
        for ref, data in ((still, b"\xff\xd8 a still \xff\xd9"), (clip, b"\x00\x00\x00\x18ftypmp42 a clip")):
            found = await core.media.get(ref.id)
            assert found is not None and found[1].read_bytes() == data

    # Pruning the older backups keeps every file a kept backup names, and only those.
    prune(bk, keep=1)
    assert {p.relative_to(bk / MEDIA_DIR).as_posix() for p in (bk / MEDIA_DIR).rglob("*") if p.is_file()} == stored
