"""The plugin's own tables (migration component ``supervision``).

Counters are kept by SQLite triggers on the keyed rows they count: a row is inserted
once (``INSERT OR IGNORE`` by alarm or hazard id), so a journal entry delivered again
after a restart, or a hazard mirrored again, never counts twice — the counter moves in
the same statement as the row, in the same transaction.
"""

from __future__ import annotations

from firebus.sdk import Migration

MIGRATIONS = [
    Migration(
        component="supervision",
        version=1,
        description="per-alarm and per-hazard summaries, counters by unit/month/weekday/hour/place kind, urges",
        sql="""
        CREATE TABLE sup_alarms (
            alarm_id TEXT PRIMARY KEY,
            unit_key TEXT NOT NULL DEFAULT '',       -- '' : the alarm belongs to no unit
            device_id TEXT,
            category TEXT NOT NULL,
            severity INTEGER NOT NULL,
            place_kind TEXT NOT NULL DEFAULT '',     -- the location's kind in the site file
            start_ts REAL NOT NULL,
            month TEXT NOT NULL,                     -- YYYY-MM, site time zone
            weekday INTEGER NOT NULL,                -- 0 Monday … 6 Sunday, site time zone
            hour INTEGER NOT NULL,                   -- 0 … 23, site time zone
            active INTEGER NOT NULL DEFAULT 1,
            acknowledged INTEGER NOT NULL DEFAULT 0,
            ack_s REAL,                              -- seconds from raised to first acknowledged
            clear_s REAL,                            -- seconds from raised to cleared
            verdict TEXT                             -- real_fire | false_alarm | test
        ) WITHOUT ROWID;
        CREATE INDEX sup_alarms_open ON sup_alarms (active, acknowledged);
        CREATE INDEX sup_alarms_unit ON sup_alarms (unit_key, start_ts);

        CREATE TABLE sup_alarm_counts (
            unit_key TEXT NOT NULL, month TEXT NOT NULL, category TEXT NOT NULL,
            weekday INTEGER NOT NULL, hour INTEGER NOT NULL, place_kind TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (unit_key, month, category, weekday, hour, place_kind)
        ) WITHOUT ROWID;
        CREATE TRIGGER sup_alarms_count AFTER INSERT ON sup_alarms BEGIN
            INSERT INTO sup_alarm_counts (unit_key, month, category, weekday, hour, place_kind, n)
            VALUES (new.unit_key, new.month, new.category, new.weekday, new.hour, new.place_kind, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        END;

        CREATE TABLE sup_verdicts (
            unit_key TEXT NOT NULL, month TEXT NOT NULL, verdict TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (unit_key, month, verdict)
        ) WITHOUT ROWID;
        CREATE TRIGGER sup_alarms_verdict AFTER UPDATE OF verdict ON sup_alarms
        WHEN old.verdict IS NOT new.verdict BEGIN
            UPDATE sup_verdicts SET n = n - 1
             WHERE old.verdict IS NOT NULL AND unit_key = old.unit_key AND month = old.month AND verdict = old.verdict;
            INSERT INTO sup_verdicts (unit_key, month, verdict, n)
            SELECT new.unit_key, new.month, new.verdict, 1 WHERE new.verdict IS NOT NULL
            ON CONFLICT DO UPDATE SET n = n + 1;
        END;

        CREATE TABLE sup_hazards (
            id TEXT PRIMARY KEY,                     -- the inspection plugin's hazard id
            unit_key TEXT NOT NULL DEFAULT '',
            place_kind TEXT NOT NULL DEFAULT '',
            severity TEXT NOT NULL DEFAULT 'general',
            created_ts REAL NOT NULL,
            month TEXT NOT NULL, weekday INTEGER NOT NULL, hour INTEGER NOT NULL,
            state TEXT NOT NULL,
            deadline_ts REAL NOT NULL,
            closed_ts REAL,
            updated_ts REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX sup_hazards_state ON sup_hazards (state, deadline_ts);
        CREATE TABLE sup_hazard_counts (
            unit_key TEXT NOT NULL, month TEXT NOT NULL, weekday INTEGER NOT NULL, hour INTEGER NOT NULL,
            place_kind TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (unit_key, month, weekday, hour, place_kind)
        ) WITHOUT ROWID;
        CREATE TRIGGER sup_hazards_count AFTER INSERT ON sup_hazards BEGIN
            INSERT INTO sup_hazard_counts (unit_key, month, weekday, hour, place_kind, n)
            VALUES (new.unit_key, new.month, new.weekday, new.hour, new.place_kind, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        END;

        -- what the periodic pass read from other plugins' and the core's tables (read-only there)
        CREATE TABLE sup_unit_facts (
            unit_key TEXT PRIMARY KEY,
            devices INTEGER NOT NULL DEFAULT 0,
            reported INTEGER NOT NULL DEFAULT 0,     -- devices that ever reported a value
            last_inspection_ts REAL,
            score REAL, grade TEXT, score_period TEXT, score_ts REAL,
            updated_ts REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE sup_watermarks (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;

        CREATE TABLE sup_urges (
            id TEXT PRIMARY KEY,
            unit_key TEXT NOT NULL,
            text TEXT NOT NULL,
            due_ts REAL,
            by_user TEXT NOT NULL,
            by_role TEXT NOT NULL,
            ts REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',     -- open | answered
            answer TEXT NOT NULL DEFAULT '',
            answered_by TEXT,
            answered_ts REAL,
            overdue INTEGER NOT NULL DEFAULT 0       -- 1 once its due time passed unanswered
        ) WITHOUT ROWID;
        CREATE INDEX sup_urges_unit ON sup_urges (unit_key, ts);
        CREATE INDEX sup_urges_status ON sup_urges (status, due_ts);
        """,
    ),
    Migration(
        component="supervision",
        version=2,
        description="devices heard from at least once (the journal's raw rows are purged once rolled up)",
        sql="CREATE TABLE sup_devices_seen (device_id TEXT PRIMARY KEY, first_ts REAL NOT NULL) WITHOUT ROWID;",
    ),
    Migration(
        component="supervision",
        version=3,
        description="each unit's live health score, from the reports plugin's UnitScored journal entries",
        sql="""
        CREATE TABLE sup_live_scores (
            unit_key TEXT PRIMARY KEY,
            score REAL NOT NULL,                     -- 0-100, higher is safer
            grade TEXT NOT NULL,                     -- A-D
            ts REAL NOT NULL,                        -- when it was computed
            seq INTEGER NOT NULL                     -- the journal entry: a replay never goes back
        ) WITHOUT ROWID;
        """,
    ),
]
