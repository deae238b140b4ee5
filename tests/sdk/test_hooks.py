"""Every hookspec, implemented by a test plugin and seen working through the real core.

(The meta-test in test_hookspecs.py fails when a hookspec has no test like these.)
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from firebus.core.cli import build_parser
from firebus.core.config import ConfigError
from firebus.core.plugins import PluginHost
from firebus.sdk import SiteProblem, Transport, VideoDetector, hookimpl

pytestmark = pytest.mark.anyio


class LoopOptions(msgspec.Struct, forbid_unknown_fields=True):
    label: str = ""


class LoopTransport(Transport):
    type_key = "t.loop"
    Options = LoopOptions
    events: list[str] = []

    async def start(self) -> None:
        LoopTransport.events.append(f"start {self.key} {self.options.label}")

    async def stop(self) -> None:
        LoopTransport.events.append(f"stop {self.key}")


class FlameDetector(VideoDetector):
    type_key = "t.flame"

    def detect(self, frame: Any) -> list[Any]:
        return []


class EveryHook:
    @hookimpl
    def firebus_register_transports(self, core):
        return [LoopTransport]

    @hookimpl
    def firebus_register_detectors(self, core):
        return [FlameDetector]

    @hookimpl
    def firebus_register_point_classes(self, core):
        return ["t_arc_fault"]

    @hookimpl
    def firebus_register_commands(self, cli):
        p = cli.add_parser("hello", help="say hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: f"hello {args.name}")

    @hookimpl
    def firebus_startup(self, core):
        async def started() -> None:  # an awaitable: the core awaits it
            LoopTransport.events.append("startup")
        return started()

    @hookimpl
    def firebus_shutdown(self, core):
        LoopTransport.events.append("shutdown")

    @hookimpl
    def firebus_validate_site(self, core, site):
        return [SiteProblem(path=f"transports[{i}].options.label", message="label must not be 'bad'")
                for i, t in enumerate(site.get("transports") or [])
                if (t.get("options") or {}).get("label") == "bad"]


async def test_a_plugin_transport_and_startup_shutdown_hooks_follow_the_core(firebus_core, firebus_site_yaml) -> None:
    LoopTransport.events.clear()
    site = firebus_site_yaml(transports="  - {key: lp, type: t.loop, options: {label: ok}}\n")
    async with firebus_core(site, plugins={"every": EveryHook()}) as core:
        assert isinstance(core.transports["lp"], LoopTransport)
        assert LoopTransport.events == ["start lp ok", "startup"]  # startup hooks run once everything is up
    assert sorted(LoopTransport.events[2:]) == ["shutdown", "stop lp"]


async def test_validate_site_problems_stop_start_up_naming_the_line(firebus_core, firebus_site_yaml) -> None:
    site = firebus_site_yaml(transports="  - {key: lp, type: t.loop, options: {label: bad}}\n")
    with pytest.raises(ConfigError, match=r"label must not be 'bad' \(plugin every\)") as err:
        async with firebus_core(site, plugins={"every": EveryHook()}):
            pass
    assert "site.yaml:" in str(err.value)


def test_detectors_and_point_classes_are_collected() -> None:
    host = PluginHost(autoload=False)
    host.register(EveryHook(), name="every")
    host.collect_declarations(None)
    assert host.lookup("detector", "t.flame") is FlameDetector
    assert host.lookup("transport", "t.loop") is LoopTransport
    assert host.call_each("firebus_register_point_classes", core=None) == [("every", ["t_arc_fault"])]


def test_plugin_commands_join_the_cli() -> None:
    host = PluginHost(autoload=False)
    host.register(EveryHook(), name="every")
    args = build_parser(host).parse_args(["hello", "--name", "vendor"])
    assert args.func(args) == "hello vendor"
