"""A real running core (storage, journal, alarm engine, auth, the panel on a real HTTP port)
with the supervision, inspection and notify plugins, three units under a two-level
organisation tree, their people, a hand-driven clock and a real webhook receiver."""

from __future__ import annotations

import datetime as dt
import json
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

import firebus.plugins.inspection as inspection
import firebus.plugins.notify as notify
import firebus.plugins.reports as reports
import firebus.plugins.supervision as supervision
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, serve
from firebus.sdk import ActorKind, AlarmCategory, ConditionReported, Context, ManualClock, Severity

PASSWORD = "correct horse battery staple"
TZ = ZoneInfo("Asia/Shanghai")
#: Tuesday 2026-12-01 09:00 in Shanghai
START = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ).timestamp()


class Hook:
    """A real HTTP server on a free loopback port that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def site_yaml(db: Path, hook_url: str, devices: str = "") -> str:
    return devices + f"""
site: {{name: County test, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: school
    name: No. 1 School
    kind: school
    geo: {{lat: 31.23, lon: 121.47}}
    buildings:
      - key: s-main
        name: Main
        floors:
          - key: s-1f
            name: 1F
            locations:
              - {{key: s-kitchen, name: Kitchen, kind: kitchen}}
              - {{key: s-switch, name: Switch room, kind: switch room}}
  - key: mall
    name: Riverside Mall
    kind: mall
    geo: {{lat: 31.25, lon: 121.50}}
    buildings:
      - key: m-main
        name: Mall
        floors: [{{key: m-1f, name: 1F, locations: [{{key: m-food, name: Food court, kind: kitchen}}]}}]
  - key: factory
    name: Dongfang Factory
    kind: factory
    buildings:
      - key: f-hall
        name: Hall
        floors: [{{key: f-1f, name: 1F, locations: [{{key: f-switch, name: Switch room F, kind: switch room}}]}}]
organisations:
  - key: county
    name: 某县消防救援大队
    name_en: County brigade
    kind: fire_brigade
    children:
      - {{key: town_a, name: 甲镇, name_en: Town A, kind: town, units: [school, mall]}}
      - {{key: town_b, name: 乙镇, name_en: Town B, kind: town, units: [factory]}}
# The reports plugin's tables (report_files) without its live score: the tests publish the
# UnitScored entries themselves, so no rating changes under them at a time of its choosing.
reports:
  live: {{enabled: false}}
inspection:
  tick: 1d
  hazards: {{deadline: 2d, major_deadline: 1d, urge_every: 12h, escalate_after: 24h}}
  checkpoints:
    - {{key: cp-s, name: School kitchen, location: s-kitchen, tags: [{{kind: qr, code: FB-S}}], items: [extinguisher]}}
    - {{key: cp-f, name: Factory switch room, location: f-switch, tags: [{{kind: qr, code: FB-F}}], items: [extinguisher]}}
notify:
  channels:
    - {{key: hook, type: webhook, options: {{url: "{hook_url}"}}}}
  people:
    - {{name: wang, roles: [duty_officer], units: [school], contacts: {{hook: wang}}}}
    - {{name: li, roles: [duty_officer], units: [factory], contacts: {{hook: li}}}}
  routes:
    - name: unit duty
      channels: [hook]
      categories: [supervisory]
      escalation: {{steps: [{{roles: [duty_officer]}}]}}
"""


USERS = {
    "admin": ("admin", [], []),
    "duty_school": ("duty_officer", ["school"], []),
    "manager_school": ("unit_manager", ["school"], []),
    "manager_factory": ("unit_manager", ["factory"], []),
    "inspector_a": ("fire_inspector", [], ["town_a"]),
    "supervisor_b": ("supervisor", [], ["town_b"]),
    "county": ("fire_inspector", [], ["county"]),
}


@dataclass
class Site:
    core: Any
    clock: ManualClock
    hook: Hook
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return supervision.state_for(self.core)

    @asynccontextmanager
    async def http(self) -> AsyncIterator[str]:
        """The panel on a real port while the block runs.  Not while the hand-driven clock
        settles: uvicorn's 0.1 s tick can keep ``wait_all_tasks_blocked`` from ever seeing
        every task blocked (it polls at the same 0.1 s), so tests read and write over HTTP
        in these blocks and advance the clock outside them."""
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, self.core, "127.0.0.1", 0)
            try:
                yield server.url
            finally:
                tg.cancel_scope.cancel()

    @asynccontextmanager
    async def client(self, who: str, plugin: str = "supervision") -> AsyncIterator[httpx.AsyncClient]:
        async with self.http() as url:
            async with httpx.AsyncClient(base_url=f"{url}/-/plugins/{plugin}",
                                         headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=10) as c:
                yield c

    def place(self, key: str) -> str:
        return self.core.registry.place_by_key(key).id

    def condition(self, subject: str, active: bool, *, unit: str, location: str, category: AlarmCategory,
                  severity: Severity = Severity.ALARM) -> None:
        """A test's own alarm condition, raised or cleared through the real engine."""
        self.core.bus.publish(
            ConditionReported(source="testsrc", subject=subject, key="c", active=active, category=category,
                              severity=severity, unit_id=self.place(unit), location_id=self.place(location),
                              message=f"test {subject}"),
            Context(actor=ActorKind.PLUGIN, actor_id="testsrc"))

    def alarm_of(self, subject: str) -> Any:
        found = [a for a in self.core.alarms.open_alarms() if a.subject == f"testsrc:{subject}"]
        return found[0] if found else None

    async def settle(self) -> None:
        await self.core.storage.barrier()
        await self.clock.advance(0)


async def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    with anyio.fail_after(timeout):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return result
            await anyio.sleep(0.02)


@asynccontextmanager
async def open_site(db: Path, hook: Hook, start: float = START, with_reports: bool = True,
                    devices: str = "") -> AsyncIterator[Site]:
    clock = ManualClock(start)
    loaded = load_text(site_yaml(db, hook.url("/hook"), devices), "site.yaml")
    plugins: dict[str, Any] = {"supervision": supervision, "inspection": inspection, "notify": notify}
    if devices:
        import firebus.plugins.leakage as leakage

        plugins["leakage"] = leakage
    if with_reports:
        plugins["reports"] = reports
    async with running_core(loaded, clock=clock, autoload=False, extra_plugins=plugins) as core:
        auth = AuthStore(core.storage)
        site = Site(core=core, clock=clock, hook=hook)
        for name, (role, units, orgs) in USERS.items():
            if await auth.get_user(name) is None:  # a restart on the same database keeps them
                await auth.create_user(name, role, units=units, orgs=orgs, password=PASSWORD)
            site.tokens[name], _ = await auth.create_token(name, label="test")
        yield site


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hook() -> Any:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
async def site(tmp_path: Path, hook: Hook) -> AsyncIterator[Site]:
    async with open_site(tmp_path / "fb.db", hook) as s:
        yield s
