"""The core's media store keeps the SDK's ``MediaAPI`` contract, ``get`` included (what the notify
plugin reads a still through to attach it to an e-mail)."""

from __future__ import annotations

import hashlib
import inspect
import time
from pathlib import Path

import pytest

from firebus.core.config import load_text
from firebus.core.media import MediaStore
from firebus.core.runtime import running_core
from firebus.sdk import AlarmCategory, ConditionReported, MediaAPI, MediaKind, Severity
from firebus.sdk.testing.waiting import eventually

pytestmark = pytest.mark.anyio


def test_every_method_of_the_protocol_is_there_with_its_signature() -> None:
    for name, member in inspect.getmembers(MediaAPI, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert inspect.signature(getattr(MediaStore, name)) == inspect.signature(member), name


async def test_get_gives_the_stored_bytes_of_an_alarms_still(tmp_path: Path) -> None:
    loaded = load_text(f"site: {{name: Media}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\n", "site.yaml")
    async with running_core(loaded, autoload=False) as core:
        core.bus.publish(ConditionReported(source="test", subject="room", key="fire", active=True,
                                           category=AlarmCategory.FIRE, severity=Severity.FIRE, message="fire"))
        await eventually(lambda: core.alarms.open_alarms(), what="the alarm")
        alarm_id = core.alarms.open_alarms()[0].id
        data = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
        ref = await core.media.put(data, "image/jpeg", kind=MediaKind.STILL, ts=time.time())
        await core.media.attach(alarm_id, ref.id)
        [info] = await core.media.of_alarm(alarm_id)
        got = await core.media.get(info.id)
        assert got is not None
        got_info, path = got
        assert (got_info.id, got_info.kind, got_info.content_type, got_info.bytes) == (
            ref.id, MediaKind.STILL, "image/jpeg", len(data))
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert await core.media.get("01NOSUCHMEDIUM") is None
        path.unlink()
        assert await core.media.get(ref.id) is None  # the file is gone: as unknown, never a broken path


async def test_an_alarms_media_are_found_after_a_restart_and_alarms_without_none(tmp_path: Path) -> None:
    # of_alarm answers alarms without media from memory (notify asks before every send);
    # the set of alarms with media must survive a restart, or a resent notification loses its still.
    site = f"site: {{name: Media}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\n"
    data = b"\xff\xd8\xff\xe0" + bytes(range(64)) + b"\xff\xd9"
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        for key in ("fire", "smoke"):
            core.bus.publish(ConditionReported(source="test", subject="room", key=key, active=True,
                                               category=AlarmCategory.FIRE, severity=Severity.FIRE, message=key))
        await eventually(lambda: len(core.alarms.open_alarms()) == 2, what="two alarms")
        with_media, without = (a.id for a in core.alarms.open_alarms())
        ref = await core.media.put(data, "image/jpeg", kind=MediaKind.STILL, ts=time.time())
        await core.media.attach(with_media, ref.id)
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        assert [m.id for m in await core.media.of_alarm(with_media)] == [ref.id]
        assert await core.media.of_alarm(without) == []
