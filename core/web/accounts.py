"""Accounts: users, sessions, API tokens and the principal a request acts as.

Also the checks on what an account is made of: a login name, and a role with
the units and organisations it is assigned to.  ``AuthError`` is the user-facing
problem every part of authentication raises.
"""

from __future__ import annotations

import re
from typing import Iterable

import msgspec

from .roles import ALARM_ACTION_ROLES, ALL_UNIT_ROLES, SYSTEM_ROLES, Role

_NAME = re.compile(r"^[\w.@-]{1,64}$")


class AuthError(Exception):
    """A user-facing problem: bad name, weak password, unknown user."""


def normalise_name(name: str) -> str:
    name = name.strip().casefold()
    if not _NAME.match(name):
        raise AuthError("a user name is 1–64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_assignment(role: Role | str, units: Iterable[str], orgs: Iterable[str]) -> tuple[Role, list[str], list[str]]:
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
