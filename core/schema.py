"""The core's SQLite schema, as numbered migrations.

Telemetry (``readings`` and its aggregates) is kept apart from the append-only
``event_log`` from the first version: telemetry has retention, the event log is
never purged (a trigger refuses deletes, so not even a bug can purge it).
"""

from __future__ import annotations

from firebus.sdk.migration import Migration

CORE_MIGRATIONS = [
    Migration(
        component="core",
        version=1,
        description="registry, point state, readings, aggregates, event log, quarantine",
        sql="""
        CREATE TABLE places (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,                 -- unit | building | floor | location
            key TEXT NOT NULL,                  -- the site file's key, unique per kind
            parent_id TEXT REFERENCES places(id),
            name TEXT NOT NULL DEFAULT '',
            level INTEGER,                      -- floors: 1, 2, -1 …
            attrs TEXT NOT NULL DEFAULT '{}',   -- JSON: address, coordinates …
            UNIQUE (kind, key)
        );
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,                -- immutable, never reused
            config_key TEXT,                    -- the site file's handle, may change
            driver TEXT NOT NULL,
            transport TEXT,
            location_id TEXT REFERENCES places(id),
            unit_id TEXT REFERENCES places(id),
            manufacturer TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            serial TEXT NOT NULL DEFAULT '',
            sw_version TEXT NOT NULL DEFAULT '',
            original_name TEXT NOT NULL DEFAULT '',  -- from the driver
            overrides TEXT NOT NULL DEFAULT '{}',    -- from people: name, location, thresholds
            discovered INTEGER NOT NULL DEFAULT 0,   -- seen on the wire, not configured
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            orphaned_at REAL                         -- removed from config; kept to return
        );
        CREATE TABLE device_identifiers (
            namespace TEXT NOT NULL,
            value TEXT NOT NULL,
            device_id TEXT NOT NULL REFERENCES devices(id),
            PRIMARY KEY (namespace, value)
        ) WITHOUT ROWID;
        CREATE TABLE points (
            id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id),
            key TEXT NOT NULL,
            point_class TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            original_name TEXT NOT NULL DEFAULT '',
            overrides TEXT NOT NULL DEFAULT '{}',
            writable INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            orphaned_at REAL,
            UNIQUE (device_id, key)
        );
        CREATE TABLE point_state (
            point_id TEXT PRIMARY KEY REFERENCES points(id),
            value,
            fault TEXT,
            last_changed REAL,
            last_updated REAL,
            last_reported REAL
        ) WITHOUT ROWID;
        -- (point, ms timestamp) is the idempotency key: a message redelivered
        -- after a crash lands on the same row and is ignored, not double-counted.
        CREATE TABLE readings (
            point_id TEXT NOT NULL,
            ts INTEGER NOT NULL,
            value,
            fault TEXT,
            PRIMARY KEY (point_id, ts)
        ) WITHOUT ROWID;
        CREATE TABLE readings_5m (
            point_id TEXT NOT NULL, bucket INTEGER NOT NULL,
            n INTEGER NOT NULL, mean REAL, min REAL, max REAL, last,
            PRIMARY KEY (point_id, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE readings_1h (
            point_id TEXT NOT NULL, bucket INTEGER NOT NULL,
            n INTEGER NOT NULL, mean REAL, min REAL, max REAL, last,
            PRIMARY KEY (point_id, bucket)
        ) WITHOUT ROWID;
        CREATE TABLE event_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            type TEXT NOT NULL,
            lane TEXT NOT NULL,
            context_id TEXT NOT NULL,
            parent_id TEXT,
            actor TEXT NOT NULL,
            actor_id TEXT,
            data TEXT NOT NULL
        );
        CREATE INDEX event_log_context ON event_log (context_id);
        CREATE INDEX event_log_parent ON event_log (parent_id);
        CREATE INDEX event_log_type_ts ON event_log (type, ts);
        CREATE TRIGGER event_log_append_only BEFORE DELETE ON event_log
        BEGIN SELECT RAISE(ABORT, 'event_log is append-only: fire-alarm history is never purged'); END;
        CREATE TRIGGER event_log_immutable BEFORE UPDATE ON event_log
        BEGIN SELECT RAISE(ABORT, 'event_log is append-only'); END;
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            payload BLOB
        );
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """,
    ),
    Migration(
        component="core",
        version=2,
        description="points.expected_interval for offline detection",
        sql="ALTER TABLE points ADD COLUMN expected_interval REAL;",
    ),
]
