"""A running core and the Modbus simulator it polls, asked the questions a plugin test asks.

``Rig`` answers by device and point *keys* (what a site file says), not ids:
``rig.value("rcd", "residual_current")``, ``await rig.wait_value(...)``,
``rig.alarms(rule="threshold", category="electrical_alarm")`` and
``await rig.polls(3)`` (three more simulator reads, all they caused handled).
A rig started from a scenario file (a demo's story) runs it on simulated time:
``await rig.advance_to(140)``.
``start_rig`` starts both pieces through ``harness`` (``modbus_simulator``,
``start_core``); the ``firebus_rig`` fixture of the pytest plugin wraps it.
Like the harness, it imports the core lazily (see ``harness``' module doc).
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

from firebus.sdk.modbus import ModbusProfile

from .harness import modbus_simulator, start_core
from .recorder import EventRecorder
from .waiting import DEFAULT_TIMEOUT_S, eventually

#: A site file, or a function of the simulator's port (None when the rig has no simulator).
SiteText = str | Callable[[int | None], str]


class ScenarioTime:
    """The simulated time a scenario simulator reads (``ModbusSimulator(..., clock=time)``); starts at 0."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """A running core and (optionally) the simulator it polls; helpers to read points and alarms."""

    def __init__(self, core: Any, sim: Any = None, scenario_time: ScenarioTime | None = None) -> None:
        self.core = core
        self.sim = sim
        self.scenario_time = scenario_time

    def device_id(self, key: str) -> str:
        return str(self.core.device_ids[key])

    def point_id(self, device_key: str, point_key: str) -> str | None:
        entry = self.core.registry.point(self.core.device_ids.get(device_key, ""), point_key)
        return str(entry.id) if entry else None

    def state(self, device_key: str, point_key: str) -> Any:
        """The core's current state of the point (``.value``, ``.fault``), None before the first reading."""
        pid = self.point_id(device_key, point_key)
        return self.core.ingest.state(pid) if pid else None

    def value(self, device_key: str, point_key: str) -> Any:
        st = self.state(device_key, point_key)
        return st.value if st else None

    async def wait_value(self, device_key: str, point_key: str, expected: Any,
                         timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Until the point reads ``expected`` with no fault."""
        await eventually(lambda: (st := self.state(device_key, point_key)) is not None and st.fault is None
                         and st.value == expected, timeout, f"{device_key}.{point_key} == {expected!r}")

    def alarms(self, *, rule: str | None = None, category: str | None = None, device_key: str | None = None,
               point_key: str | None = None, active: bool = True) -> list[Any]:
        """Open alarms matching every filter given.

        ``rule`` is the rule key without its ``:sub`` part; ``point_key`` with
        ``device_key`` is that device's point, alone any point of that key.
        ``active=False`` also counts alarms whose condition has cleared but that
        are not yet closed.
        """
        out = []
        for alarm in self.core.alarms.open_alarms():
            if active and not alarm.active:
                continue
            if rule is not None and alarm.rule.split(":", 1)[0] != rule:
                continue
            if category is not None and str(alarm.category) != category:
                continue
            if device_key is not None and alarm.device_id != self.core.device_ids.get(device_key):
                continue
            if point_key is not None and not self._is_point(alarm.point_id, device_key, point_key):
                continue
            out.append(alarm)
        return out

    def _is_point(self, point_id: str | None, device_key: str | None, point_key: str) -> bool:
        if device_key is not None:
            return point_id is not None and point_id == self.point_id(device_key, point_key)
        info = self.core.registry.point_info(point_id or "")
        return info is not None and info.key == point_key

    async def polls(self, n: int = 3, unit: int | None = None) -> None:
        """Wait until the simulator has answered ``n`` more reads and the core has handled what they caused.

        The way to assert that something did *not* happen: new values have been
        seen and every rule has run on them.
        """
        if self.sim is None:
            raise RuntimeError("Rig.polls needs a Modbus simulator: start the rig with modbus={unit: profile}")
        from firebus.core.journal import quiesce  # test-time only, see the module doc

        start = self.sim.count(unit=unit)
        await eventually(lambda: self.sim.count(unit=unit) >= start + n, what=f"{n} more polls")
        await quiesce(self.core.bus, self.core.storage)

    async def advance_to(self, t: float, step: float = 5.0) -> None:
        """Walk the scenario's simulated time to ``t`` in ``step`` s steps, every unit read twice in
        between: the story as a real site polling it would see it."""
        if self.scenario_time is None or self.sim is None:
            raise RuntimeError("Rig.advance_to needs a scenario: start the rig with scenario=<file>")
        while self.scenario_time.now < t:
            self.scenario_time.now = min(t, self.scenario_time.now + step)
            await self.polls(len(self.sim.devices) * 2)


@asynccontextmanager
async def start_rig(
    site: SiteText,
    *,
    plugins: Mapping[str, object] | None = None,
    modbus: Mapping[int, ModbusProfile | str | Path] | None = None,
    values: Mapping[int, Mapping[str, Any]] | None = None,
    device_cls: type | None = None,
    scenario: str | Path | None = None,
    clock: Any = None,
    recorder: EventRecorder | None = None,
    base_dir: Path | None = None,
) -> AsyncIterator[Rig]:
    """A ``Rig``: the simulator first, then the core; the core stops before the simulator.

    The simulator serves ``modbus`` (``{unit: profile}``; ``values`` and
    ``device_cls`` go to ``modbus_simulator``) or the units of ``scenario`` (a
    scenario file, on the rig's simulated time), or there is none.  ``site`` may
    be a function of the simulator's port, so its ``modbus_tcp`` transport finds it.
    """
    if modbus and scenario is not None:
        raise ValueError("start_rig: give modbus={unit: profile} or scenario=<file>, not both")
    async with AsyncExitStack() as stack:
        sim = None
        scenario_time = None
        if modbus:
            sim = await stack.enter_async_context(modbus_simulator(modbus, values=values, device_cls=device_cls))
        elif scenario is not None:
            scenario_time = ScenarioTime()
            sim = await stack.enter_async_context(_scenario_simulator(Path(scenario), scenario_time))
        text = site(sim.port if sim is not None else None) if callable(site) else site
        core = await stack.enter_async_context(
            start_core(text, plugins=plugins, clock=clock, recorder=recorder, base_dir=base_dir))
        yield Rig(core, sim, scenario_time)


def _scenario_simulator(path: Path, clock: ScenarioTime) -> Any:
    import yaml

    from firebus.core.sim.modbus import ModbusSimulator  # test-time only, see the module doc
    from firebus.core.sim.scenario import load_scenario

    scenario = load_scenario(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    return ModbusSimulator.from_scenario(scenario, clock=clock)


__all__ = ["Rig", "ScenarioTime", "SiteText", "start_rig"]
