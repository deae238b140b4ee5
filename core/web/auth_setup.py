"""Accounts made by the runner, not by a person: the first admin, and the demo's login.

No default password: the first start creates ``admin`` with a one-time password
that must be changed at first login (printed once by the caller).
"""

from __future__ import annotations

from .auth_store import AuthStore, Db
from .roles import Role


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
