"""A month of a synthetic school in a real SQLite file with the core's schema (built once per session)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from firebus.core.alarms.schema import ALARM_MIGRATIONS
from firebus.core.storage import Storage
from firebus.plugins.reports import synthetic


def write_site(path: Path, site: synthetic.Site, five_classes: set[str] | None = None, five_from: float | None = None) -> None:
    """Create the schema through the core's migrations, then load the rows in one transaction."""

    async def migrate() -> None:
        async with Storage(path, synchronous="NORMAL").running(ALARM_MIGRATIONS):
            pass

    anyio.run(migrate)
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(synthetic.SQL_PLACE, site.places)
            db.executemany(synthetic.SQL_DEVICE, site.devices)
            db.executemany(synthetic.SQL_POINT, site.points)
            for five, hour in site.rollups(five_classes=five_classes, five_from=five_from):
                db.executemany(synthetic.SQL_5M, five)
                db.executemany(synthetic.SQL_1H, hour)
            db.executemany(synthetic.SQL_ALARM, site.alarms)
            db.executemany(synthetic.SQL_HISTORY, site.history)
    finally:
        db.close()


@pytest.fixture(scope="session")
def school_site() -> synthetic.Site:
    return synthetic.school()


@pytest.fixture(scope="session")
def school_db(tmp_path_factory: pytest.TempPathFactory, school_site: synthetic.Site) -> Path:
    path = tmp_path_factory.mktemp("reports") / "firebus.db"
    write_site(path, school_site, five_classes={"residual_current"}, five_from=synthetic.local(2026, 11, 1))
    return path
