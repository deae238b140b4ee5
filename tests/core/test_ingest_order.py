"""Readings that arrive out of order: the newest report is the present, older ones are history.

A broker's redelivery after a reconnect, or a gateway emptying its buffer, can hand a
point's readings over out of their own time order.  An older "normal" arriving after a
newer "alarm" must not clear the alarm, and a repeat that the late reading shows to have
been a change must not vanish from the history.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.sdk import PointSpec, Reading
from firebus.sdk.testing.waiting import eventually

pytestmark = pytest.mark.anyio


async def test_a_late_normal_reading_neither_clears_the_alarm_nor_hides_the_newer_repeat(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    site = f"site: {{name: Order}}\nstorage: {{path: {db}}}\nalarms: {{escalation: {{}}}}\n"
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "cable-1"}, driver="test", config_key="cable-1")
        await core.registry.ensure_points(device.id, [PointSpec(key="t", point_class="temperature", unit="°C")])
        point = core.registry.point(device.id, "t")
        assert point is not None
        t0 = time.time() - 60

        def apply(value: float, ts: float) -> None:
            core.ingest.apply(device, [Reading(point_key="t", value=value, ts=ts)])

        apply(90.0, t0 + 1)  # over 85 °C: an alarm
        await eventually(lambda: [a for a in core.alarms.open_alarms() if a.active], what="the alarm")
        apply(90.0, t0 + 3)  # a repeat: no row of its own
        apply(20.0, t0 + 2)  # arrives last, happened between them
        await core.storage.barrier()

        state = core.ingest.state(point.id)
        assert state is not None and state.value == 90.0 and state.last_reported == pytest.approx(t0 + 3)
        active = [a for a in core.alarms.open_alarms() if a.active]
        assert len(active) == 1, "a reading older than the newest report cleared the alarm"
        metrics = core.ingest.metrics()
        assert metrics["late"] == 1 and metrics["reordered"] == 1

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT ts, value FROM readings WHERE point_id = ? ORDER BY ts", (point.id,)).fetchall()
    assert [(round(ts / 1000 - t0), v) for ts, v in rows] == [(1, 90.0), (2, 20.0), (3, 90.0)]


async def test_a_reading_older_than_the_last_change_is_history_and_changes_nothing_else(tmp_path: Path) -> None:
    site = f"site: {{name: Order}}\nstorage: {{path: {tmp_path / 'fb.db'}}}\n"
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "cable-2"}, driver="test", config_key="cable-2")
        await core.registry.ensure_points(device.id, [PointSpec(key="t", point_class="temperature", unit="°C")])
        point = core.registry.point(device.id, "t")
        assert point is not None
        t0 = time.time() - 60
        core.ingest.apply(device, [Reading(point_key="t", value=30.0, ts=t0 + 2)])
        core.ingest.apply(device, [Reading(point_key="t", value=40.0, ts=t0 + 1)])
        await core.storage.barrier()
        state = core.ingest.state(point.id)
        assert state is not None and state.value == 30.0 and state.last_changed == pytest.approx(t0 + 2)
        assert core.ingest.metrics()["late"] == 1 and core.ingest.metrics()["reordered"] == 0
