"""The centre's PostgreSQL schema: one journal for every site, telemetry by day, latest state.

``(site_id, seq)`` is unique over ``journal`` (every entry but state changes)
and ``telemetry`` (the state changes: the history, as at the site, is one copy
of each reading).  ``telemetry`` is natively range-partitioned by the site's
commit time, one partition per UTC day, created ahead; a row outside every
partition lands in ``telemetry_default``.  ``journal``, ``telemetry`` and
``alarms`` refuse UPDATE and DELETE (retention drops whole partitions).
"""

from __future__ import annotations

import datetime as dt

DDL = """
CREATE TABLE IF NOT EXISTS journal (
    site_id  text        NOT NULL,
    seq      bigint      NOT NULL,
    ts       timestamptz NOT NULL,
    lane     text        NOT NULL,
    type     text        NOT NULL,
    subject  text,
    context  jsonb,
    data     jsonb       NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX IF NOT EXISTS journal_type_ts ON journal (type, ts);

CREATE TABLE IF NOT EXISTS telemetry (
    site_id  text        NOT NULL,
    seq      bigint      NOT NULL,
    ts       timestamptz NOT NULL,
    point_id text        NOT NULL,
    device_id text,
    vts      timestamptz NOT NULL,
    num      double precision,
    val      jsonb,
    fault    text,
    late     boolean     NOT NULL DEFAULT false,
    lane     text        NOT NULL,
    PRIMARY KEY (site_id, seq, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS telemetry_point ON telemetry (site_id, point_id, vts);
CREATE TABLE IF NOT EXISTS telemetry_default PARTITION OF telemetry DEFAULT;

CREATE TABLE IF NOT EXISTS latest_state (
    site_id     text        NOT NULL,
    point_id    text        NOT NULL,
    device_id   text,
    point_key   text,
    point_class text,
    num         double precision,
    val         jsonb,
    fault       text,
    vts         timestamptz NOT NULL,
    seq         bigint      NOT NULL,
    updated     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, point_id)
) WITH (fillfactor = 70);  -- room on the page: an upsert of the same point is a HOT update
CREATE INDEX IF NOT EXISTS latest_state_device ON latest_state (site_id, device_id);

CREATE TABLE IF NOT EXISTS alarms (
    site_id     text        NOT NULL,
    seq         bigint      NOT NULL,
    alarm_id    text        NOT NULL,
    transition  text        NOT NULL,
    category    text,
    severity    text,
    rule        text,
    device_id   text,
    point_id    text,
    unit_id     text,
    location_id text,
    value       jsonb,
    message     text,
    message_zh  text,
    status      text,
    ts          timestamptz NOT NULL,
    received    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX IF NOT EXISTS alarms_alarm ON alarms (site_id, alarm_id, seq);

-- One row per alarm: its latest transition (supervision views read this).
CREATE OR REPLACE VIEW alarms_current AS
    SELECT DISTINCT ON (site_id, alarm_id) * FROM alarms ORDER BY site_id, alarm_id, seq DESC;

-- Every entry of every site, as one relation (state changes from telemetry).
CREATE OR REPLACE VIEW journal_all AS
    SELECT site_id, seq, ts, lane, type, subject, data FROM journal
    UNION ALL
    SELECT site_id, seq, ts, lane, 'StateChanged', point_id,
           jsonb_build_object('point_id', point_id, 'device_id', device_id, 'new_value', coalesce(val, to_jsonb(num)),
                              'fault', fault, 'late', late, 'ts', extract(epoch FROM vts))
    FROM telemetry;

CREATE OR REPLACE FUNCTION firebus_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['journal', 'telemetry', 'alarms'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t || '_append_only') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW
                            EXECUTE FUNCTION firebus_append_only()', t || '_append_only', t);
        END IF;
    END LOOP;
END $$;
"""

# Centre → site commands (plugins/federation/desk.py).  ``commands`` is what a centre user
# asked for; ``sent_at`` is set once JetStream has it (NULL: the centre sends it again).
# ``command_results`` is the site's answer, the first one kept (a site repeats the same one).
# ``centre_users``: who may use the centre's API; a token is stored as its SHA-256 only.
COMMANDS_DDL = """
CREATE TABLE IF NOT EXISTS commands (
    id         text        PRIMARY KEY,
    site_id    text        NOT NULL,
    alarm_id   text        NOT NULL,
    kind       text        NOT NULL,
    note       text        NOT NULL DEFAULT '',
    issued_by  text        NOT NULL,
    role       text        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS commands_site ON commands (site_id, issued_at);
CREATE INDEX IF NOT EXISTS commands_unsent ON commands (issued_at) WHERE sent_at IS NULL;

CREATE TABLE IF NOT EXISTS command_results (
    command_id   text        PRIMARY KEY,
    site_id      text        NOT NULL,
    outcome      text        NOT NULL,
    reason       text,
    message      text        NOT NULL DEFAULT '',
    message_zh   text        NOT NULL DEFAULT '',
    alarm_status text        NOT NULL DEFAULT '',
    at           timestamptz NOT NULL,
    received     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS centre_users (
    name         text        PRIMARY KEY,
    role         text        NOT NULL,
    sites        text[]      NOT NULL DEFAULT '{}',
    token_sha256 bytea       NOT NULL UNIQUE,
    created      timestamptz NOT NULL DEFAULT now()
);
"""

# Migration 2 (issue 24): organisations at the centre.  ``centre_orgs`` is a forest (``parent``
# NULL at a root); ``centre_org_sites`` the sites each organisation covers directly (a site may
# be covered by several); a user's ``orgs`` add every site under those organisations' subtrees
# to the ``sites`` listed for them.  Run by ``Centre.migrate`` with the commands DDL (below).
ORGS_DDL = """
CREATE TABLE IF NOT EXISTS centre_orgs (
    key     text        PRIMARY KEY,
    name    text        NOT NULL,
    name_en text        NOT NULL DEFAULT '',
    kind    text        NOT NULL,
    parent  text        REFERENCES centre_orgs (key),
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS centre_orgs_parent ON centre_orgs (parent);

CREATE TABLE IF NOT EXISTS centre_org_sites (
    org     text NOT NULL REFERENCES centre_orgs (key) ON DELETE CASCADE,
    site_id text NOT NULL,
    PRIMARY KEY (org, site_id)
);
CREATE INDEX IF NOT EXISTS centre_org_sites_site ON centre_org_sites (site_id);

ALTER TABLE centre_users ADD COLUMN IF NOT EXISTS orgs text[] NOT NULL DEFAULT '{}';
"""
COMMANDS_DDL += ORGS_DDL  # Centre.migrate runs DDL and COMMANDS_DDL: the new statements ride with the latter

# The staging tables a batch is copied into (per connection; emptied at commit).  Every entry but
# a state change keeps its payload as jsonb (``fed_stage``).  State changes are decoded by the
# centre: their telemetry rows are COPY'd straight into ``telemetry``, and ``fed_stage_latest``
# gets one typed row per point (the batch's newest, deduplicated and put in key order by the
# centre) for the latest_state upsert — no jsonb to parse on the hot path, one COPY of history.
# ``fed_stage_telemetry`` is only used for a redelivered batch (below).
STAGE = """
CREATE TEMP TABLE IF NOT EXISTS fed_stage (
    site_id text, seq bigint, ts double precision, lane text, type text, subject text,
    context jsonb, data jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fed_stage_latest (
    site_id text, point_id text, device_id text, point_key text, point_class text,
    num double precision, val jsonb, fault text, vts timestamptz, seq bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fed_stage_telemetry (LIKE telemetry) ON COMMIT DELETE ROWS
"""

COPY_STAGE = "COPY fed_stage (site_id, seq, ts, lane, type, subject, context, data) FROM STDIN"
COPY_STAGE_LATEST = ("COPY fed_stage_latest (site_id, point_id, device_id, point_key, point_class, num, val, fault, "
                     "vts, seq) FROM STDIN")

# The hot path: state changes are COPY'd straight into telemetry (inside a savepoint); a batch
# holding one already stored (a redelivery) fails that COPY on the key, and the same rows go
# through the staging copy of telemetry and TELEMETRY_FROM_STAGE instead, which skips what is there.
COPY_TELEMETRY = ("COPY telemetry (site_id, seq, ts, point_id, device_id, vts, num, val, fault, late, lane) "
                  "FROM STDIN")
COPY_STAGE_TELEMETRY = ("COPY fed_stage_telemetry (site_id, seq, ts, point_id, device_id, vts, num, val, fault, "
                        "late, lane) FROM STDIN")

TELEMETRY_FROM_STAGE = """
INSERT INTO telemetry (site_id, seq, ts, point_id, device_id, vts, num, val, fault, late, lane)
SELECT site_id, seq, ts, point_id, device_id, vts, num, val, fault, late, lane
FROM fed_stage_telemetry
ON CONFLICT DO NOTHING
"""

# latest_state only moves forward (a higher seq); the staged rows are one per point already.
LATEST_FROM_STAGE = """
INSERT INTO latest_state AS cur (site_id, point_id, device_id, point_key, point_class, num, val, fault, vts, seq)
SELECT site_id, point_id, device_id, point_key, point_class, num, val, fault, vts, seq
FROM fed_stage_latest
ON CONFLICT (site_id, point_id) DO UPDATE SET
    device_id = excluded.device_id, point_key = excluded.point_key, point_class = excluded.point_class,
    num = excluded.num, val = excluded.val, fault = excluded.fault, vts = excluded.vts,
    seq = excluded.seq, updated = now()
WHERE excluded.seq > cur.seq
"""

# Entries other than state changes: one statement moves the staged batch into its tables;
# duplicates (a redelivery, a re-send after a site restart) are absorbed by the keys.
INGEST_EVENTS = """
WITH s AS (SELECT site_id, seq, to_timestamp(ts) AS ts, lane, type, subject, context, data FROM fed_stage),
j AS (
    INSERT INTO journal (site_id, seq, ts, lane, type, subject, context, data)
    SELECT site_id, seq, ts, lane, type, subject, context, data FROM s
    ON CONFLICT DO NOTHING RETURNING 1
),
a AS (
    INSERT INTO alarms (site_id, seq, alarm_id, transition, category, severity, rule, device_id, point_id,
                        unit_id, location_id, value, message, message_zh, status, ts)
    SELECT site_id, seq, data->>'alarm_id', data->>'transition', data->>'category', data->>'severity',
           data->>'rule', data->>'device_id', data->>'point_id', data->>'unit_id', data->>'location_id',
           data->'value', data->>'message', data->>'message_zh', data->>'status',
           coalesce(to_timestamp((data->>'ts')::float8), ts)
    FROM s WHERE type = 'AlarmEvent'
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM j), 0, 0, (SELECT count(*) FROM a)
"""


def day_of(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def partition_name(day: dt.date) -> str:
    return f"telemetry_{day:%Y%m%d}"


def partition_ddl(day: dt.date) -> str:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=1)
    return (f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF telemetry "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
