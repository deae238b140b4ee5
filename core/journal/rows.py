"""How journal entries become rows of the ``journal`` table, and back.

One table holds every entry, numbered by ``seq`` in commit order.  A state
change is a compact row (point, reading time, value, fault): it is the history
charts read and the entry the alarm engine evaluates, so there is no second
copy in a ``readings`` table.  Every other payload is stored as JSON with its
context (lineage) and the field that says what it is about (``subject``).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import msgspec

from firebus.sdk.context import Context
from firebus.sdk.events import Event, Lane, Payload, StateChanged
from firebus.sdk.vocab import ActorKind

_json = msgspec.json.Encoder()

SQL_J_STATE = (
    "INSERT OR IGNORE INTO journal (seq, ts, type, lane, subject, vts, value, fault, late) "
    "VALUES (?, ?, 'StateChanged', ?, ?, ?, ?, ?, ?)"
)
SQL_J_EVENT = (
    "INSERT INTO journal (seq, ts, type, lane, subject, context_id, parent_id, actor, actor_id, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: the columns ``decode_row`` expects, in order
COLUMNS = "seq, ts, type, lane, subject, vts, value, fault, late, context_id, parent_id, actor, actor_id, data"


def to_ms(ts: float) -> int:
    return int(round(ts * 1000))


def storable(value: Any) -> Any:
    """SQLite keeps ints, floats and text natively; anything else goes in as JSON."""
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return _json.encode(value).decode()


def state_row(seq: int, event: Event) -> tuple[Any, ...]:
    d: StateChanged = event.data  # type: ignore[assignment]
    # Lane is a str subclass: bound as text as it is (no str() per row on the writer's path).
    return (seq, event.time_fired, event.lane, d.point_id, round(d.ts * 1000), d.new_value, d.fault, d.late)


def event_row(seq: int, event: Event) -> tuple[Any, ...]:
    data = event.data
    key = data.journal_key
    subject = getattr(data, key, None) if key else None
    ctx = event.context
    return (
        seq, event.time_fired, type(data).__name__, str(event.lane),
        None if subject is None else str(subject),
        ctx.id or None, ctx.parent_id, str(ctx.actor), ctx.actor_id, _json.encode(data).decode(),
    )


def split_rows(events: Iterable[Event], first_seq: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """Number ``events`` from ``first_seq`` (setting ``event.seq``) and build their rows."""
    states: list[tuple[Any, ...]] = []
    others: list[tuple[Any, ...]] = []
    seq = first_seq
    for event in events:
        event.seq = seq
        d = event.data
        if type(d) is StateChanged:
            states.append((seq, event.time_fired, event.lane, d.point_id, round(d.ts * 1000), d.new_value,
                           d.fault, d.late))
        else:
            others.append(event_row(seq, event))
        seq += 1
    return states, others, seq


class PayloadTypes:
    """Decodes stored payloads by their type name.

    Payload classes are found as subclasses of ``Payload`` (the SDK's and every
    imported plugin's).  A stored type no loaded code knows (a plugin removed)
    is returned as ``None`` and the reader skips the entry, saying so once.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, msgspec.json.Decoder[Any]] = {}

    def decoder(self, name: str) -> msgspec.json.Decoder[Any] | None:
        dec = self._by_name.get(name)
        if dec is None:
            cls = _find_payload(name)
            if cls is None:
                return None
            dec = msgspec.json.Decoder(cls)
            self._by_name[name] = dec
        return dec


def _find_payload(name: str) -> type[Payload] | None:
    todo: list[type[Payload]] = [Payload]
    while todo:
        cls = todo.pop()
        if cls.__name__ == name and cls is not Payload:
            return cls
        todo.extend(cls.__subclasses__())
    return None


class PointLookup:
    """What decoding a state row needs to know about its point (the registry provides it)."""

    def __call__(self, point_id: str) -> tuple[str, str, str] | None:  # (device_id, key, class)
        raise NotImplementedError


def decode_rows(
    rows: Sequence[Sequence[Any]], types: PayloadTypes, point: Any, *, on_unknown: Any = None
) -> list[Event]:
    """Rows (``COLUMNS``) back to events; ``point(point_id) -> (device_id, key, class) | None``."""
    out: list[Event] = []
    for seq, ts, type_name, lane, subject, vts, value, fault, late, context_id, parent_id, actor, actor_id, data in rows:
        if type_name == "StateChanged":
            found = point(subject)
            device_id, key, point_class = found if found is not None else ("", "", "")
            payload: Payload = StateChanged(
                point_id=subject, device_id=device_id, point_key=key, point_class=point_class,
                ts=vts / 1000, new_value=value, fault=fault, late=bool(late),
            )
            ctx = Context(id="", actor=ActorKind.DEVICE, actor_id=device_id or None)
        else:
            dec = types.decoder(type_name)
            if dec is None:
                if on_unknown is not None:
                    on_unknown(type_name)
                continue
            try:
                payload = dec.decode(data)
            except msgspec.DecodeError:
                if on_unknown is not None:
                    on_unknown(type_name)
                continue
            ctx = Context(id=context_id or "", parent_id=parent_id, actor=ActorKind(actor), actor_id=actor_id)
        out.append(Event(data=payload, context=ctx, time_fired=ts, seq=seq, lane=Lane(lane)))
    return out
