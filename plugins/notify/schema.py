"""The notify plugin's tables (component ``notify``)."""

from __future__ import annotations

from firebus.sdk import Migration

NOTIFY_MIGRATIONS = [
    Migration(
        component="notify",
        version=1,
        description="notification outbox, escalation state, channel health",
        sql="""
        CREATE TABLE notify_outbox (
            id TEXT PRIMARY KEY,              -- also the message id receivers can dedupe on
            dedup_key TEXT NOT NULL UNIQUE,   -- alarm, step or kind, recipient, channel
            alarm_id TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            step INTEGER NOT NULL DEFAULT 0,
            recipient TEXT NOT NULL,
            channel TEXT NOT NULL,
            status TEXT NOT NULL,             -- pending, inflight, sent, failed, held, digested, cancelled
            priority INTEGER NOT NULL DEFAULT 0,
            created_ts REAL NOT NULL,
            next_ts REAL NOT NULL,            -- not before: quiet hours, back-off
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            sent_ts REAL,
            context_id TEXT,                  -- the alarm's context, parent of the results
            message TEXT NOT NULL
        );
        CREATE INDEX notify_outbox_due ON notify_outbox (channel, status, next_ts);
        CREATE INDEX notify_outbox_alarm ON notify_outbox (alarm_id);
        CREATE INDEX notify_outbox_held ON notify_outbox (status, recipient, channel);
        CREATE TABLE notify_escalation (
            alarm_id TEXT NOT NULL,
            route TEXT NOT NULL,
            step INTEGER NOT NULL,            -- last step sent, -1 before the first
            due REAL,                         -- when the next step is due; NULL once stopped
            started_ts REAL NOT NULL,
            context_id TEXT,
            alarm TEXT NOT NULL,              -- the NEW AlarmEvent as JSON
            PRIMARY KEY (alarm_id, route)
        ) WITHOUT ROWID;
        CREATE INDEX notify_escalation_due ON notify_escalation (due);
        CREATE TABLE notify_channels (
            key TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            state TEXT NOT NULL,              -- unknown, up, down
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            last_ok_ts REAL,
            last_fail_ts REAL,
            sent INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        component="notify",
        version=2,
        description="ntfy push stream messages, web push keys and subscriptions",
        sql="""
        CREATE TABLE notify_ntfy (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of the stream (since=<id> resumes after it)
            id TEXT NOT NULL UNIQUE,          -- the outbox id, also ntfy's message id
            channel TEXT NOT NULL,
            topic TEXT NOT NULL,
            time INTEGER NOT NULL,
            expires INTEGER NOT NULL,         -- kept until (retention)
            event TEXT NOT NULL               -- the message event as ntfy's JSON
        );
        CREATE INDEX notify_ntfy_topic ON notify_ntfy (channel, topic, seq);
        CREATE INDEX notify_ntfy_expires ON notify_ntfy (expires);
        CREATE TABLE notify_webpush_keys (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            private_key TEXT NOT NULL,        -- VAPID P-256 private key, PKCS#8 PEM
            public_key TEXT NOT NULL,         -- uncompressed point, base64url (applicationServerKey)
            created_ts REAL NOT NULL
        );
        CREATE TABLE notify_webpush_subscriptions (
            endpoint TEXT PRIMARY KEY,        -- the push service URL of one browser
            user TEXT NOT NULL,               -- firebus user who registered it
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            created_ts REAL NOT NULL,
            last_ok_ts REAL
        ) WITHOUT ROWID;
        CREATE INDEX notify_webpush_user ON notify_webpush_subscriptions (user);
        """,
    ),
]
