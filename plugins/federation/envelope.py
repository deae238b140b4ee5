"""One journal entry on the wire: subject, message id and JSON body.

Subject ``firebus.<site_id>.journal.<lane>`` (``alarm`` or ``telemetry``), so
the centre reads the two lanes through separate consumers and a backlog of
readings never sits in front of a fire alarm.  Header ``Nats-Msg-Id``
``<site_id>:<seq>`` lets JetStream drop a re-send inside its duplicate window;
the centre is idempotent on ``(site_id, seq)`` beyond it.

The body carries ``site_id`` itself (the envelope is complete without the
subject) and the payload as the SDK encodes it (tagged by ``type``), so the
centre stores payload types it has no class for.
"""

from __future__ import annotations

from typing import Any

import msgspec

from firebus.sdk import Context, Event, Lane, Payload

SUBJECT_PREFIX = "firebus"


def subject(site_id: str, lane: Lane | str) -> str:
    return f"{SUBJECT_PREFIX}.{site_id}.journal.{lane}"


def stream_subjects() -> list[str]:
    return [f"{SUBJECT_PREFIX}.*.journal.*"]


def msg_id(site_id: str, seq: int) -> str:
    return f"{site_id}:{seq}"


class Outgoing(msgspec.Struct, omit_defaults=True):
    site_id: str
    seq: int
    ts: float  # when the entry was committed at the site (epoch seconds)
    lane: str
    type: str
    subject: str | None  # what the entry is about (the payload's ``journal_key`` field)
    context: Context
    data: Payload


class Incoming(msgspec.Struct):
    """What the centre decodes; ``data`` stays raw JSON (it is stored as jsonb as sent)."""

    site_id: str
    seq: int
    ts: float
    lane: str
    type: str
    data: msgspec.Raw
    subject: str | None = None
    context: msgspec.Raw = msgspec.Raw(b"{}")


class StateData(msgspec.Struct):
    """The fields of a ``StateChanged`` payload the centre stores in typed columns."""

    point_id: str
    ts: float
    device_id: str = ""
    point_key: str = ""
    point_class: str = ""
    new_value: Any = None
    fault: str | None = None
    late: bool = False


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Incoming)
_state_dec = msgspec.json.Decoder(StateData)


def decode_state(data: msgspec.Raw) -> StateData:
    return _state_dec.decode(data)


def encode(site_id: str, event: Event) -> bytes:
    data = event.data
    key = data.journal_key
    about = getattr(data, key, None) if key else None
    return _enc.encode(Outgoing(site_id=site_id, seq=event.seq, ts=event.time_fired, lane=str(event.lane),
                                type=type(data).__name__, subject=None if about is None else str(about),
                                context=event.context, data=data))


def decode(body: bytes) -> Incoming:
    return _dec.decode(body)


def journal_types() -> list[type[Payload]]:
    """Every payload class that is a journal entry (the SDK's and every imported plugin's)."""
    out: list[type[Payload]] = []
    todo: list[type[Any]] = [Payload]
    seen: set[type[Any]] = set()
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            todo.append(sub)
            if getattr(sub, "persist", False):
                out.append(sub)
    return sorted(out, key=lambda c: c.__name__)
