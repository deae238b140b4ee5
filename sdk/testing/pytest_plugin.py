"""firebus' pytest plugin (``pytest11`` entry point ``firebus``): fixtures for plugin tests.

Loaded automatically wherever firebus is installed, so it must stay cheap and
unobtrusive: it imports nothing heavy at load time (everything is imported
inside the fixtures), every fixture name starts with ``firebus_``, and it adds
no options and changes no collection.  Its one visible effect is the quality
summary printed after a run that included contract tests.

Fixtures:

``firebus_core``          factory: ``async with firebus_core(site_yaml, plugins={...}) as core``
                          (autoload off: only the core's own plugin and the ones you name)
``firebus_recorder``      every bus event of the cores started by ``firebus_core`` (or
                          ``firebus_rig``) in this test; ``await firebus_recorder.wait_for(StateChanged, point_key="rc")``
``firebus_clock``         a ``firebus.sdk.ManualClock`` (pass ``clock=`` to ``firebus_core``)
``firebus_rig``           ``rig = await firebus_rig(site, plugins={...}, modbus={1: profile})``: a core and
                          the simulator it polls, asked by key (``rig.value``, ``rig.alarms``, ``rig.polls``);
                          stopped at the end of the test
``firebus_modbus_sim``    factory: ``async with firebus_modbus_sim({1: profile}, values={1: {...}}) as sim``
``firebus_mosquitto``     a real Mosquitto broker on a free port (``.host``, ``.port``)
``firebus_outbox``        notifier outbox: register ``firebus_outbox.plugin``; channel type ``test_outbox``
``firebus_panel_client``  factory: ``async with firebus_panel_client(core) as http`` (httpx, logged in)
``firebus_site_yaml``     builds a site file: places, storage in tmp_path, transports, devices
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest


@pytest.fixture
def firebus_recorder() -> Any:
    from .recorder import EventRecorder

    return EventRecorder()


@pytest.fixture
def firebus_clock() -> Any:
    from firebus.sdk.clock import ManualClock

    return ManualClock()


@pytest.fixture
def firebus_site_yaml(tmp_path: Path) -> Callable[..., str]:
    from .harness import modbus_transport_yaml, site_yaml

    def build(*, transports: str = "", devices: str = "", extra: str = "", modbus_port: int | None = None,
              db: str | Path | None = None) -> str:
        if modbus_port is not None:
            transports = modbus_transport_yaml("gw", modbus_port) + transports
        return site_yaml(db or tmp_path / "firebus.db", transports=transports, devices=devices, extra=extra)

    return build


@pytest.fixture
def firebus_core(firebus_recorder: Any, tmp_path: Path) -> Callable[..., Any]:
    """Factory for running cores; each is attached to this test's ``firebus_recorder``."""
    from .harness import start_core

    def start(site: str, *, plugins: dict[str, object] | None = None, autoload: bool = False,
              clock: Any = None) -> Any:
        return start_core(site, plugins=plugins, autoload=autoload, clock=clock, recorder=firebus_recorder,
                          base_dir=tmp_path)

    return start


@pytest.fixture
async def firebus_rig(firebus_recorder: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Factory for ``Rig``s (see ``rig.start_rig``); each core is attached to ``firebus_recorder``."""
    from contextlib import AsyncExitStack

    from .rig import Rig, SiteText, start_rig

    async with AsyncExitStack() as stack:
        async def start(site: SiteText, *, plugins: dict[str, object] | None = None,
                        modbus: dict[int, Any] | None = None, values: dict[int, dict[str, Any]] | None = None,
                        device_cls: type | None = None, scenario: str | Path | None = None,
                        clock: Any = None) -> Rig:
            return await stack.enter_async_context(start_rig(
                site, plugins=plugins, modbus=modbus, values=values, device_cls=device_cls, scenario=scenario,
                clock=clock, recorder=firebus_recorder, base_dir=tmp_path))

        yield start


@pytest.fixture
def firebus_modbus_sim() -> Callable[..., Any]:
    from .harness import modbus_simulator

    return modbus_simulator


@pytest.fixture
def firebus_mosquitto(tmp_path: Path) -> Iterator[Any]:
    from .mosquitto import Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def firebus_outbox() -> Any:
    from .outbox import Outbox

    return Outbox()


@pytest.fixture
def firebus_panel_client() -> Callable[..., Any]:
    from .harness import panel_client

    return panel_client


# --------------------------------------------------------------------------- quality summary


def _level_of(item: pytest.Item) -> str | None:
    lvl = getattr(getattr(item, "function", None), "_firebus_level", None)
    return str(lvl) if lvl is not None else None


class QualityReport:
    """Collects contract-test outcomes by suite and prints each suite's quality level."""

    def __init__(self) -> None:
        self.levels: dict[str, str] = {}  # nodeid → level
        self.results: dict[str, list[tuple[str, str, bool]]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            lvl = _level_of(item)
            if lvl is not None:
                self.levels[item.nodeid] = lvl

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lvl = self.levels.get(report.nodeid)
        if lvl is None:
            return
        # The call decides; a failing setup also counts as a failure.
        if report.when == "call" or (report.when == "setup" and not report.passed):
            suite = report.nodeid.rsplit("::", 1)[0]
            self.results.setdefault(suite, []).append((report.nodeid, lvl, report.passed))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        from .contracts import quality_level

        terminalreporter.section("firebus quality")
        for suite in sorted(self.results):
            rows = self.results[suite]
            earned = quality_level((lvl, ok) for _, lvl, ok in rows)
            passed = sum(1 for _, _, ok in rows if ok)
            failed = [nodeid.rsplit("::", 1)[-1] for nodeid, _, ok in rows if not ok]
            line = f"firebus quality: {suite.rsplit('::', 1)[-1]}: {earned or 'none'} ({passed}/{len(rows)})"
            if failed:
                line += f"; failed: {', '.join(failed)}"
            terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(QualityReport(), "firebus-quality")
