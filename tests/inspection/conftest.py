"""A real running core (storage, journal, alarm engine, web app, auth) with the inspection plugin,
on a hand-driven clock, with two units and their people."""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import firebus.plugins.inspection as inspection
import httpx
import pytest
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app, web_plugin
from firebus.sdk import ManualClock

PASSWORD = "correct horse battery staple"
TZ = ZoneInfo("Asia/Shanghai")
#: 2026-12-01 07:00 in Shanghai: an hour before the morning patrol
START = dt.datetime(2026, 12, 1, 7, 0, tzinfo=TZ).timestamp()


def local(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=TZ).timestamp()


INSPECTION = """
inspection:
  tick: 1d
  hazards: {deadline: 2d, major_deadline: 1d, urge_every: 12h, escalate_after: 24h}
  checkpoints:
    - key: cp-a1
      name: Switch room A
      location: room-a
      tags: [{kind: qr, code: FB-A1}, {kind: nfc, code: "04:A2:19:7C"}]
      items: [extinguisher, electrical_box, fire_door]
    - key: cp-a2
      name: Pump room A
      location: pump-a
      tags: [{kind: rfid, code: "E2000017221101441890"}]
      items: [pump, sprinkler_valve]
    - key: cp-b1
      name: Server room B
      location: room-b
      tags: [{kind: qr, code: FB-B1}]
      items: [extinguisher, emergency_lighting]
  plans:
    - {key: daily-a, name: Morning patrol A, checkpoints: [cp-a1, cp-a2], schedule: {every: daily, at: "08:00", within: 10h}}
    - {key: daily-b, name: Morning patrol B, checkpoints: [cp-b1], schedule: {every: daily, at: "08:00", within: 4h}}
"""


def site_yaml(db: Path, inspection_section: str = INSPECTION) -> str:
    return f"""
site: {{name: Test site, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: plant-a
    name: Plant A
    buildings:
      - key: a-main
        name: Main hall
        floors:
          - key: a-f1
            name: F1
            level: 1
            locations: [{{key: room-a, name: Switch room A}}, {{key: pump-a, name: Pump room}}]
  - key: office-b
    name: Office B
    buildings:
      - key: b-tower
        name: Tower
        floors: [{{key: b-f3, name: F3, level: 3, locations: [{{key: room-b, name: Server room B}}]}}]
{inspection_section}
"""


ROLES = {
    "admin": ("admin", []),
    "duty_a": ("duty_officer", ["plant-a"]),
    "manager_a": ("unit_manager", ["plant-a"]),
    "manager_b": ("unit_manager", ["office-b"]),
    "supervisor": ("supervisor", ["plant-a", "office-b"]),
}


def web_plugins() -> dict[str, Any]:
    """The web tables, unless the runtime already applies them (see tests/web/conftest.py)."""
    import inspect

    from firebus.core import runtime

    source = inspect.getsource(runtime)
    return {} if ("WEB_MIGRATIONS" in source or "web_plugin" in source) else {"web": web_plugin}


@dataclass
class Site:
    core: Any
    app: Any
    clock: ManualClock
    auth: AuthStore
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> Any:
        return inspection.service_for(self.core)

    def client(self, who: str | None = None, **kw: Any) -> httpx.AsyncClient:
        kw.setdefault("base_url", "http://panel/-/plugins/inspection")
        if who:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kw)

    def alarms(self, rule_prefix: str = "inspection.") -> list[Any]:
        """The plugin's active alarms (a cleared one stays on the board until acknowledged)."""
        return [a for a in self.core.alarms.open_alarms() if a.rule.startswith(rule_prefix) and a.active]

    async def settle(self) -> None:
        """Let the journal deliver what was published (the engine raises alarms from it)."""
        await self.core.storage.barrier()
        await self.clock.advance(0)


@asynccontextmanager
async def open_site(db: Path, section: str = INSPECTION, start: float = START,
                    extra: dict[str, Any] | None = None) -> AsyncIterator[Site]:
    clock = ManualClock(start)
    loaded = load_text(site_yaml(db, section), "site.yaml")
    async with running_core(loaded, clock=clock, autoload=False,
                            extra_plugins={"inspection": inspection, **web_plugins(), **(extra or {})}) as core:
        auth = AuthStore(core.storage)
        s = Site(core=core, app=create_app(core), clock=clock, auth=auth)
        for name, (role, units) in ROLES.items():
            if await auth.get_user(name) is None:  # a restart on the same database keeps them
                await auth.create_user(name, role, units=units, password=PASSWORD)
            s.tokens[name], _ = await auth.create_token(name, label="test")
        yield s


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path / "fb.db") as s:
        yield s
