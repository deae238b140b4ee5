"""firebus reports plugin: the electrical-fire health check (电气火灾"体检").

A documented score per unit, place and circuit (``scoring``), named
analysis methods (``analysis``), weekly / monthly / quarterly reports and
summaries in HTML, PDF and JSON, zh and en (``report``, ``render``, ``plots``),
the ``firebus report`` command (``cli``) and an incremental live score
(``live``).  Data comes through the ``ReportSource`` protocol (``source``), over
the core's SQLite tables via ``firebus.sdk.StorageAPI`` (``sqlite_source``).
In the running core (``service``): the ``reports:`` section checked at start
(``validate``), the live score fed from the journal (``feed``), scheduled reports
made, stored (``store``) and sent (``deliver``), and panel routes (``web``).
Imports only ``firebus.sdk``.  See docs/reports.md.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="reports",
    description="Electrical-fire health check: score, analysis, periodic reports (PDF/HTML/JSON, zh/en), firebus report",
    documentation="docs/reports.md",
)


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)


_services: "WeakKeyDictionary[Any, Any]" = WeakKeyDictionary()


def service_for(core: Any) -> Any:
    """The running ``ReportsService`` of ``core`` (None before start-up or when the section is invalid)."""
    return _services.get(core)


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    from .store import MIGRATIONS

    return list(MIGRATIONS)


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[Any]:
    from .validate import check

    return check(site)[1]


@hookimpl
def firebus_register_routes(core: Any) -> list[Any]:
    from .web import routes

    return routes(lambda: service_for(core))


@hookimpl
def firebus_startup(core: Any) -> None:
    from .config import load_config
    from .service import ReportsService

    service = ReportsService(core, load_config(core.plugin_config("reports")))
    _services[core] = service
    # Seeding the live state reads history: in the background, so start-up does not wait for it.
    core.start_task(service.run, name="reports")


@hookimpl
def firebus_shutdown(core: Any) -> None:
    service = _services.pop(core, None)
    if service is not None:
        service.stop()
