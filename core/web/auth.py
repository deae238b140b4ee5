"""Users, roles, sessions and API tokens for the panel and the HTTP API — the import surface.

Choices, with the standard they answer (OWASP ASVS 5.0 numbers in brackets), and
where each lives:

* ``roles`` — the roles and what each may see and do.
* ``accounts`` — users, sessions, tokens and the ``Principal`` a request acts as; the
  checks on a login name and on a role's assignment; ``AuthError``.
* ``passwords`` — passwords are hashed with Argon2id at OWASP's minimum parameters
  (m = 19 MiB, t = 2, p = 1) [11.4.2]; hashing runs in a worker thread behind a
  limiter of two, so a burst of logins cannot starve alarm processing on a two-core
  box.  An unknown user name is checked against a dummy hash, so timing does not tell
  which names exist [6.3.8].
* ``auth_store`` — session ids and API tokens are 256-bit CSPRNG values [7.2.3,
  11.5.1]; only their SHA-256 is stored, so a copied database holds no live credential.
  A new session is made at every login [7.2.4]; logout ends it on the server [7.4.1];
  disabling a user or changing a password ends their sessions [7.4.2, 7.4.3].
* ``auth_setup`` — no default password: the first start creates ``admin`` with a
  one-time password that must be changed at first login.
* ``auth_migrations`` — the tables belong to the migration component ``web``
  (``WEB_MIGRATIONS``).

Import from here (``from .auth import …``); the modules above are how it is arranged.
"""

from __future__ import annotations

from .accounts import AuthError, Principal, Session, Token, User, check_assignment, normalise_name
from .auth_migrations import WEB_MIGRATIONS
from .auth_setup import demo_credentials, ensure_first_admin
from .auth_store import SESSION_ABSOLUTE_S, SESSION_IDLE_S, TOKEN_PREFIX, AuthStore, Db, _sha256
from .passwords import (
    HASHER,
    PASSWORD_MAX,
    PASSWORD_MIN,
    check_password,
    hash_password,
    new_password,
    set_common_passwords,
    verify_password,
)
from .roles import ALARM_ACTION_ROLES, ALL_UNIT_ROLES, SYSTEM_ROLES, URGE_ROLES, Role

_assignment = check_assignment  # its name before the split

__all__ = [
    "ALARM_ACTION_ROLES", "ALL_UNIT_ROLES", "HASHER", "PASSWORD_MAX", "PASSWORD_MIN", "SESSION_ABSOLUTE_S",
    "SESSION_IDLE_S", "SYSTEM_ROLES", "TOKEN_PREFIX", "URGE_ROLES", "WEB_MIGRATIONS", "AuthError", "AuthStore",
    "Db", "Principal", "Role", "Session", "Token", "User", "_sha256", "check_assignment", "check_password",
    "demo_credentials", "ensure_first_admin", "hash_password", "new_password", "normalise_name",
    "set_common_passwords", "verify_password",
]
