"""Users, roles, sessions and API tokens for the panel and the HTTP API.

Choices, with the standard they answer (OWASP ASVS 5.0 numbers in brackets):

* Passwords are hashed with Argon2id at OWASP's minimum parameters (m = 19 MiB,
  t = 2, p = 1) [11.4.2]; hashing runs in a worker thread behind a limiter of two,
  so a burst of logins cannot starve alarm processing on a two-core box.  An
  unknown user name is checked against a dummy hash, so timing does not tell
  which names exist [6.3.8].
* Session ids and API tokens are 256-bit CSPRNG values [7.2.3, 11.5.1]; only their
  SHA-256 is stored, so a copied database holds no live credential.  A new session
  is made at every login [7.2.4]; logout ends it on the server [7.4.1]; disabling a
  user or changing a password ends their sessions [7.4.2, 7.4.3].
* No default password: the first start creates ``admin`` with a one-time password
  that must be changed at first login.
* Tables belong to the migration component ``web`` (``WEB_MIGRATIONS``).
"""

from __future__ import annotations

import asyncio

import hashlib
import re
import secrets
import time
from enum import StrEnum
from typing import Any, Callable, Iterable, Protocol, Sequence

import anyio
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type

from firebus.sdk.context import new_id
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


class Role(StrEnum):
    ADMIN = "admin"  # everything, every unit, user management
    INTEGRATOR = "integrator"  # commissioning: every unit, plugins, bus health
    UNIT_MANAGER = "unit_manager"  # 消防安全管理人: their units, alarm actions
    DUTY_OFFICER = "duty_officer"  # 值班员: their units, alarm actions
    MAINTENANCE_ENGINEER = "maintenance_engineer"  # 维保工程师: the units they serve, alarm actions, repairs
    SUPERVISOR = "supervisor"  # 行业/属地监管: reads across their units and organisations, urges
    FIRE_INSPECTOR = "fire_inspector"  # 消防监督员: reads across their organisations, urges


#: Roles that see every unit (and devices with no unit at all).
ALL_UNIT_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR})
#: Roles that may acknowledge, silence and give a verdict (and, by the same rule, act on a
#: plugin's records: rectify a hazard).  A maintenance engineer answers faults and false
#: alarms of the units they serve; supervisors and inspectors watch and urge, the unit acts.
ALARM_ACTION_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.UNIT_MANAGER, Role.DUTY_OFFICER,
                                Role.MAINTENANCE_ENGINEER})
#: Roles that may urge (催促) a unit: ``firebus.sdk.web.URGE_ROLES`` (the supervision plugin).
URGE_ROLES = frozenset({Role.SUPERVISOR, Role.FIRE_INSPECTOR, Role.ADMIN})
#: Roles that see system pages: plugins, bus health, the full notification log.
SYSTEM_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR})

SESSION_IDLE_S = 12 * 3600  # one duty shift [7.3.1]; an open live view counts as use
SESSION_ABSOLUTE_S = 7 * 86400  # [7.3.2]
PASSWORD_MIN = 8  # [6.2.1]; 15 or more is what the change form recommends
PASSWORD_MAX = 128  # [6.2.9] allows at least 64
_NAME = re.compile(r"^[\w.@-]{1,64}$")

# The most common passwords (and the patterns people type at a fire-control panel).
# A short list shipped in the code; ASVS 6.2.4 asks for 3000 — a larger list file can
# replace this without code changes via ``set_common_passwords``.
_COMMON = {
    "password", "password1", "password123", "12345678", "123456789", "1234567890", "123123123",
    "qwertyui", "qwerty123", "11111111", "00000000", "88888888", "66666666", "iloveyou",
    "abc12345", "admin123", "administrator", "firebus", "firebus1", "firebus123", "welcome1",
    "letmein1", "changeme", "passw0rd", "p@ssw0rd", "a1234567", "aa123456", "1q2w3e4r",
    "qwertyuiop", "1qaz2wsx", "zxcvbnm1", "woaini1314", "5201314520", "sunshine", "football",
    "baseball", "superman", "trustno1", "12341234", "987654321", "asdfghjk", "asdf1234",
    "xiaofang", "xiaofang119", "fire1234", "119119119", "admin1234", "root1234", "test1234",
}


def set_common_passwords(words: Iterable[str]) -> None:
    _COMMON.update(w.strip().casefold() for w in words if w.strip())


class AuthError(Exception):
    """A user-facing problem: bad name, weak password, unknown user."""


def normalise_name(name: str) -> str:
    name = name.strip().casefold()
    if not _NAME.match(name):
        raise AuthError("a user name is 1–64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_password(password: str, name: str = "") -> None:
    """No composition rules [6.2.5]; length, and not a known-common password [6.2.4]."""
    if len(password) < PASSWORD_MIN:
        raise AuthError(f"a password needs at least {PASSWORD_MIN} characters (15 or more is better)")
    if len(password) > PASSWORD_MAX:
        raise AuthError(f"a password may have at most {PASSWORD_MAX} characters")
    folded = password.casefold()
    if folded in _COMMON or (name and folded == name.casefold()):
        raise AuthError("this password is too common or equals the user name; choose another")


def _assignment(role: Role | str, units: Iterable[str], orgs: Iterable[str]) -> tuple[Role, list[str], list[str]]:
    """A role and what it is assigned to, checked: every role but admin and integrator needs
    at least one unit or organisation (it would see nothing)."""
    try:
        role = Role(role)
    except ValueError:
        raise AuthError(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}") from None
    unit_keys = sorted({u.strip() for u in units if u.strip()})
    org_keys = sorted({o.strip() for o in orgs if o.strip()})
    if role not in ALL_UNIT_ROLES and not unit_keys and not org_keys:
        raise AuthError(f"a {role} sees only the units and organisations assigned to them: "
                        "give at least one --unit or --org")
    return role, unit_keys, org_keys


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Db(Protocol):
    """What the store needs of ``firebus.core.storage.Storage``."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...


class User(msgspec.Struct, kw_only=True):
    id: str
    name: str
    role: Role
    units: list[str] = []  # site unit keys assigned directly
    orgs: list[str] = []  # site organisation keys: every unit under them, from the site file
    must_change: bool = False
    disabled: bool = False
    created_ts: float = 0.0


class Session(msgspec.Struct, kw_only=True):
    id_hash: str
    user_id: str
    csrf: str
    created_ts: float
    last_seen_ts: float


class Token(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    user_name: str = ""
    label: str = ""
    created_ts: float
    expires_ts: float | None = None
    last_used_ts: float | None = None
    revoked_ts: float | None = None


class Principal(msgspec.Struct, kw_only=True):
    """Who is asking, and how: what every page, API call and stream checks."""

    user: User
    via: str  # "session" | "token"
    session: Session | None = None
    token_id: str | None = None

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def all_units(self) -> bool:
        return self.user.role in ALL_UNIT_ROLES

    @property
    def can_act(self) -> bool:
        return self.user.role in ALARM_ACTION_ROLES

    @property
    def is_system(self) -> bool:
        return self.user.role in SYSTEM_ROLES

    @property
    def csrf(self) -> str | None:
        return self.session.csrf if self.session else None


# Hashing: OWASP Password Storage Cheat Sheet minimum for Argon2id.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
_hash_limiter: anyio.CapacityLimiter | None = None
_DUMMY_HASH: str | None = None


def _limiter() -> anyio.CapacityLimiter:
    global _hash_limiter
    if _hash_limiter is None:
        _hash_limiter = anyio.CapacityLimiter(2)
    return _hash_limiter


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(HASHER.hash, password, limiter=_limiter())


async def verify_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not the user exists."""
    global _DUMMY_HASH
    if stored is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = await hash_password(secrets.token_urlsafe(16))
        stored = _DUMMY_HASH

    def check() -> bool:
        try:
            return HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check, limiter=_limiter())


def new_password() -> str:
    """A one-time password people can type: 20 base32-ish characters (~100 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


TOKEN_PREFIX = "fbt_"


class AuthStore:
    """Users, sessions and tokens in the site database (through the storage writer)."""

    def __init__(self, db: Db, *, now: Callable[[], float] = time.time) -> None:
        self.db = db
        self.now = now

    # -- users ---------------------------------------------------------------------------

    async def count_users(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM web_users")
        return int(row[0]) if row else 0

    async def _user_from_row(self, row: tuple[Any, ...]) -> User:
        units = [r[0] for r in await self.db.fetchall(
            "SELECT unit_key FROM web_user_units WHERE user_id = ? ORDER BY unit_key", (row[0],)
        )]
        orgs = [r[0] for r in await self.db.fetchall(
            "SELECT org_key FROM web_user_orgs WHERE user_id = ? ORDER BY org_key", (row[0],)
        )]
        return User(
            id=row[0], name=row[1], role=Role(row[2]), must_change=bool(row[3]), disabled=bool(row[4]),
            created_ts=row[5], units=units, orgs=orgs,
        )

    _USER_COLS = "id, name, role, must_change, disabled, created_ts"

    async def get_user(self, name: str) -> User | None:
        try:
            name = normalise_name(name)
        except AuthError:
            return None
        row = await self.db.fetchone(f"SELECT {self._USER_COLS} FROM web_users WHERE name = ?", (name,))
        return await self._user_from_row(row) if row else None

    async def get_user_by_id(self, user_id: str) -> User | None:
        row = await self.db.fetchone(f"SELECT {self._USER_COLS} FROM web_users WHERE id = ?", (user_id,))
        return await self._user_from_row(row) if row else None

    async def list_users(self) -> list[User]:
        rows = await self.db.fetchall(f"SELECT {self._USER_COLS} FROM web_users ORDER BY name")
        return [await self._user_from_row(r) for r in rows]

    async def create_user(
        self,
        name: str,
        role: Role | str,
        *,
        units: Iterable[str] = (),
        orgs: Iterable[str] = (),
        password: str | None = None,
        must_change: bool | None = None,
    ) -> tuple[User, str]:
        """Create a user; without ``password`` a one-time one is made (to change at first login).

        ``orgs``: organisation keys; the user sees every unit under them (read from the
        site file at each request).  Returns the user and the password to hand over.
        """
        name = normalise_name(name)
        role, units, orgs = _assignment(role, units, orgs)
        if await self.get_user(name) is not None:
            raise AuthError(f"user {name!r} already exists")
        generated = password is None
        if password is None:
            password = new_password()
        else:
            check_password(password, name)
        now = self.now()
        user = User(id=new_id(), name=name, role=role, units=units, orgs=orgs,
                    must_change=generated if must_change is None else must_change, created_ts=now)
        await self.db.execute(
            "INSERT INTO web_users (id, name, role, password_hash, must_change, disabled, created_ts, updated_ts)"
            " VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (user.id, name, str(role), await hash_password(password), int(user.must_change), now, now),
        )
        await self._store_assignment(user.id, units, orgs)
        return user, password

    async def _store_assignment(self, user_id: str, units: list[str], orgs: list[str]) -> None:
        for unit in units:
            await self.db.execute("INSERT INTO web_user_units (user_id, unit_key) VALUES (?, ?)", (user_id, unit))
        for org in orgs:
            await self.db.execute("INSERT INTO web_user_orgs (user_id, org_key) VALUES (?, ?)", (user_id, org))

    async def set_assignment(
        self, name: str, *, role: Role | str | None = None, units: Iterable[str] = (), orgs: Iterable[str] = ()
    ) -> User:
        """Replace a user's role (if given), units and organisations.  Takes effect at their
        next request: every request reads the user again, so no session needs ending."""
        user = await self.get_user(name)
        if user is None:
            raise AuthError(f"no user {name!r}")
        new_role, new_units, new_orgs = _assignment(role if role is not None else user.role, units, orgs)
        await self.db.execute("UPDATE web_users SET role = ?, updated_ts = ? WHERE id = ?",
                              (str(new_role), self.now(), user.id))
        await self.db.execute("DELETE FROM web_user_units WHERE user_id = ?", (user.id,))
        await self.db.execute("DELETE FROM web_user_orgs WHERE user_id = ?", (user.id,))
        await self._store_assignment(user.id, new_units, new_orgs)
        found = await self.get_user_by_id(user.id)
        assert found is not None
        return found

    async def set_password(self, user_id: str, password: str, *, keep_session: str | None = None) -> None:
        """Change a password; every other session of the user ends [7.4.3]."""
        user = await self.get_user_by_id(user_id)
        if user is None:
            raise AuthError("no such user")
        check_password(password, user.name)
        await self.db.execute(
            "UPDATE web_users SET password_hash = ?, must_change = 0, updated_ts = ? WHERE id = ?",
            (await hash_password(password), self.now(), user_id),
        )
        await self.db.execute(
            "UPDATE web_sessions SET ended_ts = ? WHERE user_id = ? AND ended_ts IS NULL AND id_hash != ?",
            (self.now(), user_id, keep_session or ""),
        )

    async def reset_password(self, name: str, *, must_change: bool = True) -> str:
        """A new generated password (to change at next login by default); ends the user's sessions."""
        user = await self.get_user(name)
        if user is None:
            raise AuthError(f"no user {name!r}")
        password = new_password()
        await self.db.execute(
            "UPDATE web_users SET password_hash = ?, must_change = ?, updated_ts = ? WHERE id = ?",
            (await hash_password(password), int(must_change), self.now(), user.id),
        )
        await self.end_sessions(user.id)
        return password

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling ends the user's sessions at once [7.4.2]; tokens stop working too."""
        await self.db.execute("UPDATE web_users SET disabled = ?, updated_ts = ? WHERE id = ?",
                              (int(disabled), self.now(), user_id))
        if disabled:
            await self.end_sessions(user_id)

    async def authenticate(self, name: str, password: str) -> User | None:
        try:
            folded = normalise_name(name)
        except AuthError:
            folded = ""
        row = await self.db.fetchone(
            "SELECT id, password_hash, disabled FROM web_users WHERE name = ?", (folded,)
        ) if folded else None
        ok = await verify_password(row[1] if row else None, password[:PASSWORD_MAX * 4])
        if not ok or row is None or row[2]:
            return None
        if HASHER.check_needs_rehash(row[1]):
            await self.db.execute("UPDATE web_users SET password_hash = ? WHERE id = ?",
                                  (await hash_password(password), row[0]))
        return await self.get_user_by_id(row[0])

    # -- sessions ------------------------------------------------------------------------

    async def create_session(self, user: User, *, address: str = "", user_agent: str = "") -> tuple[str, Session]:
        raw = secrets.token_urlsafe(32)
        now = self.now()
        session = Session(id_hash=_sha256(raw), user_id=user.id, csrf=secrets.token_urlsafe(32),
                          created_ts=now, last_seen_ts=now)
        await self.db.execute(
            "INSERT INTO web_sessions (id_hash, user_id, csrf, created_ts, last_seen_ts, address, user_agent)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session.id_hash, user.id, session.csrf, now, now, address[:64], user_agent[:256]),
        )
        return raw, session

    async def session(self, raw: str) -> Principal | None:
        if not raw or len(raw) > 128:
            return None
        row = await self.db.fetchone(
            "SELECT id_hash, user_id, csrf, created_ts, last_seen_ts FROM web_sessions"
            " WHERE id_hash = ? AND ended_ts IS NULL",
            (_sha256(raw),),
        )
        if row is None:
            return None
        session = Session(id_hash=row[0], user_id=row[1], csrf=row[2], created_ts=row[3], last_seen_ts=row[4])
        now = self.now()
        if now - session.last_seen_ts > SESSION_IDLE_S or now - session.created_ts > SESSION_ABSOLUTE_S:
            await self.db.execute("UPDATE web_sessions SET ended_ts = ? WHERE id_hash = ?", (now, session.id_hash))
            return None
        user = await self.get_user_by_id(session.user_id)
        if user is None or user.disabled:
            return None
        if now - session.last_seen_ts > 60:  # one write a minute at most, not one per request
            session.last_seen_ts = now
            await self.db.execute("UPDATE web_sessions SET last_seen_ts = ? WHERE id_hash = ?", (now, session.id_hash))
        return Principal(user=user, via="session", session=session)

    async def end_session(self, raw_or_hash: str, *, hashed: bool = False) -> None:
        id_hash = raw_or_hash if hashed else _sha256(raw_or_hash)
        await self.db.execute("UPDATE web_sessions SET ended_ts = ? WHERE id_hash = ? AND ended_ts IS NULL",
                              (self.now(), id_hash))

    async def end_sessions(self, user_id: str) -> None:
        """Server-side end of every session of a user (admins may do it [7.4.5])."""
        await self.db.execute("UPDATE web_sessions SET ended_ts = ? WHERE user_id = ? AND ended_ts IS NULL",
                              (self.now(), user_id))

    # -- API tokens ----------------------------------------------------------------------

    async def create_token(self, user_name: str, *, label: str = "", days: float | None = None) -> tuple[str, Token]:
        """A bearer token ``fbt_<id>_<secret>``; shown once, stored as a hash."""
        user = await self.get_user(user_name)
        if user is None:
            raise AuthError(f"no user {user_name!r}")
        if user.disabled:
            raise AuthError(f"user {user.name!r} is disabled")
        token_id = new_id().lower()
        secret = secrets.token_urlsafe(32)
        now = self.now()
        token = Token(id=token_id, user_id=user.id, user_name=user.name, label=label, created_ts=now,
                      expires_ts=now + days * 86400 if days else None)
        await self.db.execute(
            "INSERT INTO web_tokens (id, user_id, label, secret_hash, created_ts, expires_ts) VALUES (?, ?, ?, ?, ?, ?)",
            (token_id, user.id, label, _sha256(secret), now, token.expires_ts),
        )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", token

    async def list_tokens(self, user_name: str | None = None) -> list[Token]:
        sql = ("SELECT t.id, t.user_id, u.name, t.label, t.created_ts, t.expires_ts, t.last_used_ts, t.revoked_ts"
               " FROM web_tokens t JOIN web_users u ON u.id = t.user_id")
        params: tuple[Any, ...] = ()
        if user_name is not None:
            sql += " WHERE u.name = ?"
            params = (normalise_name(user_name),)
        rows = await self.db.fetchall(sql + " ORDER BY t.created_ts", params)
        return [Token(id=r[0], user_id=r[1], user_name=r[2], label=r[3], created_ts=r[4], expires_ts=r[5],
                      last_used_ts=r[6], revoked_ts=r[7]) for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke by id (the part after ``fbt_``, or the whole token)."""
        if token_id.startswith(TOKEN_PREFIX):
            token_id = token_id[len(TOKEN_PREFIX):].split("_", 1)[0]
        row = await self.db.fetchone("SELECT revoked_ts FROM web_tokens WHERE id = ?", (token_id.lower(),))
        if row is None:
            return False
        if row[0] is None:
            await self.db.execute("UPDATE web_tokens SET revoked_ts = ? WHERE id = ?", (self.now(), token_id.lower()))
        return True

    async def revoke_user_tokens(self, user_name: str) -> int:
        tokens = [t for t in await self.list_tokens(user_name) if t.revoked_ts is None]
        for t in tokens:
            await self.revoke_token(t.id)
        return len(tokens)

    async def token(self, raw: str) -> Principal | None:
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
            return None
        token_id, _, secret = raw[len(TOKEN_PREFIX):].partition("_")
        row = await self.db.fetchone(
            "SELECT user_id, secret_hash, expires_ts, revoked_ts, last_used_ts FROM web_tokens WHERE id = ?",
            (token_id,),
        )
        if row is None or not secrets.compare_digest(row[1], _sha256(secret)):
            return None
        now = self.now()
        if row[3] is not None or (row[2] is not None and now > row[2]):
            return None
        user = await self.get_user_by_id(row[0])
        if user is None or user.disabled:
            return None
        if row[4] is None or now - row[4] > 60:
            self._touch_token(token_id, now)
        return Principal(user=user, via="token", token_id=token_id)

    def _touch_token(self, token_id: str, now: float) -> None:
        # Not awaited: "last used" is bookkeeping, and at full ingest a telemetry-lane write
        # can wait seconds behind queued readings; a request must not wait for it.
        submit = getattr(self.db, "submit", None)
        if submit is None:  # a store without a queue of its own (tests' fakes)
            self._pending_touch = asyncio.ensure_future(
                self.db.execute("UPDATE web_tokens SET last_used_ts = ? WHERE id = ?", (now, token_id)))
            return
        from firebus.core.storage import Op

        submit(Op([("UPDATE web_tokens SET last_used_ts = ? WHERE id = ?", [(now, token_id)])]))

    # -- the authentication log [16.3.1, 16.3.2] -----------------------------------------

    async def log(self, event: str, user_name: str = "", address: str = "", detail: str = "") -> None:
        # Control characters are stripped so a crafted user name cannot forge log lines [16.4.1].
        clean = lambda s: re.sub(r"[\x00-\x1f\x7f]", "?", s)[:200]  # noqa: E731
        await self.db.execute(
            "INSERT INTO web_auth_log (ts, event, user_name, address, detail) VALUES (?, ?, ?, ?, ?)",
            (self.now(), event, clean(user_name), clean(address), clean(detail)),
        )

    async def auth_log(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT ts, event, user_name, address, detail FROM web_auth_log ORDER BY seq DESC LIMIT ?", (limit,)
        )
        return [dict(zip(("ts", "event", "user_name", "address", "detail"), r)) for r in rows]


async def ensure_first_admin(db: Db, *, name: str = "admin") -> str | None:
    """On a database with no users, create ``admin`` with a one-time password and return it.

    Returns None when users exist (nothing to print).  There is never a default password.
    """
    store = AuthStore(db)
    if await store.count_users():
        return None
    _, password = await store.create_user(name, Role.ADMIN)
    await store.log("first_admin_created", name)
    return password


async def demo_credentials(db: Db, *, name: str = "demo") -> tuple[str, str]:
    """For ``firebus demo``: an admin ``demo`` with a fresh password at every start (printed
    by the runner; no forced change, the demo is for looking around).  Returns (name, password)."""
    store = AuthStore(db)
    if await store.get_user(name) is None:
        _, password = await store.create_user(name, Role.ADMIN, must_change=False)
    else:
        password = await store.reset_password(name, must_change=False)
    await store.log("demo_credentials", name)
    return name, password
