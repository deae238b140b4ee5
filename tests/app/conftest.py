"""A real running core with two units, a scripted detector per unit, the inspection plugin and
the app plugin, served over HTTP for headless Chromium.

The detector driver stands in for the hardware (the test sets its values); the core, storage,
alarm engine with the standard rules, web app, sessions, tokens, the inspection plugin and the
app plugin are the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import httpx
import msgspec
import pytest

import firebus.plugins.app as app_plugin
import firebus.plugins.inspection as inspection
import firebus.plugins.notify as notify
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app, web_plugin
from firebus.sdk import DeviceInfo, PointSpec, PolledDriver, Reading, hookimpl

PASSWORD = "correct horse battery staple"
VALUES: dict[str, dict[str, Any]] = {}


class Opts(msgspec.Struct, forbid_unknown_fields=True):
    serial: str
    poll_interval: float = 0.05


class AppTestDetector(PolledDriver):
    type_key = "apptest.detector"
    Options = Opts
    transports = ()

    async def setup(self) -> DeviceInfo:
        return DeviceInfo(identifiers={"serial": self.options.serial}, model="AT-1", manufacturer="Test",
                          name=f"detector {self.options.serial}")

    def points(self) -> list[PointSpec]:
        return [PointSpec(key="smoke", point_class="smoke")]

    async def poll(self) -> list[Reading]:
        return [Reading(point_key=k, value=v) for k, v in VALUES[self.options.serial].items()]


class AppTestPlugin:
    @hookimpl
    def firebus_register_drivers(self, core: Any) -> list[type]:
        return [AppTestDetector]


SITE = """
site: {{name: 实验学校, language: zh, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: plant-a
    name: 一号厂房
    buildings:
      - key: a-main
        name: 主楼
        floors: [{{key: a-f1, name: 1F, level: 1, locations: [{{key: room-a, name: 配电室}}]}}]
  - key: office-b
    name: 办公楼
    buildings:
      - key: b-tower
        name: 塔楼
        floors: [{{key: b-f3, name: 3F, level: 3, locations: [{{key: room-b, name: 机房}}]}}]
devices:
  - {{key: det-a, driver: apptest.detector, location: room-a, name: 配电室烟感, options: {{serial: A1}}}}
  - {{key: det-b, driver: apptest.detector, location: room-b, name: 机房烟感, options: {{serial: B1}}}}
notify:
  channels:
    - {{key: web, type: webpush, options: {{subject: "mailto:ops@example.org"}}}}
inspection:
  checkpoints:
    - {{key: cp-a1, name: 配电室, location: room-a, tags: [{{kind: qr, code: FB-A1}}], items: [extinguisher]}}
"""

ROLES = {
    "admin": ("admin", []),
    "duty_a": ("duty_officer", ["plant-a"]),
    "duty_b": ("duty_officer", ["office-b"]),
    "viewer_a": ("supervisor", ["plant-a"]),
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
    auth: AuthStore
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None = None, **kw: Any) -> httpx.AsyncClient:
        kw.setdefault("base_url", "http://panel")
        if who:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kw)

    def open_alarm(self, serial: str) -> Any:
        """The open alarm of detector ``serial`` (None while there is none)."""
        device = self.core.device_ids["det-a" if serial == "A1" else "det-b"]
        return next((a for a in self.core.alarms.open_alarms() if a.device_id == device), None)


async def wait_until(predicate: Any, timeout: float = 15.0, what: str = "") -> Any:
    """Poll what the system tells until it is truthy (never a bare sleep)."""
    try:
        with anyio.fail_after(timeout):
            while True:
                result = predicate()
                if hasattr(result, "__await__"):
                    result = await result
                if result:
                    return result
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}") from None


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    VALUES.clear()
    VALUES.update({"A1": {"smoke": False}, "B1": {"smoke": False}})
    loaded = load_text(SITE.format(db=tmp_path / "fb.db"), "site.yaml")
    plugins = {"apptest": AppTestPlugin(), "inspection": inspection, "notify": notify, "app": app_plugin, **web_plugins()}
    async with running_core(loaded, extra_plugins=plugins, autoload=False) as core:
        auth = AuthStore(core.storage)
        s = Site(core=core, app=create_app(core), auth=auth)
        for name, (role, units) in ROLES.items():
            await auth.create_user(name, role, units=units, password=PASSWORD)
            s.tokens[name], _ = await auth.create_token(name, label="test")
        await wait_until(lambda: len(core.ingest.states) >= 2, what="both detectors reporting")
        yield s
