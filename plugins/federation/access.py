"""Who may use the centre's API, and for which sites.

The centre has its own users (table ``centre_users``), with the roles a site's panel
uses, scoped by site instead of by unit:

* ``admin`` and ``integrator`` see every site;
* every other role sees the sites listed for the user, and nothing of the others
  (a site outside the list answers 404, as if it did not exist);
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
    sites: tuple[str, ...] = ()

    @property
    def all_sites(self) -> bool:
        return self.role in ALL_SITE_ROLES

    @property
    def can_command(self) -> bool:
        return self.role in COMMAND_ROLES

    def sees(self, site_id: str) -> bool:
        return self.all_sites or site_id in self.sites


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def add_user(conn: Any, name: str, role: CentreRole, sites: list[str]) -> str:
    """Create or replace user ``name``; returns the new token (shown once, stored hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO centre_users (name, role, sites, token_sha256) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET role = excluded.role, sites = excluded.sites, "
        "token_sha256 = excluded.token_sha256", (name, str(role), sites, token_hash(token)))
    return token


async def user_named(conn: Any, name: str) -> CentreUser | None:
    cur = await conn.execute("SELECT name, role, sites FROM centre_users WHERE name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else CentreUser(name=row[0], role=CentreRole(row[1]), sites=tuple(row[2] or ()))
