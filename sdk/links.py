"""Signed, expiring links to one alarm for one person (pure functions, no I/O).

The notify plugin puts a link into every alarm message; the app opens it at
``{base_url}/-/plugins/app/a/{token}``.  Both sides get the same key from
``await core.secret("links")``, so neither needs the other's code, only this.

Token: base64url (no padding) of ``version(1) · expires(4, unix s, big-endian) ·
alarm_id · NUL · recipient · HMAC-SHA256(key, everything before)[:16]``.  A
128-bit tag is what RFC 2104 allows for truncation and keeps a link short enough
for an SMS; an attacker must forge it online against the app, one guess a request.
Expiry has a resolution of one second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

import msgspec

__all__ = ["LinkClaim", "link_path", "sign", "verify"]

_VERSION = 1
_HEAD = struct.Struct(">BI")
_TAG = 16
_MIN_KEY = 16


class LinkClaim(msgspec.Struct, frozen=True):
    """What a valid token says: which alarm, for whom, until when (unix seconds)."""

    alarm_id: str
    recipient: str
    expires: float


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY:
        raise ValueError(f"link key must be at least {_MIN_KEY} bytes (use core.secret('links'))")


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(bytes(key), body, hashlib.sha256).digest()[:_TAG]


def sign(key: bytes, alarm_id: str, recipient: str, expires: float) -> str:
    """A URL-safe token for ``alarm_id`` and ``recipient``, valid until ``expires``."""
    _check_key(key)
    if not alarm_id or "\0" in alarm_id or "\0" in recipient:
        raise ValueError("alarm_id must be non-empty; neither it nor recipient may contain NUL")
    seconds = int(expires)
    if not 0 < seconds < 2**32:
        raise ValueError(f"expires {expires!r} is not a unix time a link can carry")
    body = _HEAD.pack(_VERSION, seconds) + alarm_id.encode() + b"\0" + recipient.encode()
    return base64.urlsafe_b64encode(body + _tag(key, body)).rstrip(b"=").decode("ascii")


def verify(key: bytes, token: str, now: float) -> LinkClaim | None:
    """The claim of a genuine, unexpired token; None for anything else (never raises on input)."""
    _check_key(key)
    if not isinstance(token, str) or len(token) > 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _HEAD.size + 2 + _TAG:
        return None
    body, tag = raw[:-_TAG], raw[-_TAG:]
    if not hmac.compare_digest(tag, _tag(key, body)):
        return None
    version, seconds = _HEAD.unpack_from(body)
    if version != _VERSION or now >= seconds:
        return None
    alarm_id, sep, recipient = body[_HEAD.size:].partition(b"\0")
    if not sep or not alarm_id:
        return None
    try:
        return LinkClaim(alarm_id.decode(), recipient.decode(), float(seconds))
    except UnicodeDecodeError:
        return None


def link_path(token: str) -> str:
    """The app's path for a token (prefix it with the site's public base URL)."""
    return f"/-/plugins/app/a/{token}"
