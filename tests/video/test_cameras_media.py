"""The core's media store (``core.media``) on a real core: what it refuses, what it keeps."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.sdk import AlarmCategory, ConditionReported, MediaError, MediaKind, Severity

from .camera_site import wait_until

pytestmark = pytest.mark.anyio

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"


async def _fire_alarm(core: Any) -> str:
    core.bus.publish(ConditionReported(source="test", subject="room", key="fire", active=True,
                                       category=AlarmCategory.FIRE, severity=Severity.FIRE, message="fire"))
    await wait_until(lambda: any(a.rule == "test.fire" for a in core.alarms.open_alarms()))
    return next(a.id for a in core.alarms.open_alarms() if a.rule == "test.fire")


async def test_media_are_refused_with_a_reason_and_only_unattached_ones_are_purged(tmp_path: Path) -> None:
    loaded = load_text(f"site: {{name: Media}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\n", "site.yaml")
    async with running_core(loaded, autoload=False) as core:
        media = core.media
        with pytest.raises(MediaError, match="content type 'text/html'"):
            await media.put(b"<script>", "text/html")
        with pytest.raises(MediaError, match="no bytes"):
            await media.put(b"", "image/jpeg")

        alarm_id = await _fire_alarm(core)
        kept = await media.put(JPEG, "image/jpeg", kind=MediaKind.STILL, ts=time.time())
        loose = await media.put(JPEG, "image/jpeg")
        clip_file = tmp_path / "clip.mp4"
        clip_file.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
        clip = await media.put(clip_file, "video/mp4", kind=MediaKind.CLIP)
        assert not clip_file.exists()  # moved into the store, not copied
        await media.attach(alarm_id, kept.id)
        await media.attach(alarm_id, kept.id)  # idempotent
        await media.attach(alarm_id, clip.id)
        with pytest.raises(MediaError, match="no alarm"):
            await media.attach("01NOPE", loose.id)
        with pytest.raises(MediaError, match="no medium"):
            await media.attach(alarm_id, "01NOPE")

        assert [m.id for m in await media.of_alarm(alarm_id)] == [kept.id, clip.id]
        assert await media.alarms_of(kept.id) == [alarm_id]
        files = {m: (await media.get(m))[1] for m in (kept.id, loose.id, clip.id)}
        assert all(p.is_file() and p.is_relative_to(core.db_path.parent / "media") for p in files.values())

        # Two days on: the medium no alarm shows is gone (row and file); the fire alarm's stay.
        media.now = lambda: time.time() + 2 * 86400
        assert await media.purge() == 1
        assert await media.get(loose.id) is None and not files[loose.id].exists()
        assert (await media.get(kept.id)) is not None and (await media.get(clip.id)) is not None
