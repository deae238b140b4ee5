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

# The journal (issue "alarms first" §4): one append-only, numbered table for every
# durable entry.  State changes are compact rows (they are also the readings history);
# everything else is JSON with its lineage.  ``readings`` and ``event_log`` stay as
# views, so SQL written against them (tools, tests, people) keeps working.
CORE_MIGRATIONS.append(
    Migration(
        component="core",
        version=3,
        description="the journal: readings and the event log become one numbered, append-only table",
        sql="""
        CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,          -- assigned at commit, in commit order
            ts REAL NOT NULL,                 -- our clock when the entry was made (s)
            type TEXT NOT NULL,               -- payload type: StateChanged, AlarmEvent …
            lane TEXT NOT NULL,               -- alarm | telemetry
            subject TEXT,                     -- what it is about: point, alarm, device …
            vts INTEGER,                      -- StateChanged: the reading's own time (ms)
            value,                            -- StateChanged: the value
            fault TEXT,                       -- StateChanged: why the value is not a measurement
            late INTEGER,                     -- StateChanged: older than the state it found (history only)
            context_id TEXT,
            parent_id TEXT,
            actor TEXT,
            actor_id TEXT,
            data TEXT                         -- other payloads: JSON
        );
        INSERT INTO journal (ts, type, lane, subject, vts, value, fault, late, context_id, parent_id, actor,
                             actor_id, data)
        SELECT ts, type, lane, subject, vts, value, fault, late, context_id, parent_id, actor, actor_id, data FROM (
            SELECT ts / 1000.0 AS ts, 'StateChanged' AS type, 'telemetry' AS lane, point_id AS subject, ts AS vts,
                   value, fault, 0 AS late, NULL AS context_id, NULL AS parent_id, NULL AS actor,
                   NULL AS actor_id, NULL AS data, 0 AS origin, 0 AS oseq
            FROM readings
            UNION ALL
            SELECT ts, type, lane,
                   coalesce(json_extract(data, '$.alarm_id'), json_extract(data, '$.device_id'),
                            json_extract(data, '$.transport'), json_extract(data, '$.entry_id'),
                            json_extract(data, '$.notification_id'), json_extract(data, '$.source')),
                   NULL, NULL, NULL, NULL, context_id, parent_id, actor, actor_id, data, 1, seq
            FROM event_log
        ) ORDER BY ts, origin, oseq;
        DROP TRIGGER event_log_append_only;
        DROP TRIGGER event_log_immutable;
        DROP TABLE event_log;
        DROP TABLE readings;
        CREATE UNIQUE INDEX journal_state ON journal (subject, vts) WHERE type = 'StateChanged';
        CREATE INDEX journal_entry ON journal (type, subject, seq) WHERE type != 'StateChanged';
        CREATE INDEX journal_type_ts ON journal (type, ts) WHERE type != 'StateChanged';
        CREATE INDEX journal_context ON journal (context_id) WHERE context_id IS NOT NULL;
        CREATE INDEX journal_parent ON journal (parent_id) WHERE parent_id IS NOT NULL;
        CREATE TRIGGER journal_immutable BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
        CREATE TRIGGER journal_append_only BEFORE DELETE ON journal
        WHEN old.type != 'StateChanged' OR old.lane = 'alarm'
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only: fire-alarm history is never purged'); END;
        CREATE VIEW readings (point_id, ts, value, fault) AS
            SELECT subject, vts, value, fault FROM journal WHERE type = 'StateChanged';
        CREATE TRIGGER readings_insert INSTEAD OF INSERT ON readings
        BEGIN
            INSERT OR IGNORE INTO journal (seq, ts, type, lane, subject, vts, value, fault, late)
            VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM journal), new.ts / 1000.0, 'StateChanged',
                    'telemetry', new.point_id, new.ts, new.value, new.fault, 0);
        END;
        CREATE VIEW event_log (seq, ts, type, lane, context_id, parent_id, actor, actor_id, data) AS
            SELECT seq, ts, type, lane, context_id, parent_id, actor, actor_id, data FROM journal
            WHERE type != 'StateChanged';
        CREATE TRIGGER event_log_append_only INSTEAD OF DELETE ON event_log
        BEGIN SELECT RAISE(ABORT, 'event_log is append-only: fire-alarm history is never purged'); END;
        CREATE TRIGGER event_log_immutable INSTEAD OF UPDATE ON event_log
        BEGIN SELECT RAISE(ABORT, 'event_log is append-only'); END;
        -- Durable consumers' positions: everything up to seq is done; ahead = seqs past it done early.
        -- version: the consumer's checkpoint number; a checkpoint never overwrites a newer one
        -- (checkpoints may commit out of order across the two lanes).
        CREATE TABLE journal_cursors (
            name TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            ahead TEXT NOT NULL DEFAULT '[]',
            version INTEGER NOT NULL DEFAULT 0,
            updated_ts REAL NOT NULL
        ) WITHOUT ROWID;
        -- Rollups merge incrementally from the journal: the seq of the value kept as `last`.
        ALTER TABLE readings_5m ADD COLUMN last_seq INTEGER;
        ALTER TABLE points ADD COLUMN alarm INTEGER;       -- the driver's lane for the point (NULL: by class)
        ALTER TABLE readings_1h ADD COLUMN last_seq INTEGER;
        """,
    )
)

# Floor plans (issue 22): one plan image per place (a floor, or a unit's site plan) and
# where each device sits on it, as fractions of the image (0–1, so a re-drawn plan of the
# same extent keeps the positions).  Images are small (≤ 5 MB) and few: kept in the
# database so a backup of the file is a backup of the site.
CORE_MIGRATIONS.append(
    Migration(
        component="core",
        version=4,
        description="floor plans: plan images per place and device positions on them",
        sql="""
        CREATE TABLE plan_images (
            place_id TEXT PRIMARY KEY,        -- registry place (floor); not a foreign key: places are re-read from the site file
            content_type TEXT NOT NULL,       -- image/png | image/jpeg | image/webp
            image BLOB NOT NULL,
            width INTEGER NOT NULL,           -- pixels
            height INTEGER NOT NULL,
            updated_ts REAL NOT NULL,
            updated_by TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE plan_positions (
            device_id TEXT PRIMARY KEY,       -- a device is on one plan at a time
            place_id TEXT NOT NULL,
            x REAL NOT NULL,                  -- 0 = left edge of the image, 1 = right edge
            y REAL NOT NULL,                  -- 0 = top, 1 = bottom
            updated_ts REAL NOT NULL,
            updated_by TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX plan_positions_place ON plan_positions (place_id);
        """,
    )
)

# Per-database keys (issue 21): one random master key, from which each purpose's key is
# derived (Core.secret).  Signed links in notifications and the app's link checks use the
# same derived key without either plugin knowing the other; a restored backup keeps its links.
CORE_MIGRATIONS.append(
    Migration(
        component="core",
        version=5,
        description="a per-database master key for signed links and other derived secrets",
        sql="""
        CREATE TABLE core_secret (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            master BLOB NOT NULL,             -- 32 random bytes, made once
            created_ts REAL NOT NULL
        );
        """,
    )
)

# Media with alarms (issue 17, video phase 2): the still and the clip of a camera's alarm.
# The bytes are files under <database folder>/media/ (clips are megabytes: a backup of the
# database stays small and media can sit on a disk of their own); this is their index, and
# which alarm shows which medium.  Attachments are never deleted: a medium is purged only
# when no alarm it is attached to needs it any more (core/media.py, the retention rule).
CORE_MIGRATIONS.append(
    Migration(
        component="core",
        version=6,
        description="media (stills, clips) kept with alarms: file index and alarm attachments",
        sql="""
        CREATE TABLE media (
            id TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,       -- image/jpeg | image/png | image/webp | video/mp4 | video/webm
            bytes INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,               -- relative to the media folder
            kind TEXT NOT NULL DEFAULT 'other',  -- still | clip | other
            device_id TEXT,
            ts REAL NOT NULL,                 -- the moment it shows
            start_ts REAL,                    -- a clip's span
            end_ts REAL,
            created_ts REAL NOT NULL,
            point_id TEXT,                    -- offered with a reading of this point (Reading.media) …
            offered_ts REAL                   -- … at this time: the engine attaches it to the alarm it raises
        );
        CREATE INDEX media_offered ON media (point_id, offered_ts) WHERE point_id IS NOT NULL;
        CREATE INDEX media_created ON media (created_ts);
        CREATE TABLE media_links (
            alarm_id TEXT NOT NULL,
            media_id TEXT NOT NULL,
            ts REAL NOT NULL,
            PRIMARY KEY (alarm_id, media_id)
        ) WITHOUT ROWID;
        CREATE INDEX media_links_media ON media_links (media_id);
        """,
    )
)
