"""Event context: who caused what, so lineage can be followed.

Modelled on Home Assistant's ``Context`` (``homeassistant/core.py``): an id, the id
of the context that caused it and the actor.  A reading's context is the parent
of the alarm it raises, which is the parent of the notification it sends.
"""

from __future__ import annotations

import os
import time

import msgspec

from .vocab import ActorKind

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Time-ordered ids sort by creation time in SQLite indexes and logs.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class Context(msgspec.Struct, frozen=True, omit_defaults=True):
    """Lineage of an event.  ``parent_id`` points at the context that caused it."""

    id: str = msgspec.field(default_factory=new_id)
    parent_id: str | None = None
    actor: ActorKind = ActorKind.SYSTEM
    actor_id: str | None = None  # user name, rule key, device id …

    def child(self, actor: ActorKind, actor_id: str | None = None) -> "Context":
        """A new context caused by this one."""
        return Context(parent_id=self.id, actor=actor, actor_id=actor_id)
