"""The plugin's own table of generated reports (``firebus_register_migrations``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from firebus.sdk import Migration, StorageAPI

MIGRATIONS = [
    Migration(
        component="reports",
        version=1,
        description="generated periodic reports",
        sql="""
        CREATE TABLE report_files (
            id TEXT PRIMARY KEY,             -- ULID, time-ordered
            schedule TEXT NOT NULL,          -- weekly | monthly | quarterly
            unit_id TEXT NOT NULL,
            unit_key TEXT NOT NULL,
            period TEXT NOT NULL,            -- 2026-11, 2026-W46, 2026-Q4
            period_start REAL NOT NULL,
            period_end REAL NOT NULL,
            grade TEXT NOT NULL,
            score REAL NOT NULL,
            created REAL NOT NULL,
            files TEXT NOT NULL,             -- JSON: {"pdf-zh": "/abs/path.pdf", …}
            sent TEXT NOT NULL DEFAULT '[]', -- JSON: [{"channel", "recipient", "ok", "error"}]
            UNIQUE (schedule, unit_id, period)
        );
        CREATE INDEX report_files_created ON report_files (created);
        """,
    )
]


class StoredReport(msgspec.Struct, frozen=True):
    id: str
    schedule: str
    unit_id: str
    unit_key: str
    period: str
    period_start: float
    period_end: float
    grade: str
    score: float
    created: float
    files: dict[str, str]
    sent: list[dict[str, Any]] = []


_COLS = "id, schedule, unit_id, unit_key, period, period_start, period_end, grade, score, created, files, sent"


def _row(r: tuple[Any, ...]) -> StoredReport:
    return StoredReport(*r[:10], files=json.loads(r[10]), sent=json.loads(r[11] or "[]"))


async def insert(storage: StorageAPI, r: StoredReport) -> None:
    # A report made again for the same schedule, unit and period replaces the earlier one.
    await storage.execute(
        f"INSERT OR REPLACE INTO report_files ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (r.id, r.schedule, r.unit_id, r.unit_key, r.period, r.period_start, r.period_end, r.grade, r.score,
         r.created, json.dumps(r.files), json.dumps(r.sent)),
    )


async def set_sent(storage: StorageAPI, report_id: str, sent: list[dict[str, Any]]) -> None:
    await storage.execute("UPDATE report_files SET sent = ? WHERE id = ?", (json.dumps(sent, ensure_ascii=False), report_id))


async def listing(storage: StorageAPI, unit_id: str | None = None, limit: int = 200) -> list[StoredReport]:
    where, params = ("WHERE unit_id = ?", (unit_id,)) if unit_id else ("", ())
    rows = await storage.fetchall(f"SELECT {_COLS} FROM report_files {where} ORDER BY created DESC, id DESC LIMIT ?",
                                  (*params, limit))
    return [_row(r) for r in rows]


async def get(storage: StorageAPI, report_id: str) -> StoredReport | None:
    row = await storage.fetchone(f"SELECT {_COLS} FROM report_files WHERE id = ?", (report_id,))
    return _row(row) if row else None
