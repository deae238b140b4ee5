"""Plugin manifest: what a plugin is and which SDK it was written for.

A plugin module exposes ``FIREBUS_MANIFEST = Manifest(...)``.  The loader reads it
right after import and refuses a plugin whose ``requires_sdk`` range excludes
this SDK's ``API_VERSION``, with a message saying both.
"""

from __future__ import annotations

import re

import msgspec

API_VERSION = "1.2"


class Manifest(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    requires_sdk: str = ">=1.0,<2"
    description: str = ""
    point_classes: tuple[str, ...] = ()
    transports: tuple[str, ...] = ()
    documentation: str = ""


_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (3 - len(parts))


def sdk_compatible(requires: str, version: str = API_VERSION) -> bool:
    """True if ``version`` satisfies a comma-separated range such as ``">=1.0,<2"``.

    Raises ``ValueError`` for a malformed range, so a typo is reported, not ignored.
    """
    have = _version_tuple(version)
    for clause in filter(None, (c.strip() for c in requires.split(","))):
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"bad requires_sdk clause {clause!r} (expected e.g. '>=1.0,<2')")
        op, want_text = match.groups()
        want = _version_tuple(want_text)
        ok = {
            ">=": have >= want,
            "<=": have <= want,
            "==": have == want,
            "!=": have != want,
            ">": have > want,
            "<": have < want,
        }[op]
        if not ok:
            return False
    return True
