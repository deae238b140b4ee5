"""GET /api/journal and its cursors: what an outside consumer reads and stores."""

from __future__ import annotations

import anyio
import pytest

from .conftest import VALUES, wait_until
import anyio.lowlevel

pytestmark = pytest.mark.anyio


async def test_outside_consumer_reads_batches_long_polls_and_stores_a_cursor(site) -> None:
    async with site.client("admin") as c:
        first = (await c.get("/api/journal", params={"after": 0, "limit": 5})).json()
        assert 0 < len(first["entries"]) <= 5
        seqs = [e["seq"] for e in first["entries"]]
        assert seqs == sorted(seqs) and seqs[0] > 0 and first["next_after"] == seqs[-1]
        assert {"seq", "type", "lane", "time", "context", "data"} <= set(first["entries"][0])

        # Long poll: nothing after the end yet; a fire alarm arrives while the request waits.
        end = first["last_seq"]
        got: dict = {}

        async def poll() -> None:
            r = await c.get("/api/journal", params={"after": end, "types": "AlarmEvent", "wait": 20})
            got.update(r.json())

        async with anyio.create_task_group() as tg:
            tg.start_soon(poll)
            await anyio.lowlevel.checkpoint()  # the request is on its way before the alarm exists
            VALUES["A1"]["smoke"] = True
            await wait_until(lambda: bool(got), timeout=20)
        entries = got["entries"]
        assert entries and all(e["type"] == "AlarmEvent" and e["seq"] > end for e in entries)
        assert entries[0]["lane"] == "alarm" and entries[0]["data"]["category"] == "fire"

        # The cursor is stored, survives a re-read and never moves back.
        mark = entries[0]["seq"]
        r = await c.put("/api/journal/cursors/centre-a", json={"seq": mark})
        assert r.status_code == 200 and r.json() == {"name": "centre-a", "seq": mark}
        r = await c.put("/api/journal/cursors/centre-a", json={"seq": mark - 1})
        assert r.json()["seq"] == mark
        assert (await c.get("/api/journal/cursors")).json()["cursors"] == {"centre-a": mark}


async def test_journal_is_for_system_roles_and_bad_input_is_named(site) -> None:
    async with site.client("duty_a") as c:
        r = await c.get("/api/journal")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with site.client("admin") as c:
        for params, word in (({"after": "x"}, "after"), ({"limit": 0}, "limit"), ({"wait": 99}, "wait"),
                             ({"lanes": "fast"}, "lane")):
            r = await c.get("/api/journal", params=params)
            assert r.status_code == 400 and word in r.json()["error"]["message"], params
        r = await c.put("/api/journal/cursors/bad name!", json={"seq": 1})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_name"
        r = await c.put("/api/journal/cursors/x", json={"seq": 10**12})
        assert r.status_code == 400 and "beyond" in r.json()["error"]["message"]
        r = await c.put("/api/journal/cursors/x", json={"seq": "3"})
        assert r.status_code == 400
