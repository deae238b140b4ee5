"""The user, session and token store, in the site database (through the storage writer).

Session ids and API tokens are 256-bit CSPRNG values [7.2.3, 11.5.1]; only their
SHA-256 is stored, so a copied database holds no live credential.  A new session is
made at every login [7.2.4]; logout ends it on the server [7.4.1]; disabling a user
or changing a password ends their sessions [7.4.2, 7.4.3].  The authentication log
[16.3] is kept here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from typing import Any, Callable, Iterable, Protocol, Sequence

from firebus.sdk.context import new_id

from .accounts import AuthError, Principal, Session, Token, User, check_assignment, normalise_name
from .passwords import HASHER, PASSWORD_MAX, check_password, hash_password, new_password, verify_password
from .roles import Role

SESSION_IDLE_S = 12 * 3600  # one duty shift [7.3.1]; an open live view counts as use
SESSION_ABSOLUTE_S = 7 * 86400  # [7.3.2]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Db(Protocol):
    """What the store needs of ``firebus.core.storage.Storage``."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    async def fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]: ...


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

    _USER_COLS = "id, name, role, must_change, disabled, created_ts"

    @classmethod
    def _user_reads(cls, user_id_sql: str, params: Sequence[Any]) -> list[tuple[str, Sequence[Any]]]:
        """The reads that make a ``User`` whose id is ``user_id_sql`` (a value or a subquery):
        asked in one batch, because every request authenticates (one reader hand-over, not three)."""
        return [
            (f"SELECT {cls._USER_COLS} FROM web_users WHERE id = ({user_id_sql})", params),
            (f"SELECT unit_key FROM web_user_units WHERE user_id = ({user_id_sql}) ORDER BY unit_key", params),
            (f"SELECT org_key FROM web_user_orgs WHERE user_id = ({user_id_sql}) ORDER BY org_key", params),
        ]

    @staticmethod
    def _user_from_rows(rows: Sequence[list[tuple[Any, ...]]]) -> User | None:
        users, units, orgs = rows
        if not users:
            return None
        row = users[0]
        return User(
            id=row[0], name=row[1], role=Role(row[2]), must_change=bool(row[3]), disabled=bool(row[4]),
            created_ts=row[5], units=[r[0] for r in units], orgs=[r[0] for r in orgs],
        )

    async def get_user(self, name: str) -> User | None:
        try:
            name = normalise_name(name)
        except AuthError:
            return None
        return self._user_from_rows(await self.db.fetch_batch(
            self._user_reads("SELECT id FROM web_users WHERE name = ?", (name,))))

    async def get_user_by_id(self, user_id: str) -> User | None:
        return self._user_from_rows(await self.db.fetch_batch(self._user_reads("?", (user_id,))))

    async def list_users(self) -> list[User]:
        rows = await self.db.fetchall("SELECT id FROM web_users ORDER BY name")
        users = [await self.get_user_by_id(r[0]) for r in rows]
        return [u for u in users if u is not None]

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
        role, units, orgs = check_assignment(role, units, orgs)
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
        new_role, new_units, new_orgs = check_assignment(role if role is not None else user.role, units, orgs)
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
        id_hash = _sha256(raw)
        sessions, *user_rows = await self.db.fetch_batch([
            ("SELECT id_hash, user_id, csrf, created_ts, last_seen_ts FROM web_sessions"
             " WHERE id_hash = ? AND ended_ts IS NULL", (id_hash,)),
            *self._user_reads("SELECT user_id FROM web_sessions WHERE id_hash = ? AND ended_ts IS NULL", (id_hash,)),
        ])
        if not sessions:
            return None
        row = sessions[0]
        session = Session(id_hash=row[0], user_id=row[1], csrf=row[2], created_ts=row[3], last_seen_ts=row[4])
        now = self.now()
        if now - session.last_seen_ts > SESSION_IDLE_S or now - session.created_ts > SESSION_ABSOLUTE_S:
            await self.db.execute("UPDATE web_sessions SET ended_ts = ? WHERE id_hash = ?", (now, session.id_hash))
            return None
        user = self._user_from_rows(user_rows)
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
        tokens, *user_rows = await self.db.fetch_batch([
            ("SELECT user_id, secret_hash, expires_ts, revoked_ts, last_used_ts FROM web_tokens WHERE id = ?",
             (token_id,)),
            *self._user_reads("SELECT user_id FROM web_tokens WHERE id = ?", (token_id,)),
        ])
        row = tokens[0] if tokens else None
        if row is None or not secrets.compare_digest(row[1], _sha256(secret)):
            return None
        now = self.now()
        if row[3] is not None or (row[2] is not None and now > row[2]):
            return None
        user = self._user_from_rows(user_rows)
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
