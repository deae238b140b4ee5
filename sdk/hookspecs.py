"""The hooks a firebus plugin can implement.

pluggy composes, the bus runs: these hooks are called once, at start-up (the
``register_*`` ones also by CLI commands that list plugins, with ``core=None``)
and return *declarations*: classes, migrations, routes.  Readings,
alarms and notifications never flow through hook calls; they flow over the
core's event bus.

Every ``firebus_register_*`` hook returns a list of classes, each with a
``type_key`` class attribute.  Keys must be unique across all loaded plugins:
a duplicate fails start-up with a message naming both plugins.

Implementations must not give their parameters default values (pluggy does
not pass arguments to parameters that have defaults).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Awaitable

import pluggy

if TYPE_CHECKING:
    from .core_api import CoreAPI, SiteProblem
    from .driver import Driver
    from .detector import VideoDetector
    from .extension import Notifier, Transport
    from .migration import Migration
    from .rule import AlarmRule

# The specs are declarations: pluggy never runs their bodies, so they return nothing.
# mypy: disable-error-code="empty-body"

hookspec = pluggy.HookspecMarker("firebus")


@hookspec
def firebus_register_transports(core: CoreAPI | None) -> list[type[Transport]]:
    """Return transport classes (subclasses of ``firebus.sdk.Transport``).

    A transport is a shared connection to devices: an MQTT broker, a Modbus TCP
    endpoint, an RS-485 line.  The site file's ``transports:`` entries pick one by
    its ``type_key`` (``mqtt``, ``modbus_tcp`` …).
    """


@hookspec
def firebus_register_drivers(core: CoreAPI | None) -> list[type[Driver]]:
    """Return device driver classes (``PolledDriver`` or ``PushDriver`` subclasses).

    The site file's ``devices:`` entries pick a driver by its ``type_key``
    (e.g. ``leakage.modbus``); ``options`` are validated against ``Driver.Options``.
    """


@hookspec
def firebus_register_rules(core: CoreAPI | None) -> list[type[AlarmRule]]:
    """Return alarm rule classes (subclasses of ``firebus.sdk.AlarmRule``).

    Rules turn point states into alarms: thresholds, rate of rise, heartbeat,
    two-detector confirmation …
    """


@hookspec
def firebus_register_notifiers(core: CoreAPI | None) -> list[type[Notifier]]:
    """Return notification channel classes (subclasses of ``firebus.sdk.Notifier``)."""


@hookspec
def firebus_register_detectors(core: CoreAPI | None) -> list[type[VideoDetector]]:
    """Return video fire/smoke detector classes (subclasses of ``firebus.sdk.VideoDetector``)."""


@hookspec
def firebus_register_routes(core: CoreAPI) -> list[Any]:  # starlette routes (no web import here)
    """Return Starlette routes to mount under ``/-/plugins/<plugin name>/`` on the panel."""


@hookspec
def firebus_register_commands(cli: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add sub-commands to the ``firebus`` CLI.

    ``cli`` is the ``argparse`` sub-parsers object; add a parser and set its
    ``func`` default to a callable taking the parsed ``argparse.Namespace``.
    """


@hookspec
def firebus_register_simulators(sim: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add simulators to ``firebus sim``.

    ``sim`` is the ``argparse`` sub-parsers object of ``firebus sim``; add a parser
    (``sim.add_parser("uitd", …)``) and set its ``func`` default to a callable taking
    the parsed ``argparse.Namespace`` and returning the exit code.
    """


@hookspec
def firebus_register_point_classes(core: CoreAPI | None) -> list[str]:
    """Return point class names beyond ``firebus.sdk.PointClass``."""


@hookspec
def firebus_register_migrations(core: CoreAPI) -> list[Migration]:
    """Return ``firebus.sdk.Migration`` objects for the plugin's own tables.

    Migrations are namespaced by their ``component`` and applied in ``version``
    order, each in its own transaction, before the core starts.
    """


@hookspec
def firebus_validate_site(core: CoreAPI | None, site: dict[str, Any]) -> list[SiteProblem]:
    """Check the plugin's part of the site file before anything starts.

    ``site`` is the whole site file as plain data.  Return a list of
    ``firebus.sdk.SiteProblem(path, message)`` with ``path`` like
    ``"notify.channels[0].options.url"``; the core reports the first as
    ``site.yaml:LINE: path: message`` and refuses to start (``firebus check`` too).
    """


@hookspec
def firebus_startup(core: CoreAPI) -> Awaitable[None] | None:
    """Called once the core has started; may return an awaitable the core awaits."""


@hookspec
def firebus_shutdown(core: CoreAPI) -> Awaitable[None] | None:
    """Called when the core stops; may return an awaitable the core awaits."""
