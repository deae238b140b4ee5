"""Media kept with alarms (``firebus.sdk.MediaAPI``, ``core.media``): stills and clips.

Files live under ``<database folder>/media/<yyyy-mm>/<id><suffix>``; the ``media`` table
(core migration 6) is their index and ``media_links`` says which alarm shows which.

How a still reaches its alarm without a database read on the alarm path:

1. the camera ``put``s the JPEG (a row, durable) and reports ``Reading("flame", True,
   media=(ref.id,))``;
2. ``offer`` (called by the driver context before the reading is ingested) records in
   memory "this medium shows point P at time t" and queues the same on the alarm lane,
   so it commits no later than the reading's own entry;
3. the alarm engine, raising an alarm on P, ``claim``s the offers of P from the last
   ``offer_window_s`` and writes the attachment rows in the transaction of the alarm's
   ``new`` transition: whoever hears of the alarm (notify, the panel) finds its still.

After a crash the offers not yet attached are loaded again (``load``), so the replayed
reading attaches them.  Clips come later and are attached by alarm id (``attach``).

Retention: a medium attached to an alarm is kept as long as that alarm is (alarms are
never purged, so media of fire alarms are never purged); one attached to no alarm is
deleted ``unattached_s`` after it was stored (a still whose reading raised nothing, a clip
whose alarm never came).

Quota (``storage.media_quota_mb``): once the files add up to more, the oldest media that
no alarm needs are deleted until they fit — first those attached to no alarm (older than
``offer_window_s``, so an alarm being raised still finds its still), then those whose every
alarm is over (cleared and acknowledged) and not a fire alarm.  Media of fire alarms and of
open alarms are never deleted for the quota: when they alone exceed it, new media are still
stored (evidence first) and ``over_quota`` says so in ``/api/metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import anyio

from firebus.sdk.context import new_id
from firebus.sdk.events import Lane
from firebus.sdk.media import CONTENT_TYPES, MediaError, MediaInfo, MediaKind, MediaRef

from .storage import Op

log = logging.getLogger("firebus.media")

#: one statement for the attachment rows, used by the engine and by ``attach``
SQL_MEDIA_LINK = "INSERT OR IGNORE INTO media_links (alarm_id, media_id, ts) VALUES (?, ?, ?)"
SQL_MEDIA_OFFER = "UPDATE media SET point_id = ?, offered_ts = ? WHERE id = ?"
SQL_MEDIA_INSERT = (
    "INSERT INTO media (id, content_type, bytes, sha256, path, kind, device_id, ts, start_ts, end_ts, created_ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "m.id, m.content_type, m.bytes, m.kind, m.ts, m.device_id, m.start_ts, m.end_ts, m.created_ts, m.path"


def _info(row: tuple[Any, ...]) -> MediaInfo:
    mid, ctype, size, kind, ts, device_id, start_ts, end_ts, created, _ = row
    try:
        kind = MediaKind(kind)
    except ValueError:
        kind = MediaKind.OTHER
    return MediaInfo(id=mid, content_type=ctype, bytes=size, kind=kind, ts=ts, device_id=device_id,
                     start_ts=start_ts, end_ts=end_ts, created_ts=created)


class MediaStore:
    """The core's ``MediaAPI``.  ``alarm_exists(alarm_id)`` guards ``attach``."""

    def __init__(
        self, storage: Any, folder: Path, *, now: Callable[[], float] = time.time,
        alarm_exists: Callable[[str], Awaitable[bool]] | None = None,
        max_bytes: int = 200 * 1024 * 1024, offer_window_s: float = 300.0, unattached_s: float = 86400.0,
        quota_bytes: int = 0,
    ) -> None:
        self.storage = storage
        self.folder = folder
        self.now = now
        self.alarm_exists = alarm_exists
        self.max_bytes = max_bytes
        self.offer_window_s = offer_window_s
        self.unattached_s = unattached_s
        self._offers: dict[str, list[tuple[float, str]]] = {}  # point id -> [(offered ts, media id)]
        self._linked: set[str] = set()  # alarms with at least one medium (load(), attach, the engine)
        self.stored = 0
        self.attached = 0
        self.purged = 0
        self.quota_bytes = quota_bytes  # 0: no quota
        self.total_bytes = 0  # of every medium stored (loaded at start, kept up to date)
        self.quota_purged = 0
        self.over_quota = False  # over the quota with nothing left that may be deleted
        self._quota_task: asyncio.Task[None] | None = None
        # purge and quota passes one at a time: both delete rows and count the bytes freed
        self._deleting = asyncio.Lock()

    # -- start -------------------------------------------------------------------------------

    async def load(self) -> None:
        """Offers not yet attached (a crash between a reading and its alarm): claimable again."""
        rows = await self.storage.fetchall(
            "SELECT point_id, offered_ts, id FROM media m WHERE point_id IS NOT NULL AND offered_ts >= ? "
            "AND NOT EXISTS (SELECT 1 FROM media_links l WHERE l.media_id = m.id) ORDER BY offered_ts",
            (self.now() - max(self.offer_window_s, self.unattached_s),),
        )
        for point_id, ts, mid in rows:
            self._offers.setdefault(point_id, []).append((ts, mid))
        self._linked = {r[0] for r in await self.storage.fetchall("SELECT DISTINCT alarm_id FROM media_links")}
        row = await self.storage.fetchone("SELECT coalesce(sum(bytes), 0) FROM media")
        self.total_bytes = int(row[0]) if row else 0

    def note_link(self, alarm_id: str) -> None:
        """``alarm_id`` has (or is about to commit) a medium: ``of_alarm`` must look it up."""
        self._linked.add(alarm_id)

    # -- MediaAPI ----------------------------------------------------------------------------

    async def put(
        self, data: bytes | Path, content_type: str, *, kind: MediaKind = MediaKind.OTHER,
        device_id: str | None = None, ts: float | None = None,
        start_ts: float | None = None, end_ts: float | None = None,
    ) -> MediaRef:
        suffix = CONTENT_TYPES.get(content_type)
        if suffix is None:
            raise MediaError(f"content type {content_type!r} is not stored (one of {sorted(CONTENT_TYPES)})")
        kind = MediaKind(kind)
        now = self.now()
        mid = new_id()
        rel = Path(time.strftime("%Y-%m", time.gmtime(now))) / f"{mid}{suffix}"
        size, digest = await anyio.to_thread.run_sync(self._write, data, self.folder / rel)
        await self.storage.execute(
            SQL_MEDIA_INSERT,
            (mid, content_type, size, digest, str(rel), str(kind), device_id, ts if ts is not None else now,
             start_ts, end_ts, now),
            lane=Lane.ALARM if kind is MediaKind.STILL else Lane.TELEMETRY,
        )
        self.stored += 1
        self.total_bytes += size
        if self.quota_bytes and self.total_bytes > self.quota_bytes and self._quota_task is None:
            # Not on the caller's path (a camera storing its alarm's still): a task of its own.
            self._quota_task = asyncio.get_running_loop().create_task(self._quota_soon(), name="media-quota")
        return MediaRef(id=mid, content_type=content_type, bytes=size)

    async def _quota_soon(self) -> None:
        try:
            await self.enforce_quota()
        except Exception:
            log.exception("media: quota enforcement failed; the next housekeeping pass retries")
        finally:
            self._quota_task = None

    def _write(self, data: bytes | Path, dest: Path) -> tuple[int, str]:
        """Bytes written atomically (tmp, fsync, rename); a file moved in.  Runs in a thread."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) == 0:
                raise MediaError("no bytes to store")
            if len(data) > self.max_bytes:
                raise MediaError(f"{len(data)} bytes is over the {self.max_bytes}-byte limit")
            tmp = dest.with_name(dest.name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            return len(data), hashlib.sha256(data).hexdigest()
        src = Path(data)
        if not src.is_file():
            raise MediaError(f"{src} is not a file")
        size = src.stat().st_size
        if size == 0 or size > self.max_bytes:
            raise MediaError(f"{src}: {size} bytes (must be 1 to {self.max_bytes})")
        shutil.move(str(src), dest)  # a rename on the same disk
        h = hashlib.sha256()
        with open(dest, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
            os.fsync(fh.fileno())
        return size, h.hexdigest()

    async def attach(self, alarm_id: str, media_id: str) -> None:
        if await self.storage.fetchone("SELECT 1 FROM media WHERE id = ?", (media_id,)) is None:
            raise MediaError(f"no medium {media_id!r}")
        if self.alarm_exists is not None and not await self.alarm_exists(alarm_id):
            raise MediaError(f"no alarm {alarm_id!r}")
        self.note_link(alarm_id)
        await self.storage.execute(SQL_MEDIA_LINK, (alarm_id, media_id, self.now()), lane=Lane.ALARM)
        self.attached += 1

    async def of_alarm(self, alarm_id: str) -> list[MediaInfo]:
        # Most alarms have no media, and notify asks before every send on the alarm path:
        # answer those from memory (the set of alarms with links, loaded at start).
        if alarm_id not in self._linked:
            return []
        rows = await self.storage.fetchall(
            f"SELECT {_COLUMNS} FROM media_links l JOIN media m ON m.id = l.media_id WHERE l.alarm_id = ? "
            "ORDER BY m.ts, m.created_ts", (alarm_id,))
        return [_info(r) for r in rows]

    async def alarms_of(self, media_id: str) -> list[str]:
        rows = await self.storage.fetchall("SELECT alarm_id FROM media_links WHERE media_id = ? ORDER BY ts",
                                           (media_id,))
        return [r[0] for r in rows]

    async def get(self, media_id: str) -> tuple[MediaInfo, Path] | None:
        """A medium and its file (None: unknown, or its file is gone): the API serves it, notify
        attaches a still to an e-mail (``MediaAPI.get``)."""
        row = await self.storage.fetchone(f"SELECT {_COLUMNS} FROM media m WHERE m.id = ?", (media_id,))
        if row is None:
            return None
        path = self.folder / row[-1]
        if not path.is_file():
            log.error("media: file of %s is missing (%s)", media_id, path)
            return None
        return _info(row), path

    # -- the core's side -----------------------------------------------------------------------

    def offer(self, point_id: str, media_ids: tuple[str, ...], ts: float) -> None:
        """``media_ids`` show point ``point_id`` at ``ts`` (a reading's ``media``): claimable by the
        alarm it raises.  Queued on the alarm lane, so it commits before the reading does."""
        if not media_ids:
            return
        offers = self._offers.setdefault(point_id, [])
        offers.extend((ts, mid) for mid in media_ids)
        self.storage.submit(Op([(SQL_MEDIA_OFFER, [(point_id, ts, mid) for mid in media_ids])], [], None, Lane.ALARM))

    def claim(self, point_id: str, now: float) -> list[str]:
        """The media offered for ``point_id`` in the ``offer_window_s`` before ``now`` (engine, in memory)."""
        offers = self._offers.pop(point_id, None)
        if not offers:
            return []
        return [mid for ts, mid in offers if now - self.offer_window_s <= ts <= now + 60.0]

    async def purge(self) -> int:
        """Delete media no alarm shows, stored more than ``unattached_s`` ago (housekeeping)."""
        async with self._deleting:
            return await self._purge()

    async def _purge(self) -> int:
        cutoff = self.now() - self.unattached_s
        rows = await self.storage.fetchall(
            "SELECT id, path, bytes FROM media m WHERE created_ts < ? "
            "AND NOT EXISTS (SELECT 1 FROM media_links l WHERE l.media_id = m.id) LIMIT 1000", (cutoff,))
        if not rows:
            return 0
        await self.storage.executemany(
            "DELETE FROM media WHERE id = ? AND NOT EXISTS (SELECT 1 FROM media_links l WHERE l.media_id = ?)",
            [(mid, mid) for mid, _, _ in rows])
        still = {r[0] for r in await self.storage.fetchall(
            f"SELECT id FROM media WHERE id IN ({','.join('?' * len(rows))})", [mid for mid, _, _ in rows])}
        gone = [(mid, rel, size) for mid, rel, size in rows if mid not in still]  # attached meanwhile: kept
        for _, rel, size in gone:
            try:
                (self.folder / rel).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("media: cannot delete %s: %s", rel, exc)
            self.total_bytes -= int(size)
        ids = {mid for mid, _, _ in gone}
        for offers in self._offers.values():
            offers[:] = [o for o in offers if o[1] not in ids]
        self.purged += len(gone)
        return len(gone)

    async def enforce_quota(self) -> int:
        """Delete the oldest media no alarm needs until the files fit ``quota_bytes``; returns how many."""
        async with self._deleting:
            return await self._enforce_quota()

    async def _enforce_quota(self) -> int:
        if not self.quota_bytes or self.total_bytes <= self.quota_bytes:
            self.over_quota = False
            return 0
        young = self.now() - self.offer_window_s
        deleted = 0
        while self.total_bytes > self.quota_bytes:
            rows = await self.storage.fetchall(
                "SELECT m.id, m.path, m.bytes FROM media m WHERE m.created_ts < ? AND NOT EXISTS ("
                "  SELECT 1 FROM media_links l LEFT JOIN alarms a ON a.id = l.alarm_id WHERE l.media_id = m.id"
                "  AND (a.id IS NULL OR a.category = 'fire' OR a.active = 1 OR a.acknowledged = 0)) "
                "ORDER BY EXISTS (SELECT 1 FROM media_links l WHERE l.media_id = m.id), m.created_ts LIMIT 200",
                (young,))
            if not rows:
                break
            batch: list[tuple[str, str, int]] = []
            need = self.total_bytes - self.quota_bytes
            for mid, rel, size in rows:
                batch.append((mid, rel, int(size)))
                need -= int(size)
                if need <= 0:
                    break
            # The alarm's links stay (its history says it had a still); the file and row go.
            await self.storage.executemany("DELETE FROM media WHERE id = ?", [(mid,) for mid, _, _ in batch])
            gone = {mid for mid, _, _ in batch}
            for _mid, rel, size in batch:
                try:
                    (self.folder / rel).unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("media: cannot delete %s: %s", rel, exc)
                self.total_bytes -= size
            for offers in self._offers.values():
                offers[:] = [o for o in offers if o[1] not in gone]
            deleted += len(batch)
        self.quota_purged += deleted
        over = self.total_bytes > self.quota_bytes
        if over and not self.over_quota:
            log.error("media: %d bytes stored, over the quota of %d, and every medium left belongs to a fire "
                      "alarm or an open alarm: nothing more is deleted; new media are still stored",
                      self.total_bytes, self.quota_bytes)
        self.over_quota = over
        return deleted

    def metrics(self) -> dict[str, int | bool]:
        return {"stored": self.stored, "attached": self.attached, "purged": self.purged,
                "offers_pending": sum(len(v) for v in self._offers.values()),
                "total_bytes": self.total_bytes, "quota_bytes": self.quota_bytes,
                "quota_purged": self.quota_purged, "over_quota": self.over_quota}
