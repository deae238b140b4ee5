"""Who may use the centre's API, and for which sites.

The centre has its own users (table ``centre_users``), with the roles a site's panel
uses, scoped by site instead of by unit:

* ``admin`` and ``integrator`` see every site;
* every other role sees the sites listed for the user and every site covered by the
  user's organisations or an organisation below them (``plugins/federation/orgs.py``),
  and nothing of the others (a site outside answers 404, as if it did not exist).
  The organisations' sites are read at every request: moving a site between
  organisations changes what a user sees without a new token;
* ``admin``, ``integrator``, ``unit_manager``, ``duty_officer`` and ``maintenance_engineer``
  may send alarm commands (the site panel's alarm-action roles); ``supervisor`` and
  ``fire_inspector`` only read.

A user authenticates with ``Authorization: Bearer <token>``; the token is made once by
``firebus federation user add`` and stored as its SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from typing import Any

import msgspec


class CentreRole(StrEnum):
    ADMIN = "admin"
    INTEGRATOR = "integrator"
    UNIT_MANAGER = "unit_manager"
    DUTY_OFFICER = "duty_officer"
    MAINTENANCE_ENGINEER = "maintenance_engineer"
    SUPERVISOR = "supervisor"
    FIRE_INSPECTOR = "fire_inspector"


ALL_SITE_ROLES = frozenset({CentreRole.ADMIN, CentreRole.INTEGRATOR})
COMMAND_ROLES = frozenset({CentreRole.ADMIN, CentreRole.INTEGRATOR, CentreRole.UNIT_MANAGER,
                           CentreRole.DUTY_OFFICER, CentreRole.MAINTENANCE_ENGINEER})
TOKEN_PREFIX = "fbc_"


class CentreUser(msgspec.Struct, frozen=True):
    name: str
    role: CentreRole
    sites: tuple[str, ...] = ()  # listed for the user
    orgs: tuple[str, ...] = ()  # organisations the user is assigned to
    org_sites: tuple[str, ...] = ()  # sites under those organisations, when the user was loaded

    @property
    def all_sites(self) -> bool:
        return self.role in ALL_SITE_ROLES

    @property
    def can_command(self) -> bool:
        return self.role in COMMAND_ROLES

    @property
    def visible_sites(self) -> tuple[str, ...]:
        """Listed and under the organisations, sorted (meaningless when ``all_sites``)."""
        return tuple(sorted(set(self.sites) | set(self.org_sites)))

    def sees(self, site_id: str) -> bool:
        return self.all_sites or site_id in self.sites or site_id in self.org_sites


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def add_user(conn: Any, name: str, role: CentreRole, sites: list[str], orgs: list[str] | tuple[str, ...] = (),
                   ) -> str:
    """Create or replace user ``name``; returns the new token (shown once, stored hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO centre_users (name, role, sites, orgs, token_sha256) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET role = excluded.role, sites = excluded.sites, orgs = excluded.orgs, "
        "token_sha256 = excluded.token_sha256", (name, str(role), sites, list(orgs), token_hash(token)))
    return token


# One user with the sites under their organisations' subtrees (UNION: a cycle cannot loop).
_USER = """
WITH RECURSIVE u AS (SELECT name, role, sites, orgs FROM centre_users WHERE {where}),
sub(key) AS (
    SELECT o.key FROM centre_orgs o JOIN u ON o.key = ANY(u.orgs)
    UNION
    SELECT o.key FROM centre_orgs o JOIN sub ON o.parent = sub.key
)
SELECT u.name, u.role, u.sites, u.orgs,
       ARRAY(SELECT DISTINCT s.site_id FROM centre_org_sites s WHERE s.org IN (SELECT key FROM sub) ORDER BY 1)
FROM u
"""
USER_BY_NAME = _USER.format(where="name = %s")
USER_BY_TOKEN = _USER.format(where="token_sha256 = %s")


def user_from_row(row: tuple[Any, ...]) -> CentreUser:
    """Raises ValueError for a role this version does not know."""
    return CentreUser(name=row[0], role=CentreRole(row[1]), sites=tuple(row[2] or ()), orgs=tuple(row[3] or ()),
                      org_sites=tuple(row[4] or ()))


async def user_named(conn: Any, name: str) -> CentreUser | None:
    cur = await conn.execute(USER_BY_NAME, (name,))
    row = await cur.fetchone()
    return None if row is None else user_from_row(row)


def scoped_where(user: CentreUser, site_column: str, equal: dict[str, Any] | None = None) -> tuple[str, list[Any]]:
    """A WHERE condition and its parameters: the sites ``user`` sees (on ``site_column``) and
    ``column = value`` for each filter in ``equal`` whose value is not empty or None."""
    where, params = ["TRUE"], []
    if not user.all_sites:
        where.append(f"{site_column} = ANY(%s)")
        params.append(list(user.visible_sites))
    for column, value in (equal or {}).items():
        if value is not None and value != "":
            where.append(f"{column} = %s")
            params.append(value)
    return " AND ".join(where), params
