"""Centre → site commands: a real site core, real nats-server (JetStream), real PostgreSQL.

A centre user acknowledges, silences or clears an alarm of a site through the centre's
API; the site applies it with the panel's own alarm action, answers, and the new state
comes back through the journal like any local action.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import nats
import psycopg
import pytest

from firebus.plugins import federation
from firebus.plugins.federation import commands as wire
from firebus.plugins.federation.access import CentreRole, CentreUser, add_user
from firebus.plugins.federation.api import create_app
from firebus.plugins.federation.servers import free_port
from firebus.sdk import AlarmCategory, ConditionReported, Severity, new_id
from firebus.sdk.core_api import AlarmAction
from firebus.sdk.testing.harness import panel_client, start_core

from .helpers import eventually, federated_site, query, running_centre

pytestmark = pytest.mark.anyio

ALICE = CentreUser(name="alice", role=CentreRole.DUTY_OFFICER, sites=("school-01",))


@asynccontextmanager
async def site(tmp: Path, nats_url: str, extra: str = "") -> AsyncIterator[Any]:
    async with start_core(federated_site(tmp / "school-01.db", "school-01", nats_url, extra=extra),
                          plugins={"federation": federation}) as core:
        yield core


@asynccontextmanager
async def api(centre: Any, pg: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One client per centre user: alice (duty officer of school-01), sam (supervisor), bob (other site)."""
    async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
        tokens = {"alice": await add_user(conn, "alice", CentreRole.DUTY_OFFICER, ["school-01"]),
                  "sam": await add_user(conn, "sam", CentreRole.SUPERVISOR, ["school-01"]),
                  "bob": await add_user(conn, "bob", CentreRole.DUTY_OFFICER, ["mall-7"])}
    transport = httpx.ASGITransport(app=create_app(centre.desk))
    clients = {name: httpx.AsyncClient(transport=transport, base_url="http://centre",
                                       headers={"Authorization": f"Bearer {token}"})
               for name, token in tokens.items()}
    try:
        yield clients
    finally:
        for c in clients.values():
            await c.aclose()


async def raise_fire(core: Any, pg: str, subject: str = "room") -> str:
    """A real alarm at the site (the engine raises it); its id as the centre learns it."""
    core.bus.publish(ConditionReported(source="test", subject=subject, key="fire", active=True,
                                       category=AlarmCategory.FIRE, severity=Severity.FIRE,
                                       message="Fire in room 101", message_zh="101 室火警"))
    rows = await eventually(lambda: query(pg, "SELECT alarm_id FROM alarms WHERE site_id = 'school-01' AND "
                                              "transition = 'new' ORDER BY seq DESC LIMIT 1"),
                            what="the alarm at the centre")
    return str(rows[0][0])


async def answered(client: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    async def done() -> Any:
        r = await client.get(f"/api/commands/{command_id}")
        return r.json() if r.status_code == 200 and r.json()["result"] else None
    return dict(await eventually(done, timeout=20, what=f"the site's answer to {command_id}"))


async def site_history(core: Any, alarm_id: str) -> list[dict[str, Any]]:
    async with panel_client(core) as panel:
        r = await panel.get(f"/api/alarms/{alarm_id}")
        assert r.status_code == 200, r.text
        return list(r.json()["history"])


async def test_a_centre_user_acknowledges_an_alarm_and_the_site_history_names_them(
        tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url) as centre, \
            site(tmp_path, nats_server.url, extra="  commands: [acknowledge, silence]\n") as core, \
            api(centre, pg_dsn) as users:
        alarm_id = await raise_fire(core, pg_dsn)
        alice = users["alice"]
        r = await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                             json={"kind": "acknowledge", "note": "on my way / 正在处理"})
        assert r.status_code == 201, r.text
        cmd = r.json()
        assert cmd["state"] in ("sent", "applied") and cmd["issued_by"] == "alice"

        done = await answered(alice, cmd["id"])
        assert done["state"] == "applied" and done["result"]["alarm_status"] == "active_ack", done
        history = await site_history(core, alarm_id)
        acks = [h for h in history if h["transition"] == "acknowledged"]
        assert [(h["actor_kind"], h["actor"], h["detail"]) for h in acks] == \
            [("user", "centre:alice", {"note": "on my way / 正在处理"})]
        # The effect reaches the centre as any local action does: through the journal.
        await eventually(lambda: query(pg_dsn, "SELECT 1 FROM alarms_current WHERE site_id = 'school-01' AND "
                                               "alarm_id = %s AND transition = 'acknowledged' AND "
                                               "status = 'active_ack'", alarm_id),
                         what="the acknowledgement replicated to the centre")

        # The same id again: the same command back, nothing sent again.
        again = await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                 json={"kind": "acknowledge", "note": "on my way / 正在处理", "id": cmd["id"]})
        assert again.status_code == 200 and again.json()["id"] == cmd["id"]

        # Refusals, each with its reason and words in both languages.
        unknown = (await alice.post("/api/sites/school-01/alarms/NOSUCHALARM/commands",
                                    json={"kind": "silence"})).json()
        clear = (await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands", json={"kind": "clear"})).json()
        twice = (await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                  json={"kind": "acknowledge"})).json()
        got = {k: (await answered(alice, c["id"]))["result"] for k, c in
               (("unknown", unknown), ("clear", clear), ("twice", twice))}
        assert {k: (v["outcome"], v["reason"]) for k, v in got.items()} == {
            "unknown": ("refused", "unknown_alarm"), "clear": ("refused", "not_permitted"),
            "twice": ("refused", "already_done")}
        assert got["unknown"]["message_zh"] == "站点没有报警 NOSUCHALARM"
        assert got["clear"]["message"] == "the site does not accept clear from the centre"
        assert all(v["message"] and v["message_zh"] for v in got.values())

        listed = (await alice.get(f"/api/commands?site=school-01&alarm={alarm_id}")).json()
        assert listed["total"] == 3 and [i["kind"] for i in listed["items"]][-1] == "acknowledge"

        # Scoping: a supervisor reads but may not command; another site's officer sees nothing.
        denied = await users["sam"].post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                         json={"kind": "silence"})
        assert denied.status_code == 403 and denied.json()["error"]["message_zh"]
        assert (await users["sam"].get("/api/commands")).json()["total"] == 4
        hidden = await users["bob"].post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                         json={"kind": "silence"})
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "site_not_found"
        assert (await users["bob"].get(f"/api/commands/{cmd['id']}")).status_code == 404
        assert (await users["bob"].get("/api/commands")).json()["total"] == 0
        bad = await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands", json={"kind": "reset"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_field"
        anonymous = await httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(centre.desk)),
                                            base_url="http://centre").get("/api/commands")
        assert anonymous.status_code == 401


async def test_a_command_delivered_twice_applies_once(tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url) as centre, site(tmp_path, nats_server.url) as core, \
            api(centre, pg_dsn) as users:
        alarm_id = await raise_fire(core, pg_dsn)
        results: list[wire.CommandResult] = []
        federation.commands_for(core).on_result = results.append
        cmd = wire.Command(id=new_id(), site_id="school-01", kind=AlarmAction.SILENCE, alarm_id=alarm_id,
                           by="alice", role="duty_officer", issued_at=time.time(),
                           expires_at=time.time() + 3600, note="mute")
        # Two copies in the stream (as after a re-send beyond JetStream's duplicate window).
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        for copy in ("a", "b"):
            await js.publish(wire.command_subject("school-01", cmd.kind), wire.encode(cmd),
                             headers={"Nats-Msg-Id": f"{cmd.id}:{copy}"})
        await nc.close()
        await eventually(lambda: len(results) == 2, what="both copies answered")
        assert [r.outcome for r in results] == ["applied", "applied"] and results[0] == results[1]
        assert federation.commands_for(core).metrics()["repeats"] == 1
        silenced = [h for h in await site_history(core, alarm_id) if h["transition"] == "silenced"]
        assert [h["actor"] for h in silenced] == ["centre:alice"]
        # The centre keeps one answer; the command it never issued is still answered (no row).
        rows = await eventually(lambda: query(pg_dsn, "SELECT outcome FROM command_results WHERE command_id = %s",
                                              cmd.id), what="the answer at the centre")
        assert rows == [("applied",)]
        assert users  # (the API is not needed here)


async def test_commands_sent_while_the_site_is_down_apply_when_it_starts_and_old_ones_are_refused(
        tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url) as centre, api(centre, pg_dsn) as users:
        async with site(tmp_path, nats_server.url) as core:
            alarm_id = await raise_fire(core, pg_dsn)
        alice = users["alice"]
        # The site is down: the centre takes the commands and JetStream holds them.
        fresh = (await alice.post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                  json={"kind": "acknowledge", "note": "remote"})).json()
        old, _ = await centre.desk.issue(ALICE, "school-01", alarm_id, "silence", now=time.time() - 25 * 3600)
        assert fresh["state"] == old["state"] == "sent"
        assert old["expires_at"] < time.time()

        async with site(tmp_path, nats_server.url) as core:
            done = await answered(alice, fresh["id"])
            expired = await answered(alice, old["id"])
            assert done["result"]["outcome"] == "applied"
            assert (expired["result"]["outcome"], expired["result"]["reason"]) == ("refused", "expired")
            assert expired["result"]["message"].startswith("expired: issued 25.0 h ago, the limit is 24.0 h")
            assert expired["result"]["message_zh"].startswith("已过期：25.0 小时前发出")
            history = await site_history(core, alarm_id)
            assert [h["actor"] for h in history if h["transition"] == "acknowledged"] == ["centre:alice"]
            assert not [h for h in history if h["transition"] == "silenced"]


def _cli(*args: str, cwd: Path) -> dict[str, Any]:
    firebus = Path(sys.executable).parent / "firebus"
    res = subprocess.run([str(firebus), "federation", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


async def test_the_centre_cli_serves_the_api_and_the_cli_sends_and_lists(tmp_path, nats_server, pg_dsn) -> None:
    """As an operator runs it: ``firebus federation centre --http``, ``user add``, ``command``, ``commands``."""
    port = free_port()
    centre = subprocess.Popen(
        [str(Path(sys.executable).parent / "firebus"), "federation", "centre", "--pg", pg_dsn,
         "--nats", nats_server.url, "--http", f"127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert centre.stdout is not None
        line = await asyncio.to_thread(centre.stdout.readline)
        assert json.loads(line)["http"] == f"127.0.0.1:{port}"
        token = (await asyncio.to_thread(_cli, "user", "add", "--pg", pg_dsn, "--name", "alice", "--role",
                                         "duty_officer", "--site", "school-01", cwd=tmp_path))["token"]
        async with site(tmp_path, nats_server.url) as core:
            alarm_id = await raise_fire(core, pg_dsn)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         headers={"Authorization": f"Bearer {token}"}) as http:
                sent = await asyncio.to_thread(_cli, "command", "--pg", pg_dsn, "--nats", nats_server.url,
                                               "--as", "alice", "--site", "school-01", "--alarm", alarm_id,
                                               "--kind", "clear", "--note", "reset from the centre", cwd=tmp_path)
                done = await answered(http, sent["id"])
                assert done["result"]["outcome"] == "applied" and done["result"]["alarm_status"] == "cleared_unack"
            listed = await asyncio.to_thread(_cli, "commands", "--pg", pg_dsn, "--as", "alice", cwd=tmp_path)
            assert [(i["id"], i["state"], i["kind_zh"]) for i in listed["items"]] == [(sent["id"], "applied", "复位")]
            cleared = [h for h in await site_history(core, alarm_id) if h["transition"] == "cleared"]
            assert [(h["actor"], h["detail"].get("note")) for h in cleared] == \
                [("centre:alice", "reset from the centre")]
        refused = await asyncio.to_thread(
            subprocess.run, [str(Path(sys.executable).parent / "firebus"), "federation", "commands", "--pg", pg_dsn,
                             "--as", "nobody"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "没有中心用户" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        centre.send_signal(signal.SIGTERM)
        centre.wait(10)


async def test_a_command_issued_while_nats_is_down_is_sent_when_it_is_back(tmp_path, nats_server, pg_dsn) -> None:
    async with running_centre(pg_dsn, nats_server.url, resend_every_s=0.5) as centre, \
            site(tmp_path, nats_server.url) as core, api(centre, pg_dsn) as users:
        alarm_id = await raise_fire(core, pg_dsn)
        nats_server.stop()
        await eventually(lambda: not centre.nc.is_connected, what="the centre noticing NATS is gone")
        r = await users["alice"].post(f"/api/sites/school-01/alarms/{alarm_id}/commands",
                                      json={"kind": "acknowledge"})
        assert r.status_code == 201 and (r.json()["sent"], r.json()["state"]) == (False, "unsent")
        nats_server.start()
        done = await answered(users["alice"], r.json()["id"])
        assert done["sent"] and done["result"]["outcome"] == "applied"
