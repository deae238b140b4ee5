"""Schema migrations: numbered steps per component, each in its own transaction."""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from typing import Iterable

from firebus.sdk.migration import Migration

log = logging.getLogger("firebus.core.storage")


class StorageError(Exception):
    pass


def migrate(db: sqlite3.Connection, migrations: Iterable[Migration]) -> None:
    """Apply every step newer than the component's recorded version, in order.

    Components are migrated in the order they first appear (the core's first), so a
    plugin's step may rely on the core's tables of the same release.
    """
    db.execute("CREATE TABLE IF NOT EXISTS schema_meta (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    current = dict(db.execute("SELECT component, version FROM schema_meta").fetchall())
    by_component: dict[str, list[Migration]] = defaultdict(list)
    for m in migrations:
        by_component[m.component].append(m)
    for component, steps in by_component.items():
        steps.sort(key=lambda m: m.version)
        versions = [m.version for m in steps]
        if len(set(versions)) != len(versions):
            raise StorageError(f"migrations of {component!r} repeat a version: {versions}")
        have = current.get(component, 0)
        if versions and have > versions[-1]:
            raise StorageError(
                f"the database holds {component} schema version {have}, newer than this release knows "
                f"({versions[-1]}): it was written by a newer firebus; refusing to touch it"
            )
        for step in steps:
            if step.version <= have:
                continue
            log.info("storage: migrating %s to version %d (%s)", component, step.version, step.description)
            try:
                db.execute("BEGIN IMMEDIATE")
                for statement in split_sql(step.sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_meta (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, step.version),
                )
                db.execute("COMMIT")
            except Exception as exc:
                db.execute("ROLLBACK")
                raise StorageError(f"migration {component} v{step.version} failed: {exc}") from exc
            have = step.version


def split_sql(script: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped.strip():
            continue
        buf.append(stripped)
        text = "\n".join(buf)
        if stripped.endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements
