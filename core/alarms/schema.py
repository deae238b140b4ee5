"""The alarm engine's own tables (component ``alarms``), applied by ``Storage.open``.

Every table is written with exactly one upsert/insert statement: the storage
writer groups a batch's rows by statement, so two different statements on one
table could be reordered within a batch.  Cancelling a timer is therefore an
upsert with ``due = NULL``, not a DELETE.
"""

from __future__ import annotations

from firebus.sdk import Migration

ALARM_MIGRATIONS = [
    Migration(
        component="alarms",
        version=1,
        description="alarms, alarm history, rule state, timers, linkage log",
        sql="""
        CREATE TABLE alarms (
            id TEXT PRIMARY KEY,
            dedup_key TEXT NOT NULL,
            category TEXT NOT NULL,
            severity INTEGER NOT NULL,
            active INTEGER NOT NULL,
            acknowledged INTEGER NOT NULL,
            unit_id TEXT,
            device_id TEXT,
            point_id TEXT,
            location_id TEXT,
            start_ts REAL NOT NULL,
            data TEXT NOT NULL                -- the whole Alarm as JSON
        );
        CREATE INDEX alarms_open ON alarms (active, acknowledged);
        CREATE INDEX alarms_unit ON alarms (unit_id, start_ts);
        CREATE INDEX alarms_category ON alarms (category, start_ts);
        -- "one active alarm per dedup_key" is enforced by the engine, not a UNIQUE index:
        -- a constraint failure inside a batch would make the writer retry it forever.
        CREATE INDEX alarms_dedup ON alarms (dedup_key, active);
        CREATE TABLE alarm_history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            alarm_id TEXT NOT NULL,
            ts REAL NOT NULL,
            transition TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            context_id TEXT NOT NULL,
            parent_id TEXT
        );
        CREATE INDEX alarm_history_alarm ON alarm_history (alarm_id, seq);
        CREATE TRIGGER alarm_history_append_only BEFORE DELETE ON alarm_history
        BEGIN SELECT RAISE(ABORT, 'alarm_history is append-only'); END;
        CREATE TABLE alarm_rule_state (
            rule TEXT NOT NULL,
            scope TEXT NOT NULL,
            point_id TEXT NOT NULL,           -- the point last evaluated (for timer wake-ups)
            context_id TEXT,                  -- the last input's context (parent of a timed alarm)
            state TEXT NOT NULL,
            PRIMARY KEY (rule, scope)
        ) WITHOUT ROWID;
        CREATE TABLE alarm_timers (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,               -- rule | escalation
            due REAL,                         -- NULL = cancelled
            data TEXT NOT NULL DEFAULT '{}'
        ) WITHOUT ROWID;
        CREATE TABLE alarm_linkage (
            id TEXT PRIMARY KEY,
            alarm_id TEXT NOT NULL,
            ts REAL NOT NULL,
            ok INTEGER,                       -- NULL while pending
            data TEXT NOT NULL
        );
        CREATE INDEX alarm_linkage_alarm ON alarm_linkage (alarm_id, ts);
        """,
    ),
    Migration(
        component="alarms",
        version=2,
        description="evaluation watermark: readings committed but not yet evaluated are replayed on start",
        sql="""
        CREATE TABLE alarm_watermark (
            point_id TEXT PRIMARY KEY,
            ts INTEGER NOT NULL          -- ms, as readings.ts: the last reading the rules finished
        ) WITHOUT ROWID;
        INSERT INTO alarm_watermark (point_id, ts) SELECT point_id, max(ts) FROM readings GROUP BY point_id;
        """,
    ),
    Migration(
        component="alarms",
        version=3,
        description="the engine reads the journal from a cursor: checkpoint numbers, wake-ups in the rule state",
        sql="""
        ALTER TABLE alarm_rule_state ADD COLUMN wake_at REAL;
        ALTER TABLE alarm_rule_state ADD COLUMN cp INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alarms ADD COLUMN cp INTEGER NOT NULL DEFAULT 0;
        UPDATE alarm_rule_state SET wake_at = (
            SELECT due FROM alarm_timers WHERE key = 'rule:' || alarm_rule_state.rule || ':' || alarm_rule_state.scope);
        UPDATE alarms SET data = json_set(data, '$.escalation_due',
            (SELECT due FROM alarm_timers WHERE key = 'esc:' || alarms.id))
        WHERE EXISTS (SELECT 1 FROM alarm_timers WHERE key = 'esc:' || alarms.id AND due IS NOT NULL);
        -- Start the engine's cursor where the watermark says evaluation had reached.
        INSERT OR IGNORE INTO journal_cursors (name, seq, ahead, version, updated_ts)
        SELECT 'alarms', coalesce(max(seq), 0), '[]', 0, 0 FROM journal;
        DROP TABLE alarm_timers;
        DROP TABLE alarm_watermark;
        """,
    ),
    Migration(
        component="alarms",
        version=4,
        description="alarms by device: a device's page reads its own alarms, not the whole table",
        sql="CREATE INDEX alarms_device ON alarms (device_id, start_ts);",
    ),
]
