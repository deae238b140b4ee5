"""The plugin's own tables (migration component ``inspection``).

Records of what people did (patrol records, hazard history, duty records, photos)
are append-only: SQLite triggers refuse UPDATE and DELETE, as for the core's
journal.  Checkpoints and plans mirror the site file (rewritten at every start);
tasks and hazards carry state that moves.
"""

from __future__ import annotations

from firebus.sdk import Migration


def _append_only(table: str) -> str:
    return f"""
        CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
        CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
    """


MIGRATIONS = [
    Migration(
        component="inspection",
        version=1,
        description="checkpoints, tags, plans, tasks, patrol records, photos, hazards, duty records",
        sql=f"""
        CREATE TABLE insp_checkpoints (
            key TEXT PRIMARY KEY,
            unit_key TEXT,
            location_key TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            items TEXT NOT NULL DEFAULT '[]',     -- JSON list of catalogue keys
            active INTEGER NOT NULL DEFAULT 1     -- 0: no longer in the site file (records keep it)
        ) WITHOUT ROWID;
        CREATE TABLE insp_tags (
            kind TEXT NOT NULL,                   -- qr | nfc | rfid
            code TEXT NOT NULL,                   -- normalised (see config.normalise_code)
            checkpoint_key TEXT NOT NULL,
            PRIMARY KEY (kind, code)
        ) WITHOUT ROWID;
        CREATE TABLE insp_plans (
            key TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            unit_key TEXT,
            role TEXT NOT NULL,
            checkpoints TEXT NOT NULL,            -- JSON list, route order
            schedule TEXT NOT NULL,               -- JSON of the effective schedule
            active INTEGER NOT NULL DEFAULT 1
        ) WITHOUT ROWID;
        CREATE TABLE insp_tasks (
            id TEXT PRIMARY KEY,                  -- <plan>@<start epoch s>: made once however often asked
            plan_key TEXT NOT NULL,
            unit_key TEXT,
            role TEXT NOT NULL,
            start_ts REAL NOT NULL,
            due_ts REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',  -- open | done | missed
            done_ts REAL,
            missed_ts REAL
        ) WITHOUT ROWID;
        CREATE INDEX insp_tasks_due ON insp_tasks (status, due_ts);
        CREATE INDEX insp_tasks_plan ON insp_tasks (plan_key, start_ts);
        CREATE TABLE insp_task_stops (
            task_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            checkpoint_key TEXT NOT NULL,
            record_id TEXT,                       -- the record that visited it in the window
            done_ts REAL,
            PRIMARY KEY (task_id, checkpoint_key)
        ) WITHOUT ROWID;
        CREATE TABLE insp_records (
            id TEXT PRIMARY KEY,                  -- client-generated: a resend is the same record
            checkpoint_key TEXT NOT NULL,
            unit_key TEXT,
            location_key TEXT,
            user_name TEXT NOT NULL,
            method TEXT NOT NULL,                 -- qr | nfc | rfid | manual
            tag_code TEXT NOT NULL DEFAULT '',
            ts REAL NOT NULL,                     -- when it was done (client clock, epoch s)
            received_ts REAL NOT NULL,
            results TEXT NOT NULL DEFAULT '[]',   -- JSON [{{item, result, note}}]
            note TEXT NOT NULL DEFAULT '',
            photos TEXT NOT NULL DEFAULT '[]',
            task_id TEXT,
            digest TEXT NOT NULL                  -- of the client's fields: tells a resend from a clash
        ) WITHOUT ROWID;
        CREATE INDEX insp_records_cp ON insp_records (checkpoint_key, ts);
        CREATE INDEX insp_records_ts ON insp_records (ts);
        {_append_only("insp_records")}
        CREATE TABLE insp_photos (
            id TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            data BLOB NOT NULL,
            user_name TEXT NOT NULL,
            unit_key TEXT,
            ts REAL NOT NULL
        ) WITHOUT ROWID;
        {_append_only("insp_photos")}
        CREATE TABLE insp_hazards (
            id TEXT PRIMARY KEY,
            unit_key TEXT,
            checkpoint_key TEXT,
            location_key TEXT,
            item TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,                 -- patrol | alarm | report | manual
            source_ref TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL,
            severity TEXT NOT NULL,               -- general | major (重大火灾隐患, GB 35181)
            major_criteria TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            responsible TEXT NOT NULL DEFAULT '',
            deadline_ts REAL NOT NULL,
            created_ts REAL NOT NULL,
            created_by TEXT NOT NULL,
            updated_ts REAL NOT NULL,
            closed_ts REAL,
            last_urge_ts REAL,
            urges INTEGER NOT NULL DEFAULT 0,
            escalated INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX insp_hazards_state ON insp_hazards (state, deadline_ts);
        CREATE TABLE insp_hazard_history (
            id TEXT PRIMARY KEY,                  -- client-generated action id (idempotent), or a ULID
            hazard_id TEXT NOT NULL,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            photos TEXT NOT NULL DEFAULT '[]',
            detail TEXT NOT NULL DEFAULT '{{}}'
        );                                        -- rowid: the order actions were taken in
        CREATE INDEX insp_hazard_history_h ON insp_hazard_history (hazard_id, ts);
        {_append_only("insp_hazard_history")}
        CREATE TABLE insp_duty (
            id TEXT PRIMARY KEY,
            unit_key TEXT,
            shift_start REAL NOT NULL,
            shift_end REAL NOT NULL,
            officers TEXT NOT NULL,               -- JSON list of names
            handover TEXT NOT NULL DEFAULT '',
            notes TEXT NOT NULL DEFAULT '',
            alarms_handled INTEGER NOT NULL DEFAULT 0,
            user_name TEXT NOT NULL,
            received_ts REAL NOT NULL,
            digest TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX insp_duty_start ON insp_duty (shift_start);
        {_append_only("insp_duty")}
        """,
    ),
]
