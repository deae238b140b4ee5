"""firebus app plugin: the installable phone app (PWA) for duty officers, managers and supervisors (issue 21).

Imports only ``firebus.sdk``.  See docs/app.md.
"""

from __future__ import annotations

from firebus.sdk import Manifest

FIREBUS_MANIFEST = Manifest(
    name="app",
    description="Installable phone app (PWA): alarms and hazards of my scope, acknowledge, rectify, patrol, offline",
    documentation="docs/app.md",
)
