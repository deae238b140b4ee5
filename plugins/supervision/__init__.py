"""firebus supervision plugin: units at a glance, where and when, urging rectification (issue 21).

* ``aggregate`` — per-unit aggregates kept incrementally by a durable journal consumer
  (``supervision.aggregates``) and a periodic pass over current-state tables;
* ``urges`` — urging (督办) a unit: recorded, raised as a supervisory alarm at the unit
  through ``firebus.sdk.ConditionReported``, answered by the unit, cleared;
* ``web`` — pages and JSON API under ``/-/plugins/supervision/``, scoped by the caller
  (``Caller.units``; ``firebus.sdk.orgs`` for the organisation filter), charts as SVG (``svg``).

Imports only ``firebus.sdk``.  See docs/plugins/supervision.md.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import Manifest, SiteProblem, hookimpl

from .config import ConfigError, SiteFacts, SupervisionConfig, load_config
from .schema import MIGRATIONS

FIREBUS_MANIFEST = Manifest(
    name="supervision",
    description="Supervisor views across units: ratings, alarms and hazards by place and time, urging rectification",
    documentation="docs/plugins/supervision.md",
)

_states: "WeakKeyDictionary[Any, State]" = WeakKeyDictionary()


class State:
    """What the routes reach: the configuration, the site's facts, the aggregator, the urges."""

    def __init__(self, core: Any, cfg: SupervisionConfig) -> None:
        from .aggregate import Aggregator
        from .urges import Urges

        self.core = core
        self.cfg = cfg
        self.facts = SiteFacts(core.plugin_config("units"), core.plugin_config("site"))
        self.aggregator = Aggregator(core, cfg, self.facts)
        self.urges = Urges(core, {k: u.name for k, u in self.facts.units.items()})
        self._orgs: Any = None
        self._orgs_read = False

    def orgs(self) -> Any:
        """The site's ``OrgTree`` (``firebus.sdk.orgs``), or None without organisations."""
        if not self._orgs_read:
            self._orgs_read = True
            try:
                from firebus.sdk.orgs import org_tree
            except ImportError:  # an SDK without organisations: no organisation filter
                return None
            tree = org_tree(self.core)
            self._orgs = tree if len(tree) else None
        return self._orgs

    def stop(self) -> None:
        self.aggregator.stop()
        self.urges.stop()


def state_for(core: Any) -> State | None:
    return _states.get(core)


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    return list(MIGRATIONS)


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[SiteProblem]:
    try:
        load_config(site.get("supervision"))
    except ConfigError as exc:
        return [SiteProblem(path=exc.path, message=exc.message)]
    return []


@hookimpl
def firebus_register_routes(core: Any) -> list[Any]:
    from .web import routes

    return routes(lambda: _states.get(core))


async def _start(core: Any) -> None:
    state = State(core, load_config(core.plugin_config("supervision")))
    await state.urges.resume()
    state.aggregator.start()
    _states[core] = state
    core.start_task(state.aggregator.run, name="supervision.refresh")
    core.start_task(state.urges.run, name="supervision.urges")


@hookimpl
def firebus_startup(core: Any) -> Any:
    return _start(core)


@hookimpl
def firebus_shutdown(core: Any) -> None:
    state = _states.pop(core, None)
    if state is not None:
        state.stop()
