"""Links and processes going away: nothing lost, nothing duplicated, alarms first."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firebus.plugins import federation
from firebus.sdk import Lane

from .helpers import (centre_seqs, eventually, federated_site, fire, query, reading, replicated,
                      running_centre, running_site, site_seqs)

pytestmark = pytest.mark.anyio


async def test_nats_down_the_site_runs_alone_then_catches_up_alarms_first(tmp_path, nats_server, pg_dsn) -> None:
    from firebus.sdk.testing.harness import start_core

    site = federated_site(tmp_path / "s.db", "mall-7", nats_server.url, extra="  max_unacked: 300\n")
    async with running_centre(pg_dsn, nats_server.url) as centre, \
            start_core(site, plugins={"federation": federation}) as core:
        pub = federation.publisher_for(core)
        for i in range(50):
            last = core.bus.publish(reading(i))
        await replicated(core, pg_dsn, "mall-7", last, what="the first readings")

        nats_server.stop()
        await eventually(lambda: not pub.connected, what="the site noticing the link is down")
        before = core.journal.last_seq
        for i in range(50, 2050):
            core.bus.publish(reading(i))
        alarm = core.bus.publish(fire("A2"))
        for i in range(2050, 4050):
            last = core.bus.publish(reading(i))
        # The site keeps running on its own: everything is committed to its journal.
        await eventually(lambda: core.journal.last_seq >= before + 4001, what="the site journalling alone")
        assert pub.acked <= 50 + 5 and (await centre_seqs(pg_dsn, "mall-7"))[-1] <= before

        acks: list[int] = []
        pub.on_ack = acks.append
        nats_server.start()
        await replicated(core, pg_dsn, "mall-7", last, timeout=40, what="the catch-up")
        outage = [s for s in acks if s > before]
        assert alarm.seq in outage[:5], "the fire alarm recorded during the outage goes out first"
        telemetry_of_outage = [s for s in outage if s != alarm.seq]
        assert len(telemetry_of_outage) >= 4000
        rows = await query(pg_dsn, "SELECT count(*), count(DISTINCT (site_id, seq)) FROM telemetry")
        assert rows[0][0] == rows[0][1] == 4050
        links = await query(pg_dsn, "SELECT data->>'up' FROM journal WHERE type = 'LinkChanged' ORDER BY seq")
        assert [r[0] for r in links][-2:] == ["false", "true"]
        assert centre.errors == 0 or "nats" in centre.last_error.lower() or centre.last_error


def _start_centre_cli(pg: str, nats_url: str, cwd: Path) -> subprocess.Popen[str]:
    # The installed console script, run outside the source tree (as an operator would).
    firebus = Path(sys.executable).parent / "firebus"
    proc = subprocess.Popen(
        [str(firebus), "federation", "centre", "--pg", pg, "--nats", nats_url, "--ack-wait", "2"],
        cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert json.loads(line)["ready"], proc.stderr.read() if proc.stderr else ""
    return proc


async def test_centre_killed_mid_stream_restarts_without_loss_or_duplicates(tmp_path, nats_server, pg_dsn) -> None:
    centre = await asyncio.to_thread(_start_centre_cli, pg_dsn, nats_server.url, tmp_path)
    try:
        async with running_site(tmp_path, "factory-3", nats_server.url) as core:
            sent: list = []

            async def feed() -> None:
                for i in range(6000):
                    sent.append(core.bus.publish(reading(i, point=f"p{i % 50}")))
                    if i % 200 == 0:
                        await asyncio.sleep(0.01)

            feeder = asyncio.create_task(feed())
            await eventually(lambda: _count(pg_dsn), what="the centre ingesting")
            centre.send_signal(signal.SIGKILL)  # between a COMMIT and its ack, maybe: no matter
            centre.wait()
            await feeder
            centre = await asyncio.to_thread(_start_centre_cli, pg_dsn, nats_server.url, tmp_path)
            await replicated(core, pg_dsn, "factory-3", sent[-1], timeout=40, what="the centre catching up")
            rows = await query(pg_dsn, "SELECT count(*), count(DISTINCT (site_id, seq)) FROM telemetry")
            assert rows[0][0] == rows[0][1] == 6000
            latest = await query(pg_dsn, "SELECT count(*), max(num) FROM latest_state WHERE site_id = 'factory-3'")
            assert latest == [(50, 5999.0)]
    finally:
        centre.send_signal(signal.SIGTERM)
        centre.wait(10)


async def _count(pg: str) -> int:
    return (await query(pg, "SELECT count(*) FROM telemetry"))[0][0]


async def test_two_sites_and_a_site_restart(tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url):
        async with running_site(tmp_path, "site-a", nats_server.url) as a, \
                running_site(tmp_path, "site-b", nats_server.url) as b:
            for i in range(300):
                a.bus.publish(reading(i))
                last_b = b.bus.publish(reading(i, point="q1"))
            last_a = a.bus.publish(fire("FA"))
            await eventually(lambda: last_a.seq and last_b.seq, what="both sites committing")
            a_seqs = await site_seqs(a)
            # site-b's entries all reach the centre; site-a stops at once (cursor saved at stop)
            await replicated(b, pg_dsn, "site-b", last_b, what="site-b replicated")
        async with running_site(tmp_path, "site-a", nats_server.url) as a:
            assert (await site_seqs(a))[:len(a_seqs)] == a_seqs
            for i in range(300, 400):
                last_a = a.bus.publish(reading(i))
            await replicated(a, pg_dsn, "site-a", last_a, what="site-a after its restart")
        sites = await query(pg_dsn, "SELECT site_id, count(*) FROM telemetry GROUP BY 1 ORDER BY 1")
        assert sites == [("site-a", 400), ("site-b", 300)]
        alarms = await query(pg_dsn, "SELECT site_id, alarm_id, transition, rule FROM alarms_current")
        assert ("site-a", "FA", "new", "smoke") in alarms, alarms
        assert Lane.ALARM == "alarm"
