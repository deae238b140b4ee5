"""The media quota (``storage.media_quota_mb``): past it the oldest media no alarm needs are
deleted — unattached ones first, then those of closed non-fire alarms — never a fire alarm's,
an open alarm's or one an alarm being raised may still claim."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from firebus.core.config import load_text
from firebus.core.media import MediaStore
from firebus.core.runtime import running_core
from firebus.sdk import AlarmCategory, ConditionReported, MediaKind, Severity
from firebus.sdk.testing.waiting import eventually

pytestmark = pytest.mark.anyio

KB = 1024


def jpeg(n: int, tag: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes([tag]) * (n - 6) + b"\xff\xd9"


async def raise_alarm(core, key: str, category: AlarmCategory) -> str:
    severity = Severity.FIRE if category is AlarmCategory.FIRE else Severity.FAULT
    core.bus.publish(ConditionReported(source="test", subject="room", key=key, active=True, category=category,
                                       severity=severity, message=key))
    await eventually(lambda: [a for a in core.alarms.open_alarms() if key in a.message], what=f"alarm {key}")
    return next(a.id for a in core.alarms.open_alarms() if key in a.message)


async def close_alarm(core, alarm_id: str, key: str, category: AlarmCategory) -> None:
    core.bus.publish(ConditionReported(source="test", subject="room", key=key, active=False, category=category,
                                       severity=Severity.FAULT, message=key))
    await eventually(lambda: not next(a for a in core.alarms.open_alarms() if a.id == alarm_id).active,
                     what=f"alarm {key} cleared")
    await core.alarms.acknowledge(alarm_id, "duty")
    await core.storage.barrier()


async def test_quota_deletes_what_no_alarm_needs_oldest_first_and_never_a_fire_alarms(tmp_path: Path) -> None:
    site = f"site: {{name: Quota}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\n"
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        fire = await raise_alarm(core, "fire", AlarmCategory.FIRE)
        fault_closed = await raise_alarm(core, "fault-a", AlarmCategory.FAULT)
        fault_open = await raise_alarm(core, "fault-b", AlarmCategory.FAULT)
        clock = [time.time()]
        media = MediaStore(core.storage, tmp_path / "media", now=lambda: clock[0], offer_window_s=300,
                           quota_bytes=20 * KB)
        await media.load()

        async def put(tag: int, alarm_id: str | None = None) -> str:
            ref = await media.put(jpeg(4 * KB, tag), "image/jpeg", kind=MediaKind.STILL, ts=clock[0])
            if alarm_id:
                await media.attach(alarm_id, ref.id)
            clock[0] += 1
            return ref.id

        unattached_old = await put(1)
        fire_still = await put(2, fire)
        closed_still = await put(3, fault_closed)
        open_still = await put(4, fault_open)
        await close_alarm(core, fault_closed, "fault-a", AlarmCategory.FAULT)
        clock[0] += 600  # all of the above are older than the offer window now
        fire_still_2 = await put(5, fire)
        assert media.total_bytes == 20 * KB and await media.enforce_quota() == 0  # at the quota: nothing to do
        young = await put(6)  # 24 KiB: 4 KiB over → the oldest unattached medium goes, nothing else
        await media.enforce_quota()
        await core.storage.barrier()
        exists = {mid: await media.get(mid) is not None
                  for mid in (unattached_old, fire_still, closed_still, open_still, fire_still_2, young)}
        assert exists == {unattached_old: False, fire_still: True, closed_still: True, open_still: True,
                          fire_still_2: True, young: True}
        assert media.total_bytes == 20 * KB and not media.over_quota

        # 12 KiB more: the closed fault's still goes next (the young unattached one may still be
        # claimed by an alarm being raised); then only fire, open and young media are left.
        for tag in (7, 8, 9):
            await put(tag, fire)
        await media.enforce_quota()
        await core.storage.barrier()
        assert await media.get(closed_still) is None
        assert [m.id for m in await media.of_alarm(fault_closed)] == []
        assert await media.get(open_still) is not None and await media.get(young) is not None
        assert [m.id for m in await media.of_alarm(fire)][:2] == [fire_still, fire_still_2]
        assert media.over_quota and media.total_bytes == 28 * KB
        assert media.metrics()["quota_purged"] == 2
        files = sorted(p.name for p in (tmp_path / "media").rglob("*.jpg"))
        assert len(files) == 7  # the two deleted media took their files with them

        # a restart counts the stored bytes again from the index
        again = MediaStore(core.storage, tmp_path / "media", quota_bytes=20 * KB)
        await again.load()
        assert again.total_bytes == 28 * KB


async def test_the_site_file_sets_the_quota_and_storing_over_it_starts_the_clean_up(tmp_path: Path) -> None:
    site = (f"site: {{name: Quota}}\nstorage: {{path: {tmp_path / 'fb.db'}, media_quota_mb: 0.01, "
            f"media_unattached_hours: 0.5}}\n")
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        assert core.media.quota_bytes == int(0.01 * 1024 * 1024) and core.media.unattached_s == 1800
        core.media.offer_window_s = 0.0  # nothing here waits for an alarm to claim it
        first = await core.media.put(jpeg(6 * KB, 1), "image/jpeg", kind=MediaKind.STILL)
        second = await core.media.put(jpeg(6 * KB, 2), "image/jpeg", kind=MediaKind.STILL)  # 12 KiB > 10.24
        await eventually(lambda: core.media.quota_purged == 1, what="the quota enforced after the put")
        assert await core.media.get(first.id) is None and await core.media.get(second.id) is not None
