"""A real running core with two units, a scripted detector per unit, and the panel app.

The driver is a stand-in for the hardware (its values are set by the test); the core,
its storage, the alarm engine with the standard rules, the bus, the web app, argon2
hashing, sessions and tokens are all the real ones.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import msgspec
import pytest

from firebus.sdk.testing.waiting import eventually as wait_until  # noqa: F401 (used by the tests importing it from here)
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app, web_plugin
from firebus.sdk import DeviceInfo, PointSpec, PolledDriver, Reading, hookimpl

PASSWORD = "correct horse battery staple"


class Opts(msgspec.Struct, forbid_unknown_fields=True):
    serial: str
    poll_interval: float = 0.05


VALUES: dict[str, dict[str, Any]] = {}


class WebTestDetector(PolledDriver):
    type_key = "webtest.detector"
    Options = Opts
    transports = ()

    async def setup(self) -> DeviceInfo:
        return DeviceInfo(identifiers={"serial": self.options.serial}, model="WT-1", manufacturer="Test",
                          name=f"detector {self.options.serial}")

    def points(self) -> list[PointSpec]:
        return [
            PointSpec(key="smoke", point_class="smoke"),
            PointSpec(key="rc", point_class="residual_current", unit="mA"),
        ]

    async def poll(self) -> list[Reading]:
        return [Reading(point_key=k, value=v) for k, v in VALUES[self.options.serial].items()]


class WebTestPlugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [WebTestDetector]

    @hookimpl
    def firebus_register_routes(self, core):
        from starlette.responses import HTMLResponse
        from starlette.routing import Route

        from firebus.sdk import nav_link, signed_in
        from firebus.sdk.web import caller, public

        async def page(request):
            return HTMLResponse("<p>巡查</p>")

        async def open_page(request):
            who = caller(request)
            return HTMLResponse(f"<p>{who.name if who else 'anonymous'}</p>")

        return [signed_in(nav_link(Route("/rounds", page), "巡查", "Rounds")),
                nav_link(Route("/setup", page), "配置", "Setup"),
                public(Route("/open", open_page))]


def web_plugins() -> dict[str, Any]:
    """The web tables via ``web_plugin`` — unless the runtime already applies them
    (listing a migration twice is refused by the storage), so these tests keep
    working before and after the runner wires the panel in."""
    import inspect

    from firebus.core import runtime

    source = inspect.getsource(runtime)
    return {} if ("WEB_MIGRATIONS" in source or "web_plugin" in source) else {"web": web_plugin}


def site_yaml(db: Path) -> str:
    return f"""
site: {{name: Test site, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: plant-a
    name: Plant A
    buildings:
      - key: a-main
        name: Main hall
        floors: [{{key: a-f1, name: F1, level: 1, locations: [{{key: room-a, name: Switch room A}}]}}]
  - key: office-b
    name: Office B
    buildings:
      - key: b-tower
        name: Tower
        floors: [{{key: b-f3, name: F3, level: 3, locations: [{{key: room-b, name: Server room B}}]}}]
devices:
  - {{key: det-a, driver: webtest.detector, location: room-a, name: Detector A, options: {{serial: A1}}}}
  - {{key: det-b, driver: webtest.detector, location: room-b, name: Detector B, options: {{serial: B1}}}}
"""


@dataclass
class Site:
    core: Any
    app: Any
    auth: AuthStore
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)

    def device(self, key: str) -> str:
        return self.core.device_ids[key]

    def point(self, device_key: str, point_key: str) -> str:
        return self.core.registry.point(self.device(device_key), point_key).id

    def client(self, who: str | None = None, **kw: Any) -> httpx.AsyncClient:
        kw.setdefault("base_url", "http://panel")
        if who:
            kw.setdefault("headers", {})["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kw)


ROLES = {
    "admin": ("admin", []),
    "integrator": ("integrator", []),
    "duty_a": ("duty_officer", ["plant-a"]),
    "manager_b": ("unit_manager", ["office-b"]),
    "supervisor": ("supervisor", ["plant-a", "office-b"]),
    "viewer_a": ("supervisor", ["plant-a"]),
}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    VALUES.clear()
    VALUES.update({"A1": {"smoke": False, "rc": 20}, "B1": {"smoke": False, "rc": 30}})
    loaded = load_text(site_yaml(tmp_path / "fb.db"), "site.yaml")
    async with running_core(loaded, extra_plugins={"webtest": WebTestPlugin(), **web_plugins()},
                            autoload=False) as core:
        auth = AuthStore(core.storage)
        s = Site(core=core, app=create_app(core), auth=auth)
        for name, (role, units) in ROLES.items():
            user, _ = await auth.create_user(name, role, units=units, password=PASSWORD)
            s.users[name] = user
            s.tokens[name], _ = await auth.create_token(name, label="test")
        await wait_until(lambda: all(core.registry.points_of_device(core.device_ids[k]) for k in ("det-a", "det-b"))
                         and len(core.ingest.states) >= 4)
        yield s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
