"""Copies of the site database: online backup, restore, and the scheduled backup.

A backup is SQLite's online backup API run in one step: one read transaction,
so the copy is the database as of one commit, while the core keeps writing
(WAL readers never block the writer).  The copy is converted to a single
self-contained file (``journal_mode=DELETE``), checked with ``PRAGMA
integrity_check``, flushed to disk and only then renamed into place: a file
named ``firebus-*.db`` in a backup folder is always a complete, verified copy.

Every process that opens the database through ``Storage`` holds a shared
``flock`` on ``<db>.lock``; ``restore`` takes it exclusively, so it refuses
while the core (or a ``firebus user``/``token`` command) has the database open,
and nothing opens it while a restore is under way.  The database being
replaced is moved aside (``firebus.db.before-restore-<time>``), never deleted.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from firebus.sdk.durations import parse_duration as parse_duration  # re-exported: backup.every uses it

log = logging.getLogger("firebus.core.backup")

PREFIX = "firebus-"
SUFFIX = ".db"
_NAME = re.compile(r"^firebus-\d{8}T\d{6}(?:\.\d+)?Z\.db$")


class BackupError(Exception):
    """A backup or restore that cannot be done, said so a user knows what to do."""


# -- the lock every Storage holds ----------------------------------------------------------


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


class DatabaseLock:
    """``flock`` on ``<db>.lock``: shared for users of the database, exclusive for restore.
    The kernel drops it when the process dies, so a crash never leaves it behind."""

    def __init__(self, db: str | Path, *, exclusive: bool) -> None:
        self.path = lock_path(Path(db))
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it the other way."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "DatabaseLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- backup ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    seconds: float
    #: schema version per component (core, alarms, web, plugins …) in the copy
    versions: dict[str, int]
    #: media files (alarm stills and clips) copied into the backup folder's ``media/`` now
    media_copied: int = 0


def backup_name(now: float | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc)
    return f"{PREFIX}{stamp:%Y%m%dT%H%M%S}.{stamp.microsecond // 1000:03d}Z{SUFFIX}"


def verify(path: str | Path) -> dict[str, int]:
    """Check a database file: ``PRAGMA integrity_check`` and a firebus schema; the versions."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if rows != ["ok"]:
                raise BackupError(f"{path}: integrity check failed: {'; '.join(map(str, rows[:5]))}")
            try:
                versions = dict(conn.execute("SELECT component, version FROM schema_meta").fetchall())
            except sqlite3.DatabaseError:
                raise BackupError(f"{path}: not a firebus database (no schema_meta table)") from None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a readable SQLite database ({exc})") from None
    if "core" not in versions:
        raise BackupError(f"{path}: not a firebus database (no core schema)")
    return {str(k): int(v) for k, v in versions.items()}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take_backup(db: str | Path, dest: str | Path) -> BackupResult:
    """Copy the database ``db`` (possibly in use) to ``dest``: a folder (a new
    ``firebus-<UTC time>.db`` in it) or a file name ending in ``.db``."""
    db, dest = Path(db), Path(dest)
    if not db.is_file():
        raise BackupError(f"no database at {db}")
    target = dest if dest.suffix == SUFFIX and not dest.is_dir() else dest / backup_name()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise BackupError(f"{target} exists; a backup never overwrites one")
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    try:
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.execute("PRAGMA busy_timeout=30000")
            # pages=-1: the whole database in one step, i.e. one read transaction — a stepwise
            # copy restarts whenever the core commits, and under load it would never finish.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
            src.close()
        versions = verify(partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {db} failed: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    copied = _sync_media(_media_paths(target), db.parent / MEDIA_DIR, target.parent / MEDIA_DIR)
    return BackupResult(target, target.stat().st_size, time.monotonic() - started, versions, copied)


# -- media (core/media.py): files beside the database, indexed in its ``media`` table ----------
#
# A backup folder keeps one ``media/`` shared by its backups: a medium is written once and
# never changed, so each backup adds only what is new (a hard link when the folders share a
# file system), pruning deletes what no kept backup names, and a restore puts back what the
# restored database names.

MEDIA_DIR = "media"


def _media_paths(db: Path) -> set[str]:
    """The media files a database names (relative to its media folder); none before migration 6."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return {str(p) for (p,) in conn.execute("SELECT path FROM media")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:  # no media table: a database from before media existed
        return set()


def _sync_media(paths: set[str], src: Path, dst: Path) -> int:
    """Copy each of ``paths`` from ``src`` to ``dst`` unless it is there; the number copied."""
    copied = 0
    for rel in sorted(paths):
        source, target = src / rel, dst / rel
        if target.exists() or not source.is_file():
            continue  # already copied, or purged from the site since (the database says so)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            os.link(source, partial)  # media are never rewritten in place: sharing the inode is safe
        except OSError:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
        copied += 1
    return copied


def backups_in(folder: str | Path) -> list[Path]:
    """The complete backups in ``folder``, oldest first (names sort by time)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def prune(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups in ``folder``; the deleted paths."""
    old = backups_in(folder)[:-keep] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)
    if old:
        media = Path(folder) / MEDIA_DIR
        named = set().union(*(_media_paths(p) for p in backups_in(folder)))
        if media.is_dir():
            for f in media.rglob("*"):
                if f.is_file() and f.relative_to(media).as_posix() not in named:
                    f.unlink(missing_ok=True)
    return old


# -- restore ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    db: Path
    versions: dict[str, int]
    #: where the replaced database went (None: there was none)
    moved_aside: Path | None


def restore(backup: str | Path, db: str | Path) -> RestoreResult:
    """Replace the database ``db`` with ``backup`` after verifying it; refuses while ``db`` is open."""
    backup, db = Path(backup), Path(db)
    versions = verify(backup)
    with DatabaseLock(db, exclusive=True) as lock:
        if not lock.acquire():
            raise BackupError(
                f"{db} is in use (a running firebus core, or a user/token command): stop it first; "
                "restore never replaces a database that is open")
        aside = None
        if db.exists():
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            aside = db.with_name(f"{db.name}.before-restore-{stamp}")
            for suffix in ("", "-wal", "-shm"):  # the WAL may hold the last commits: keep it with its db
                part = db.with_name(db.name + suffix)
                if part.exists():
                    os.replace(part, aside.with_name(aside.name + suffix))
        partial = db.with_name(db.name + ".restoring")
        shutil.copyfile(backup, partial)
        _fsync(partial)
        os.replace(partial, db)
        _fsync(db.parent)
        _sync_media(_media_paths(db), backup.parent / MEDIA_DIR, db.parent / MEDIA_DIR)
    return RestoreResult(db, versions, aside)


# -- the schedule (``backup:`` in the site file) ------------------------------------------------


def backup_folder(db: Path, to: str) -> Path:
    """``backup.to``: absolute, or relative to the database's folder."""
    path = Path(to).expanduser()
    return path if path.is_absolute() else db.parent / path


async def run_schedule(db: Path, every: float, keep: int, folder: Path) -> None:
    """Back up every ``every`` seconds (wall time: file times are), keeping ``keep``; the first
    is due one period after the newest backup already in the folder (a restart takes no extra)."""
    import anyio

    now, sleep = time.time, anyio.sleep
    while True:
        existing = backups_in(folder)
        due = existing[-1].stat().st_mtime + every if existing else now()
        if due > now():
            await sleep(due - now())
        try:
            result = await anyio.to_thread.run_sync(take_backup, db, folder)
        except (BackupError, OSError) as exc:
            log.error("scheduled backup failed: %s; next try in %.0f s", exc, min(every, 3600))
            await sleep(min(every, 3600))
            continue
        removed = prune(folder, keep)
        log.info("backup: %s (%.1f MB, %.1f s, integrity ok)%s", result.path, result.size / 1e6, result.seconds,
                 f"; removed {len(removed)} old" if removed else "")
