"""Event context: who caused what, so lineage can be followed.

Modelled on Home Assistant's ``Context`` (``homeassistant/core.py``): an id, the id
of the context that caused it and the actor.  A reading's context is the parent
of the alarm it raises, which is the parent of the notification it sends.
"""

from __future__ import annotations

import random
import time

import msgspec

from .vocab import ActorKind

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 digits per 10 bits: the id is on every event's path, so it is built
# with 13 table look-ups rather than 26 shifts (or the pure-Python base64 module).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_random = random.Random()  # ids, not secrets (tokens and passwords use `secrets`)


def new_id() -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Time-ordered ids sort by creation time in SQLite indexes and logs.
    """
    value = (int(time.time() * 1000) << 80) | _random.getrandbits(80)
    p = _PAIRS
    return (
        p[value >> 120] + p[(value >> 110) & 1023] + p[(value >> 100) & 1023] + p[(value >> 90) & 1023]
        + p[(value >> 80) & 1023] + p[(value >> 70) & 1023] + p[(value >> 60) & 1023]
        + p[(value >> 50) & 1023] + p[(value >> 40) & 1023] + p[(value >> 30) & 1023]
        + p[(value >> 20) & 1023] + p[(value >> 10) & 1023] + p[value & 1023]
    )


class Context(msgspec.Struct, frozen=True, omit_defaults=True):
    """Lineage of an event.  ``parent_id`` points at the context that caused it."""

    id: str = msgspec.field(default_factory=new_id)
    parent_id: str | None = None
    actor: ActorKind = ActorKind.SYSTEM
    actor_id: str | None = None  # user name, rule key, device id …

    def child(self, actor: ActorKind, actor_id: str | None = None) -> "Context":
        """A new context caused by this one."""
        return Context(parent_id=self.id, actor=actor, actor_id=actor_id)
