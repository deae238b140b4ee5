"""The panel's tables (migration component ``web``): users and what they are assigned to,
sessions, API tokens and the authentication log.

Applied with the core's migrations at start (``core/runtime.py``); a new version is a
new ``Migration`` appended here, never an edit of one that has shipped.
"""

from __future__ import annotations

from firebus.sdk.migration import Migration

WEB_MIGRATIONS = [
    Migration(
        component="web",
        version=1,
        description="panel users, unit assignments, sessions, API tokens, authentication log",
        sql="""
        CREATE TABLE web_users (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,        -- case-folded login name
            role TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            must_change INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_ts REAL NOT NULL,
            updated_ts REAL NOT NULL
        );
        CREATE TABLE web_user_units (
            user_id TEXT NOT NULL REFERENCES web_users(id),
            unit_key TEXT NOT NULL,           -- the site file's unit key (stable across restarts)
            PRIMARY KEY (user_id, unit_key)
        ) WITHOUT ROWID;
        CREATE TABLE web_sessions (
            id_hash TEXT PRIMARY KEY,         -- SHA-256 of the cookie value
            user_id TEXT NOT NULL REFERENCES web_users(id),
            csrf TEXT NOT NULL,
            created_ts REAL NOT NULL,
            last_seen_ts REAL NOT NULL,
            ended_ts REAL,
            address TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        ) WITHOUT ROWID;
        CREATE INDEX web_sessions_user ON web_sessions (user_id);
        CREATE TABLE web_tokens (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES web_users(id),
            label TEXT NOT NULL DEFAULT '',
            secret_hash TEXT NOT NULL,
            created_ts REAL NOT NULL,
            expires_ts REAL,
            last_used_ts REAL,
            revoked_ts REAL
        );
        CREATE INDEX web_tokens_user ON web_tokens (user_id);
        CREATE TABLE web_auth_log (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            event TEXT NOT NULL,              -- login_ok, login_failed, login_throttled, logout, ...
            user_name TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
    Migration(
        component="web",
        version=2,
        description="users assigned to organisations (the site file's organisations: section)",
        sql="""
        CREATE TABLE web_user_orgs (
            user_id TEXT NOT NULL REFERENCES web_users(id),
            org_key TEXT NOT NULL,            -- the site file's organisation key; the units under it
                                              -- are read from the site file at each request
            PRIMARY KEY (user_id, org_key)
        ) WITHOUT ROWID;
        """,
    ),
]
