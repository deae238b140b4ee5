"""Current values reach ``point_state`` while the core runs, every ``state_checkpoint_s``.

They were written only at stop: after a crash the whole journal since the last orderly
stop was replayed at start (months of readings on a site that never stops).  Now the
points whose value changed are written every ``state_checkpoint_s`` with the journal
position they reflect; repeats (only ``last_reported`` moves) wait for the stop.
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


def stored(db: Path, point_id: str) -> tuple[tuple[float, float] | None, int]:
    with sqlite3.connect(db, timeout=5) as conn:
        row = conn.execute("SELECT value, last_reported FROM point_state WHERE point_id = ?", (point_id,)).fetchone()
        seq = conn.execute("SELECT value FROM kv WHERE key = 'point_state_seq'").fetchone()
    return row, int(seq[0]) if seq else 0


async def test_changed_values_are_checkpointed_while_running_and_repeats_at_stop(tmp_path: Path) -> None:
    db = tmp_path / "fb.db"
    site = f"site: {{name: Checkpoint}}\nstorage: {{path: {db}, state_checkpoint_s: 0.2}}\n"
    t0 = time.time() - 60
    async with running_core(load_text(site, "site.yaml"), autoload=False) as core:
        device = await core.registry.resolve_device({"serial": "c1"}, driver="test", config_key="c1")
        await core.registry.ensure_points(device.id, [PointSpec(key="t", point_class="temperature", unit="°C"),
                                                      PointSpec(key="u", point_class="temperature", unit="°C")])
        point, other = core.registry.point(device.id, "t"), core.registry.point(device.id, "u")
        assert point is not None and other is not None
        core.ingest.apply(device, [Reading(point_key="t", value=30.0, ts=t0)])
        await core.storage.barrier()  # committed (a barrier also checkpoints: look after the next change)
        core.ingest.apply(device, [Reading(point_key="t", value=31.0, ts=t0 + 1)])
        await eventually(lambda: core.storage.last_seq > 0 and stored(db, point.id)[0] == (31.0, pytest.approx(t0 + 1)),
                         10, "the changed value in point_state while running")
        assert stored(db, point.id)[1] >= core.storage.last_seq - 1
        core.ingest.apply(device, [Reading(point_key="t", value=31.0, ts=t0 + 2)])  # a repeat
        core.ingest.apply(device, [Reading(point_key="u", value=20.0, ts=t0 + 2)])  # a change beside it
        await eventually(lambda: stored(db, other.id)[0] is not None, 10, "a periodic pass after the repeat")
        assert stored(db, point.id)[0] == (31.0, pytest.approx(t0 + 1)), "a repeat was written periodically"
    assert stored(db, point.id)[0] == (31.0, pytest.approx(t0 + 2)), "the stop wrote the repeat's time"
