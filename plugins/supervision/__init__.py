"""firebus supervision plugin: units at a glance, where and when, urging rectification (issue 21).

Imports only ``firebus.sdk``.  See docs/plugins/supervision.md.
"""

from __future__ import annotations

from firebus.sdk import Manifest

FIREBUS_MANIFEST = Manifest(
    name="supervision",
    description="Supervisor views across units: ratings, alarms and hazards by place and time, urging rectification",
    documentation="docs/plugins/supervision.md",
)
