"""Alarm media in messages: the still of a camera's alarm, linked everywhere, attached to e-mail.

* ``prepare`` runs just before each send (and each retry): the alarm's media
  (``core.media.of_alarm``) go into ``Message.data["media"]`` as
  ``{id, kind, content_type, ts, bytes, url}``, and every channel shows them in its own
  way.  Read at send time, not when the row was written, so a still attached a moment
  after the alarm is in the message that waited for it and in any retry.
* ``url``: a signed, expiring link ``{links.base_url}/-/plugins/notify/media/<token>/<name>``
  (``media_web`` serves it).  The key is ``core.secret("notify-media")``, not the alarm
  links' key: a vendor's image proxy that fetches the picture (WeCom, DingTalk) learns one
  picture, not a link to the alarm.  Without ``links.base_url`` the API path
  ``/api/media/{id}`` (for someone signed in).
* ``hold``: the first message of a *video* alarm (its point's or device's driver is in
  ``media.video_drivers``, or it is a place's alarm — a confirmed fire — where such a
  point is) that has no still yet is due ``media.grace`` later, and ``watch`` makes it due
  at once when a still comes.  Every other alarm never waits.  A still that comes after the
  grace is not sent on its own: notify has no "update" message for an alarm already told
  (a second fire message for a picture would read as a second fire); the next escalation
  step and any retry carry it, and the panel shows it.
* ``read``: a still's bytes for an attachment, at most ``media.max_attachment_bytes``.
  Missing, too large or unreadable: skipped with the reason counted and logged; the
  notification goes without it.  Media never make a notification fail.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import anyio
import msgspec

from firebus.sdk import AlarmEvent, Lane, links

from .config import NotifyConfig
from .message import Message

#: the kinds of message that show the alarm's media (follow-ups and digests do not)
KINDS = frozenset({"new", "escalate"})
#: how often ``watch`` looks for a still during the grace
POLL_S = 0.1
#: at most this long for the media lookup before a send (it must not hold an alarm up)
LOOKUP_TIMEOUT_S = 2.0
SECRET_PURPOSE = "notify-media"
ROUTE = "/-/plugins/notify/media"
_SUFFIX = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "video/mp4": "mp4", "video/webm": "webm"}

LABEL = {
    "zh": {"still": "现场图片", "clip": "现场视频", "other": "附件", "attached": "现场图片见附件"},
    "en": {"still": "Still image", "clip": "Video clip", "other": "Attachment", "attached": "Still image attached"},
}


def label(language: str, key: str) -> str:
    return LABEL.get(language, LABEL["en"]).get(key) or LABEL["en"][key]


def file_name(item: dict[str, Any]) -> str:
    return f"{item.get('kind') or 'other'}-{item['id']}.{_SUFFIX.get(item.get('content_type', ''), 'bin')}"


def media_of(message: Message) -> list[dict[str, Any]]:
    """The media ``prepare`` put into a message (none for a message it did not see)."""
    items = message.data.get("media") if isinstance(message.data, dict) else None
    return [m for m in items if isinstance(m, dict) and m.get("id")] if isinstance(items, list) else []


def stills_of(message: Message) -> list[dict[str, Any]]:
    return [m for m in media_of(message) if m.get("kind") == "still" and str(m.get("content_type", "")).startswith("image/")]


def public_still(message: Message) -> dict[str, Any] | None:
    """The first still with a link anyone can open (a vendor's server fetching the picture)."""
    return next((m for m in stills_of(message) if is_public(str(m.get("url", "")))), None)


def is_public(url: str) -> bool:
    """A link a phone or a vendor's server can open (the API path needs a signed-in browser)."""
    return url.startswith(("https://", "http://"))


def public_media(message: Message) -> list[dict[str, Any]]:
    """The message's media with links anyone can open."""
    return [m for m in media_of(message) if is_public(str(m.get("url", "")))]


def media_lines(message: Message, *, skip: frozenset[str] = frozenset(), public_only: bool = True) -> list[str]:
    """"现场图片：<link>" lines for the message's media (those in ``skip`` left out)."""
    sep = "：" if message.language == "zh" else ": "
    return [f"{label(message.language, str(m.get('kind') or 'other'))}{sep}{m['url']}" for m in media_of(message)
            if m["id"] not in skip and m.get("url") and (is_public(str(m["url"])) or not public_only)]


def sign_media(key: bytes, alarm_id: str, media_id: str, expires: float) -> str:
    """A token for one medium of one alarm (``firebus.sdk.links``' format; its second field names
    the medium instead of a person)."""
    return links.sign(key, alarm_id, media_id, expires)


def verify_media(key: bytes, token: str, now: float) -> tuple[str, str, float] | None:
    """(alarm id, media id, expires) of a genuine, unexpired token; None otherwise."""
    claim = links.verify(key, token, now)
    return None if claim is None or not claim.recipient else (claim.alarm_id, claim.recipient, claim.expires)


class NotifyMedia:
    def __init__(self, core: Any, cfg: NotifyConfig, clock: Any, log: logging.Logger | Any, outbox: Any) -> None:
        self.core = core
        self.outbox = outbox
        self.cfg = cfg
        self.opts = cfg.media
        self.clock = clock
        self.log = log
        self.grace_s = cfg.media.grace_s
        self.key: bytes | None = None
        self.skipped: Counter[str] = Counter()  # reason → media left out of a message
        self.attached = 0  # stills attached to e-mails
        self.held = 0  # first messages that waited for a still
        self.released = 0  # … of which the still came within the grace
        self._watching: dict[str, float] = {}  # alarm id → end of its grace

    @property
    def store(self) -> Any:
        return getattr(self.core, "media", None)

    async def load_key(self) -> None:
        secret = getattr(self.core, "secret", None)
        if self.cfg.links.base_url and secret is not None:
            self.key = await secret(SECRET_PURPOSE)

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        self.log.warning("notify: media %s left out (%s)", detail, reason)

    # -- links -------------------------------------------------------------------------------

    def url(self, alarm_id: str, item: dict[str, Any]) -> str:
        base = self.cfg.links.base_url
        if self.key is None or not base:
            return f"/api/media/{item['id']}"
        token = sign_media(self.key, alarm_id, item["id"], self.clock.time() + self.cfg.links.ttl_s)
        return f"{base.rstrip('/')}{ROUTE}/{token}/{file_name(item)}"

    # -- before a send -----------------------------------------------------------------------

    async def prepare(self, message: Message) -> Message:
        """``message`` with its alarm's media in ``data["media"]`` (unchanged if it has none, or on
        any error: the message goes without them)."""
        if message.kind not in KINDS or not message.alarm_id or self.store is None:
            return message
        try:
            with anyio.fail_after(LOOKUP_TIMEOUT_S):
                infos = await self.store.of_alarm(message.alarm_id)
        except Exception as exc:  # TimeoutError included
            self.skip("lookup_failed", f"of alarm {message.alarm_id}: {type(exc).__name__}: {exc}")
            return message
        if not infos:
            return message
        items = []
        for info in infos:
            item = {"id": info.id, "kind": str(info.kind), "content_type": info.content_type, "ts": info.ts,
                    "bytes": info.bytes}
            item["url"] = self.url(message.alarm_id, item)
            items.append(item)
        return msgspec.structs.replace(message, data={**message.data, "media": items})

    async def read(self, item: dict[str, Any]) -> bytes | None:
        """A still's bytes for an attachment, or None (skipped, counted and logged)."""
        store = self.store
        what = f"{item.get('id')} ({item.get('content_type')}, {item.get('bytes')} bytes)"
        cap = self.opts.max_attachment_bytes
        if int(item.get("bytes") or 0) > cap:
            self.skip("too_large", f"{what} over the {cap}-byte attachment limit")
            return None
        if store is None or not hasattr(store, "get"):
            self.skip("unreadable", f"{what}: this core cannot read media")
            return None
        try:
            found = await store.get(item["id"])
            if found is None:
                self.skip("missing", f"{what}: not in the store or its file is gone")
                return None
            path = found[1]
            data: bytes = await anyio.to_thread.run_sync(lambda: path.read_bytes()[: cap + 1])
        except Exception as exc:
            self.skip("unreadable", f"{what}: {type(exc).__name__}: {exc}")
            return None
        if len(data) > cap:
            self.skip("too_large", f"{what} over the {cap}-byte attachment limit")
            return None
        if not data:
            self.skip("missing", f"{what}: empty file")
            return None
        return data

    # -- the grace for a video alarm's still --------------------------------------------------

    def is_video(self, alarm: AlarmEvent) -> bool:
        drivers = set(self.opts.video_drivers)
        registry = getattr(self.core, "registry", None)
        if not drivers or registry is None:
            return False
        try:
            if alarm.point_id:
                info = registry.point_info(alarm.point_id)
                return info is not None and info.driver in drivers
            if alarm.device_id:
                return any(p.driver in drivers for p in registry.points_of_device(alarm.device_id))
            if alarm.location_id:  # a place's alarm (a confirmed fire): a camera there may show it
                return any(p.driver in drivers for p in registry.points_at_location(alarm.location_id))
        except Exception:
            self.log.exception("notify: cannot tell whether alarm %s is a camera's", alarm.alarm_id)
        return False

    async def has_still(self, alarm_id: str) -> bool:
        store = self.store
        if store is None:
            return True  # nothing to wait for
        try:
            with anyio.fail_after(LOOKUP_TIMEOUT_S):
                return any(str(m.kind) == "still" for m in await store.of_alarm(alarm_id))
        except Exception:
            return True  # cannot tell: do not wait

    async def hold(self, alarm: AlarmEvent, entries: list[Any]) -> None:
        """A video alarm without its still yet: its first messages are due after the grace (see module doc)."""
        pending = [e for e in entries if e.status == "pending" and e.message.kind == "new"]
        if not pending or self.grace_s <= 0 or self.store is None or not self.is_video(alarm):
            return
        watching = self._watching.get(alarm.alarm_id)
        if watching is None and await self.has_still(alarm.alarm_id):
            return
        # A second route of the same alarm joins the wait already running (same deadline, one watch).
        deadline = watching if watching is not None else self.clock.time() + self.grace_s
        for entry in pending:
            entry.next_ts = max(entry.next_ts, deadline)
        if watching is None:
            self._watching[alarm.alarm_id] = deadline
            self.held += 1
            self.core.start_task(self.watch, alarm.alarm_id, deadline, name=f"notify:still:{alarm.alarm_id}")

    async def watch(self, alarm_id: str, deadline: float) -> None:
        """Until ``deadline``: a still attached makes the waiting rows of ``alarm_id`` due now."""
        try:
            while self.clock.time() < deadline:
                await self.clock.sleep(min(POLL_S, deadline - self.clock.time()))
                if self.clock.time() < deadline and await self.has_still(alarm_id):
                    await self._release(alarm_id, deadline)
                    self.released += 1
                    return
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # The rows become due at the deadline on their own: nothing is lost.
            self.log.exception("notify: watching for the still of alarm %s failed", alarm_id)
        finally:
            self._watching.pop(alarm_id, None)

    async def _release(self, alarm_id: str, deadline: float) -> None:
        now = self.clock.time()
        rows = await self.core.storage.fetchall(
            "SELECT DISTINCT channel FROM notify_outbox WHERE alarm_id = ? AND kind = 'new' AND status = 'pending' "
            "AND next_ts > ? AND next_ts <= ?", (alarm_id, now, deadline))
        await self.core.storage.execute(
            "UPDATE notify_outbox SET next_ts = ? WHERE alarm_id = ? AND kind = 'new' AND status = 'pending' "
            "AND next_ts > ? AND next_ts <= ?", (now, alarm_id, now, deadline), lane=Lane.ALARM)
        for (channel,) in rows:
            self.outbox.wake(channel)

    def metrics(self) -> dict[str, Any]:
        return {"attached": self.attached, "held": self.held, "released": self.released,
                "skipped": dict(self.skipped)}
