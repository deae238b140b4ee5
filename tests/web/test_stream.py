"""GET /api/events over a real uvicorn socket: live alarm and state events, cut to the caller's units."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from firebus.core.web import serve
from firebus.core.web import stream as stream_module

from .conftest import VALUES, wait_until

pytestmark = pytest.mark.anyio


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = anyio.Event()
        self.closed = anyio.Event()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.events if k == kind]

    async def run(self, url: str, token: str, types: str = "alarm,state,availability") -> None:
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as client:
                async with client.stream("GET", f"{url}/api/events?types={types}",
                                         headers={"Authorization": f"Bearer {token}"}) as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    kind = "message"
                    async for line in response.aiter_lines():
                        if line.startswith(": connected"):
                            self.connected.set()
                        elif line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: "):
                            self.events.append((kind, json.loads(line[6:])))
                            kind = "message"
        finally:
            self.closed.set()


async def test_events_are_scoped_per_user(site) -> None:
    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, site.core, "127.0.0.1", 0)
        duty, manager, admin = Listener(), Listener(), Listener()
        tg.start_soon(duty.run, server.url, site.tokens["duty_a"])
        tg.start_soon(manager.run, server.url, site.tokens["manager_b"])
        tg.start_soon(admin.run, server.url, site.tokens["admin"], "alarm")
        for listener in (duty, manager, admin):
            with anyio.fail_after(10):
                await listener.connected.wait()
        a, b = site.device("det-a"), site.device("det-b")
        VALUES["A1"]["smoke"] = True
        VALUES["A1"]["rc"] = 77
        await wait_until(lambda: any(e["transition"] == "new" for e in duty.of("alarm")))
        new = next(e for e in duty.of("alarm") if e["transition"] == "new")
        assert new["category"] == "fire" and new["device_id"] == a and new["unit_name"] == "Plant A"
        assert new["location_path"] == "Main hall / F1 / Switch room A"
        await wait_until(lambda: any(e["key"] == "rc" and e["value"] == 77 for e in duty.of("state")))
        await wait_until(lambda: len(admin.of("alarm")) >= 1)
        assert not admin.of("state")  # asked for alarms only
        # Office B's manager hears of Office B only: raise something there and wait for it,
        # then check nothing of plant A ever reached that stream.
        VALUES["B1"]["rc"] = 360
        await wait_until(lambda: any(e["device_id"] == b for e in manager.of("alarm")))
        await wait_until(lambda: any(e["device_id"] == b for e in manager.of("state")))
        assert all(e["device_id"] == b for e in manager.of("alarm") + manager.of("state"))
        assert all(e.get("device_id") in (a, None) for e in duty.of("alarm") + duty.of("state"))
        assert {e["device_id"] for e in admin.of("alarm")} == {a, b}
        tg.cancel_scope.cancel()  # shutting the server down ends the open streams


async def test_stream_refuses_bad_requests_and_ends_on_revocation(site, monkeypatch) -> None:
    monkeypatch.setattr(stream_module, "RECHECK_S", 0.1)
    monkeypatch.setattr(stream_module, "KEEPALIVE_S", 0.2)
    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, site.core, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/api/events")).status_code == 401
            r = await client.get("/api/events?types=alarm,gossip", headers={"Authorization": f"Bearer {site.tokens['admin']}"})
            assert r.status_code == 400 and "gossip" in r.json()["error"]["message"]
        raw, token = await site.auth.create_token("duty_a")
        listener = Listener()
        tg.start_soon(listener.run, server.url, raw)
        with anyio.fail_after(10):
            await listener.connected.wait()
        await site.auth.revoke_token(token.id)
        with anyio.fail_after(10):
            await listener.closed.wait()
        assert listener.of("logout") == [{}]
        # stop(): open streams end and serve() returns, without cancelling anything else.
        other = Listener()
        tg.start_soon(other.run, server.url, site.tokens["admin"])
        with anyio.fail_after(10):
            await other.connected.wait()
        server.stop()
        with anyio.fail_after(10):
            await other.closed.wait()
    # Every stream's bus subscription went with its connection: nothing leaks.
    await wait_until(lambda: not [n for n in site.core.bus.metrics()["subscribers"] if n.startswith("web-events-")])
