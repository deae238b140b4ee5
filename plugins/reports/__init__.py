"""firebus reports plugin: the electrical-fire health check (电气火灾"体检").

Phase 1: a documented score per unit, place and circuit (``scoring``), named
analysis methods (``analysis``), weekly / monthly / quarterly reports and
summaries in HTML, PDF and JSON, zh and en (``report``, ``render``, ``plots``),
the ``firebus report`` command (``cli``) and an incremental live score
(``live``).  Data comes through the ``ReportSource`` protocol (``source``), over
the core's SQLite tables via ``firebus.sdk.StorageAPI`` (``sqlite_source``).
Imports only ``firebus.sdk``.  See docs/reports.md.
"""

from __future__ import annotations

from typing import Any

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
