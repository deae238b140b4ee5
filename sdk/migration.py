"""Schema migrations for the embedded SQLite store."""

from __future__ import annotations

import msgspec


class Migration(msgspec.Struct, frozen=True):
    """One step of one component's schema.

    ``component`` namespaces the version counter (the core uses ``"core"``, a
    plugin its own name); ``sql`` runs as one script inside one transaction.
    """

    component: str
    version: int
    sql: str
    description: str = ""
