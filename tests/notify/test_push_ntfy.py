"""The ntfy-compatible push stream, on the real core behind a real uvicorn socket.

Clients here are what the ntfy app does: one long GET of ``/<topic>/json`` (or ``/sse``,
``/ws``) with Basic or Bearer credentials, and a reconnect with ``since=<last id>``.
Timing is asserted in wall-clock time (the core's clock is a ManualClock for escalation).
"""

from __future__ import annotations

import base64
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx
import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, serve
from firebus.plugins import notify
from firebus.sdk import AlarmCategory, AlarmEvent, AlarmTransition, ManualClock, Severity, links

from .conftest import START

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
BASE = "https://fire.example.org"


def site_yaml(db: Path, *, repeat_minutes: float = 0, retention: str = "7d", keepalive: str = "45s",
              extra_channels: str = "", extra_contacts: str = "", extra_route_channels: str = "") -> str:
    return f"""
site: {{name: push test, language: zh, timezone: Asia/Shanghai}}
storage: {{path: {db}, synchronous: NORMAL}}
plugins: {{allow: [notify]}}
units:
  - key: unit-a
    name: 一号楼
    buildings:
      - key: b1
        floors: [{{key: f2, name: 2F, locations: [{{key: kitchen, name: 2层厨房}}]}}]
notify:
  links: {{base_url: "{BASE}", ttl: 12h}}
  channels:
    - {{key: push, type: ntfy, options: {{retention: {retention}, keepalive: {keepalive}}}}}
{extra_channels}
  people:
    - {{name: 王值班, user: wang, roles: [duty_officer], units: [unit-a], contacts: {{push: fire-wang{extra_contacts}}}}}
    - {{name: li, roles: [unit_manager], units: [unit-a], contacts: {{push: fire-li}}}}
  routes:
    - name: fire
      channels: [push{extra_route_channels}]
      escalation:
        steps: [{{roles: [duty_officer]}}]
        repeat_minutes: {repeat_minutes}
        max_repeats: 3
"""


@dataclass
class PushSite:
    core: Any
    clock: ManualClock
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def fire(self, alarm_id: str, transition: AlarmTransition = AlarmTransition.NEW, **kw: Any) -> None:
        unit = self.core.registry.place_by_key("unit-a")
        self.core.bus.publish(AlarmEvent(
            alarm_id=alarm_id, transition=transition, category=AlarmCategory.FIRE, severity=Severity.FIRE,
            rule="smoke", unit_id=unit.id, location_id=self.core.registry.place_by_key("kitchen").id,
            message="烟感报警", ts=self.clock.time(), **kw))

    def topic_url(self, topic: str, fmt: str = "json") -> str:
        return f"{self.url}/-/plugins/notify/ntfy/{topic}/{fmt}"


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@asynccontextmanager
async def open_site(tmp_path: Path, **kw: Any) -> AsyncIterator[PushSite]:
    clock = ManualClock(START)
    async with running_core(load_text(site_yaml(tmp_path / "fb.db", **kw), "site.yaml"), clock=clock) as core:
        auth = AuthStore(core.storage)
        for name, role in (("wang", "duty_officer"), ("li", "unit_manager"), ("admin", "admin")):
            if await auth.get_user(name) is None:  # a restart on the same database keeps them
                await auth.create_user(name, role, units=[] if role == "admin" else ["unit-a"], password=PASSWORD)
        service = notify.service_for(core)
        assert service is not None
        with anyio.fail_after(10):
            await service.wait_ready()
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, core, "127.0.0.1", 0)
            site = PushSite(core, clock, server.url)
            for name in ("wang", "admin"):
                site.tokens[name], _ = await auth.create_token(name, label="ntfy")
            try:
                yield site
            finally:
                server.stop()


class Subscriber:
    """A real streaming HTTP client on ``/<topic>/json`` that records events with their arrival time."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.opened = anyio.Event()
        self.status = 0
        self.changed = anyio.Event()

    def messages(self) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["event"] == "message"]

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60)) as client:
            async with client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                assert response.headers["content-type"].startswith("application/x-ndjson")
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    self.events.append((time.monotonic(), event))
                    if event["event"] == "open":
                        self.opened.set()
                    self.changed.set()
                    self.changed = anyio.Event()

    async def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await self.changed.wait()


async def poll(site: PushSite, topic: str, since: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(site.topic_url(topic), params={"poll": "1", "since": since},
                             headers=headers if headers is not None else basic("wang"))
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines() if line]


async def test_a_subscriber_gets_the_fire_alarm_within_2s_and_catches_up_after_a_reconnect(tmp_path) -> None:
    async with open_site(tmp_path) as site:
        async with anyio.create_task_group() as tg:
            sub = Subscriber(site.topic_url("fire-wang"), basic("wang"))
            tg.start_soon(sub.run)
            with anyio.fail_after(10):
                await sub.opened.wait()
            sent = time.monotonic()
            site.fire("A1")
            await sub.wait(lambda: sub.messages())
            latency = sub.events[-1][0] - sent
            print(f"\nntfy stream: fire alarm reached the subscriber {latency * 1000:.0f} ms after the alarm")
            assert latency < 2.0
            tg.cancel_scope.cancel()  # the phone loses its connection

        [open_event] = [e for _, e in sub.events if e["event"] == "open"]
        assert set(open_event) == {"id", "time", "event", "topic"} and open_event["topic"] == "fire-wang"
        [msg] = sub.messages()
        assert set(msg) == {"id", "time", "expires", "event", "topic", "title", "message", "priority", "tags", "click"}
        assert msg["topic"] == "fire-wang" and msg["priority"] == 5 and "fire" in msg["tags"]
        assert msg["time"] == int(START) and msg["expires"] == int(START) + 7 * 86400
        assert msg["title"].startswith("【火警】") and "2层厨房" in msg["title"]
        assert msg["click"].startswith(f"{BASE}/-/plugins/app/a/")
        assert f"查看告警：{msg['click']}" in msg["message"]  # the text carries the link too
        claim = links.verify(await site.core.secret("links"), msg["click"].rsplit("/", 1)[1], START)
        assert claim is not None and claim.alarm_id == "A1" and claim.recipient == "wang"
        assert claim.expires == START + 12 * 3600

        site.fire("A2")  # while the phone is offline
        with anyio.fail_after(10):
            while len(await poll(site, "fire-wang", "all")) < 2:
                await anyio.sleep(0.02)
        missed = await poll(site, "fire-wang", msg["id"])
        assert [m["message"].count("A2") > 0 for m in missed] == [True]
        assert [m["id"] for m in await poll(site, "fire-wang", "all")][0] == msg["id"]
        assert len(await poll(site, "fire-wang", str(int(START)))) == 2  # a unix time
        assert len(await poll(site, "fire-wang", "10m")) == 2  # a duration
        assert [m["id"] for m in await poll(site, "fire-wang", "latest")] == [missed[0]["id"]]

        # A live reconnect with since= replays first, then streams on.
        async with anyio.create_task_group() as tg:
            again = Subscriber(site.topic_url("fire-wang") + f"?since={msg['id']}", basic("wang"))
            tg.start_soon(again.run)
            await again.wait(lambda: len(again.messages()) == 1)
            site.fire("A3")
            await again.wait(lambda: len(again.messages()) == 2)
            assert [e["event"] for _, e in again.events][0] == "open"
            tg.cancel_scope.cancel()


async def test_only_the_persons_user_or_an_admin_reads_a_topic(tmp_path) -> None:
    async with open_site(tmp_path) as site:
        site.fire("A1")
        with anyio.fail_after(10):
            while not await poll(site, "fire-wang", "all"):
                await anyio.sleep(0.02)
        ok = [basic("wang"), {"Authorization": f"Bearer {site.tokens['wang']}"}, basic("", site.tokens["wang"]),
              basic("admin"), basic("anything", site.tokens["admin"])]
        for headers in ok:
            assert len(await poll(site, "fire-wang", "all", headers)) == 1, headers
        async with httpx.AsyncClient(timeout=10) as client:
            for headers, status in ((basic("li"), 403), (basic("wang", "wrong"), 403), ({}, 403),
                                    ({"Authorization": "Basic !!"}, 403)):
                r = await client.get(site.topic_url("fire-wang"), params={"poll": 1}, headers=headers)
                assert r.status_code == status, (headers, r.text)
            r = await client.get(site.topic_url("fire-wang"), params={"poll": 1}, headers=basic("li"))
            assert r.json()["code"] == 40301 and "not yours" in r.json()["error"]
            r = await client.get(site.topic_url("fire-wang,fire-li"), params={"poll": 1}, headers=basic("wang"))
            assert r.status_code == 403  # one topic of several that is not hers refuses all
            r = await client.get(site.topic_url("fire-wang", "auth"), headers=basic("wang"))
            assert r.status_code == 200 and r.json() == {"success": True}
            r = await client.get(site.topic_url("bad topic!", "auth"), headers=basic("admin"))
            assert r.status_code == 400 and "invalid topic" in r.json()["error"]


async def test_sse_and_raw_follow_ntfys_formats_and_keepalives_flow(tmp_path) -> None:
    async with open_site(tmp_path, keepalive="0.2s") as site:
        site.fire("A1")
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=10)) as client:
            with anyio.fail_after(10):
                while not await poll(site, "fire-wang", "all"):
                    await anyio.sleep(0.02)
            async with client.stream("GET", site.topic_url("fire-wang", "sse") + "?since=all",
                                     headers=basic("wang")) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                lines: list[str] = []
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith("event: keepalive"):
                        break
            assert lines[0] == "event: open" and json.loads(lines[1][6:])["event"] == "open"
            data = next(json.loads(x[6:]) for x in lines if x.startswith("data: ") and '"message"' in x)
            assert data["event"] == "message" and data["priority"] == 5
            message_index = next(i for i, x in enumerate(lines) if x.startswith("data: ") and '"message"' in x)
            assert not lines[message_index - 1].startswith("event:")  # ntfy: message events carry no event line
            r = await client.get(site.topic_url("fire-wang", "raw"), params={"poll": 1}, headers=basic("wang"))
            assert r.headers["content-type"].startswith("text/plain")
            [text] = r.text.splitlines()
            assert "火警" in text and "\n" not in text


async def test_websocket_stream_sends_open_and_the_alarm(tmp_path) -> None:
    import wsproto
    from wsproto.events import AcceptConnection, CloseConnection, Request, RejectConnection, TextMessage

    async def ws_events(path: str, headers: dict[str, str], want: int) -> list[Any]:
        host, port = site.url.removeprefix("http://").split(":")
        out: list[Any] = []
        async with await anyio.connect_tcp(host, int(port)) as sock:
            conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            await sock.send(conn.send(Request(host=host, target=path,
                                              extra_headers=[(k.encode(), v.encode()) for k, v in headers.items()])))
            with anyio.fail_after(10):
                while len(out) < want:
                    conn.receive_data(await sock.receive())
                    for event in conn.events():
                        if isinstance(event, TextMessage):
                            out.append(json.loads(event.data))
                        elif isinstance(event, (RejectConnection, CloseConnection)):
                            return [event]
                        elif isinstance(event, AcceptConnection):
                            if want == 2 and not out:
                                site.fire("A1")
        return out

    async with open_site(tmp_path) as site:
        opened, message = await ws_events("/-/plugins/notify/ntfy/fire-wang/ws", basic("wang"), 2)
        assert opened["event"] == "open" and message["event"] == "message" and message["priority"] == 5
        [refused] = await ws_events("/-/plugins/notify/ntfy/fire-wang/ws", basic("li"), 1)
        assert type(refused).__name__ in ("RejectConnection", "CloseConnection")


async def test_an_unacknowledged_fire_alarm_is_pushed_again_until_handled(tmp_path) -> None:
    async with open_site(tmp_path, repeat_minutes=2) as site:
        async with anyio.create_task_group() as tg:
            sub = Subscriber(site.topic_url("fire-wang"), basic("wang"))
            tg.start_soon(sub.run)
            with anyio.fail_after(10):
                await sub.opened.wait()
            site.fire("A1")
            await sub.wait(lambda: len(sub.messages()) == 1)
            await site.clock.advance(120)  # nobody acknowledged: the step repeats
            await sub.wait(lambda: len(sub.messages()) == 2)
            await site.clock.advance(120)
            await sub.wait(lambda: len(sub.messages()) == 3)
            repeat = sub.messages()[1]
            assert repeat["title"].startswith("【升级】【火警】") and repeat["priority"] == 5
            assert repeat["id"] != sub.messages()[0]["id"] and repeat["click"].startswith(BASE)
            site.fire("A1", AlarmTransition.ACKNOWLEDGED, status="active_ack")
            service = notify.service_for(site.core)
            with anyio.fail_after(10):
                while any(k[0] == "A1" for k in service.tracked):
                    await anyio.sleep(0.02)
            await site.clock.advance(600)
            await site.core.storage.barrier()
            rows = await site.core.storage.fetchall(
                "SELECT count(*) FROM notify_outbox WHERE alarm_id = 'A1' AND channel = 'push'")
            assert rows[0][0] == 3  # acknowledged: no further pushes
            tg.cancel_scope.cancel()
        assert len(sub.messages()) == 3


async def test_messages_are_kept_for_the_retention_only(tmp_path) -> None:
    async with open_site(tmp_path, retention="1h") as site:
        site.fire("A1")
        with anyio.fail_after(10):
            while not await poll(site, "fire-wang", "all"):
                await anyio.sleep(0.02)
        await site.clock.advance(3601)
        assert await poll(site, "fire-wang", "all") == []
        service = notify.service_for(site.core)
        await service.channels.get("push").notifier.purge(site.clock.time())
        assert (await site.core.storage.fetchone("SELECT count(*) FROM notify_ntfy"))[0] == 0
