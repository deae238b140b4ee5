"""The alarms the plugin raises reach people through the notify plugin like any other alarm:
a missed patrol goes to the unit's duty officer; an escalated hazard to the supervisor."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import firebus.plugins.notify as notify
import pytest
from firebus.sdk.testing.waiting import eventually as wait_until

from .conftest import INSPECTION, local, open_site

pytestmark = pytest.mark.anyio


class Hook:
    """A real HTTP server on a free loopback port that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, who: str) -> list[dict]:
        return [b for b in self.bodies if b.get("recipient") == who or who in json.dumps(b, ensure_ascii=False)]


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


async def test_missed_patrol_and_escalated_hazard_are_notified(tmp_path, hook) -> None:
    section = INSPECTION + f"""
notify:
  channels:
    - {{key: duty, type: webhook, options: {{url: "{hook.url('/duty')}"}}}}
    - {{key: sup, type: webhook, options: {{url: "{hook.url('/sup')}"}}}}
  people:
    - {{name: wang, roles: [duty_officer], units: [office-b], contacts: {{duty: wang}}}}
    - {{name: zhao, roles: [supervisor], contacts: {{sup: zhao}}}}
  routes:
    - name: patrols
      channels: [duty]
      categories: [supervisory]
      escalation: {{steps: [{{roles: [duty_officer]}}]}}
    - name: escalated hazards
      channels: [sup]
      categories: [supervisory]
      min_severity: fault
      escalation: {{steps: [{{roles: [supervisor]}}]}}
"""
    async with open_site(tmp_path / "fb.db", section, extra={"notify": notify}) as site:
        await site.clock.advance_to(local(1, 12, 0))  # office-b's 08:00 patrol (4 h) was not done
        await wait_until(lambda: len(hook.bodies) == 1)
        [body] = hook.bodies
        assert "Server room B" in json.dumps(body, ensure_ascii=False)
        async with site.client("manager_b") as c:
            r = await c.post("/api/hazards", json={"description": "sprinkler valve closed", "location": "room-b"})
            assert r.status_code == 201
        await site.clock.advance(2 * 86400)  # the deadline: overdue, the unit's duty channel is told

        def about(channel: str) -> list[str]:
            return [b["text"] for b in hook.bodies if b["channel"] == channel and "sprinkler valve closed" in b["text"]]

        await wait_until(lambda: len(about("duty")) == 1)
        assert about("sup") == [] and "rectification overdue" in about("duty")[0]
        await site.clock.advance(86400)  # a day late: escalated, and the supervisors' channel is told
        await wait_until(lambda: len(about("sup")) == 1)
        assert "escalated" in about("sup")[0]
        # (notify's zh template quotes the alarm's English message, not message_zh: reported to its owner)
        # the patrol alarms (severity supervisory) never went to the supervisors' channel
        assert {b["channel"] for b in hook.bodies if "patrol" in b["text"]} == {"duty"}
