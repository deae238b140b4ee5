"""firebus inspection plugin: facility patrols (巡查) by QR / NFC / RFID, hazards to closure, duty records.

* Checkpoints, items and plans come from the site file's ``inspection:`` section
  (``config.py``); tasks are made from plans on the site's clock and time zone.
* Missed tasks and overdue rectifications raise supervisory alarms through the
  core's alarm engine (``firebus.sdk.ConditionReported``), so they are on the
  board, acknowledged, escalated and notified like any other alarm.
* Pages and the JSON API live under ``/-/plugins/inspection/`` (``web.py``).

Imports only ``firebus.sdk``.  See docs/plugins/inspection.md.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import Manifest, SiteProblem, hookimpl

from .config import ConfigError, InspectionConfig, load_config
from .schema import MIGRATIONS

FIREBUS_MANIFEST = Manifest(
    name="inspection",
    description="Facility patrols by QR/NFC/RFID, hazard rectification to closure, duty records, GB 25201 forms",
    documentation="docs/plugins/inspection.md",
)

_services: "WeakKeyDictionary[Any, Any]" = WeakKeyDictionary()
log = logging.getLogger("firebus.plugin.inspection")

__all__ = ["ConfigError", "InspectionConfig", "load_config", "service_for"]


def _site(core: Any) -> dict[str, Any]:
    """The parts of the site file the plugin reads at run time (the place tree comes from the registry)."""
    return {"site": core.plugin_config("site"), "inspection": core.plugin_config("inspection")}


def unit_resolver(core: Any) -> Any:
    """Site-file place key → its unit's key, through the registry (``RegistryAPI.place_by_key``)."""
    cache: dict[str, str | None] = {}

    def resolve(key: str) -> str | None:
        if key in cache:
            return cache[key]
        place = core.registry.place_by_key(key)
        for _ in range(10):
            if place is None or str(place.kind) == "unit":
                break
            place = core.registry.place(place.parent_id) if place.parent_id else None
        found = place.key if place is not None else None
        if found is not None:
            cache[key] = found
        return found

    return resolve


def service_for(core: Any) -> Any:
    return _services.get(core)


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    return list(MIGRATIONS)


@hookimpl
def firebus_register_routes(core: Any) -> list[Any]:
    from .web import routes

    return routes(lambda: _services.get(core), _site(core))


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[SiteProblem]:
    section = site.get("inspection")
    if not section:
        return []
    try:
        load_config(section, site)
    except ConfigError as exc:
        return [SiteProblem(path=exc.path, message=exc.message)]
    return []


async def start(core: Any) -> Any:
    from .service import Service

    site = _site(core)
    # Place references were checked against the whole site file by firebus_validate_site.
    cfg = load_config(site.get("inspection") or {}, None)
    service = Service(core, cfg, site, unit_resolver(core))
    await service.sync()
    _services[core] = service
    core.start_task(service.run, name="inspection")
    return service


@hookimpl
def firebus_startup(core: Any) -> Any:
    return start(core)


@hookimpl
def firebus_shutdown(core: Any) -> Any:
    _services.pop(core, None)
    return None
