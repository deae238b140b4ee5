"""firebus app plugin: the installable phone app (PWA) for duty officers, managers and supervisors (issue 21).

Everything lives under ``/-/plugins/app/`` (``web.py``): the shell, its plain JavaScript
modules, the web app manifest and icons, the service worker (scope ``/-/plugins/app/``),
the session the shell reads, and the signed alarm links (``/a/{token}``) that push
messages carry.  The app reads the core's API and the inspection, reports and notify
plugins' APIs from the browser; it keeps no data of its own.

Imports only ``firebus.sdk``.  See docs/app.md.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import CoreAPI, Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="app",
    description="Installable phone app (PWA): alarms and hazards of my scope, acknowledge, rectify, patrol, offline",
    documentation="docs/app.md",
)


@hookimpl
def firebus_register_routes(core: CoreAPI) -> list[Any]:
    from .web import routes

    return routes(core)
