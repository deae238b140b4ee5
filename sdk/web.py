"""Who is calling a plugin's route, and which routes every signed-in role may reach.

The core mounts a plugin's routes (``firebus_register_routes``) under
``/-/plugins/<name>/`` behind its own authentication: the panel's session cookie
or ``Authorization: Bearer <token>``, exactly as for ``/api/``.  By default only
system roles (admin, integrator) get through.  A route wrapped in
:func:`signed_in` is open to every signed-in role; its handler scopes what it
shows by :func:`caller` (a unit manager sees only their units).
"""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

import msgspec

#: ASGI scope key under which the core leaves the caller for plugin routes.
SCOPE_KEY = "firebus.caller"
#: Route attribute read by the core's plugin mount.
ACCESS_ATTR = "firebus_access"

R = TypeVar("R")

#: Roles that may urge a unit (supervision): sector supervisor, fire inspector, admin.
URGE_ROLES = frozenset({"supervisor", "fire_inspector", "admin"})


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in user behind a request (set by the core before a plugin route runs)."""

    name: str
    #: admin | integrator | unit_manager | duty_officer | maintenance_engineer | supervisor |
    #: fire_inspector (what each may do: docs/supervision.md)
    role: str
    #: every site-file unit key the user sees: the units assigned to them directly and all
    #: units under their organisations (``firebus.sdk.orgs``), from the site file the core
    #: runs with.  Scope by this (or ``sees``); ``orgs`` is for showing where they belong.
    units: tuple[str, ...] = ()
    orgs: tuple[str, ...] = ()  # organisation keys the user is assigned to
    all_units: bool = False  # admin, integrator: every unit
    can_act: bool = False  # may act on alarms (and, by the same rule, on a plugin's records)
    is_system: bool = False
    via: str = "session"  # "session" | "token"
    csrf: str = ""  # the session's anti-forgery token ("" for a bearer token)

    def sees(self, unit_key: str | None) -> bool:
        """May this caller see something of unit ``unit_key`` (None: belongs to no unit)?"""
        return self.all_units or (unit_key is not None and unit_key in self.units)

    @property
    def can_urge(self) -> bool:
        """May urge (催促) a unit to handle an alarm or rectify a hazard: the supervising roles."""
        return self.role in URGE_ROLES

    def csrf_ok(self, supplied: str | None) -> bool:
        """A session-authenticated write must carry the session's token; a bearer token needs none."""
        if self.via == "token":
            return True
        return bool(supplied) and bool(self.csrf) and secrets.compare_digest(supplied or "", self.csrf)


def caller(request: Any) -> Caller | None:
    """The caller of a plugin route (a Starlette ``Request``), or None when not signed in."""
    found = request.scope.get(SCOPE_KEY)
    return found if isinstance(found, Caller) else None


def signed_in(route: R) -> R:
    """Open a plugin route to every signed-in role (default: system roles only)."""
    setattr(route, ACCESS_ATTR, "signed_in")
    return route


def public(route: R) -> R:
    """Open a plugin route to anyone, signed in or not (HTTP only, never a WebSocket).

    For pages that carry their own credential — a signed, expiring link
    (``firebus.sdk.links``) — and nothing else: the handler must verify that
    credential and show no more than it grants.  ``caller(request)`` is set when
    someone happens to be signed in, None otherwise.
    """
    setattr(route, ACCESS_ATTR, "public")
    return route


NAV_ATTR = "firebus_nav"


def nav_link(route: R, zh: str, en: str) -> R:
    """Show a plugin page in the panel's navigation, named in both languages.

    The link is ``/-/plugins/<plugin>/<route path>``; it is shown to the roles that may open
    the route (every signed-in role for a ``signed_in`` route, system roles otherwise).
    """
    setattr(route, NAV_ATTR, (zh, en))
    return route
