"""Media kept with alarms: the still and the clip of a camera's alarm (``CoreAPI.media``).

A plugin stores bytes or a file with ``await core.media.put(...)`` and gets a
:class:`MediaRef`; a still known when the alarm-raising reading is reported goes
*with* the reading (``Reading(..., media=(ref.id,))``): the alarm engine attaches it
to the alarm that reading raises, in the same transaction.  Media made later (a clip
written 20 s after) are attached by alarm id with ``await core.media.attach(alarm_id,
media_id)``.  People see them through ``GET /api/alarms/{id}/media`` and
``GET /api/media/{id}``, authorised exactly like the alarm; a plugin that passes a
medium on (notify attaching the still to an e-mail) reads its file through
``await core.media.get(media_id)``.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class MediaKind(StrEnum):
    STILL = "still"  # one image of the moment
    CLIP = "clip"  # a short video around it
    OTHER = "other"


#: content type → file suffix; nothing else is stored (the API serves these bytes back to browsers)
CONTENT_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
}


class MediaRef(msgspec.Struct, frozen=True):
    """A stored medium: what ``put`` returns."""

    id: str
    content_type: str
    bytes: int


class MediaInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stored medium with what it shows (``MediaAPI.of_alarm``, the API's listing)."""

    id: str
    content_type: str
    bytes: int
    kind: MediaKind = MediaKind.OTHER
    ts: float = 0.0  # the moment it shows (a clip: the alarm moment it is centred on)
    device_id: str | None = None
    #: a clip's span (epoch seconds), when known
    start_ts: float | None = None
    end_ts: float | None = None
    created_ts: float = 0.0


class MediaError(ValueError):
    """A medium that cannot be stored or attached; the message says why."""


__all__ = ["CONTENT_TYPES", "MediaError", "MediaInfo", "MediaKind", "MediaRef"]
