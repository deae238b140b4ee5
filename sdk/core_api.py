"""What a plugin may use of the running core, as typed protocols.

Hooks receive ``core``; plugins rely only on what is declared here.  The core's
concrete classes live in ``firebus.core`` and may change; these may not
without a new ``API_VERSION``.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

import msgspec

from .context import Context
from .events import Event, Lane, Payload
from .media import MediaInfo, MediaKind, MediaRef


class OverflowPolicy(StrEnum):
    """What a subscriber's full telemetry queue does with one more event.

    Alarm-class events are never subject to it: they are never dropped.
    """

    DROP_OLDEST = "drop_oldest"  # live views: the newest value matters most
    DROP_NEWEST = "drop_newest"  # keep the backlog in order, shed new arrivals
    UNBOUNDED = "unbounded"  # the event log: memory over loss


class PointInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """Everything a rule or notifier needs to know about a point, resolved."""

    point_id: str
    device_id: str
    key: str
    point_class: str
    unit: str = ""
    name: str = ""
    device_name: str = ""
    driver: str = ""
    location_id: str | None = None
    location_name: str = ""
    unit_id: str | None = None  # the site unit (联网单位), not the unit of measure
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)
    writable: bool = False
    expected_interval: float | None = None  # seconds between reports, from the driver


class PlaceInfo(msgspec.Struct, frozen=True):
    """A unit (联网单位), building, floor or location of the site."""

    id: str
    kind: str
    key: str
    name: str = ""
    parent_id: str | None = None


class SiteProblem(msgspec.Struct, frozen=True):
    """A problem a plugin found in the site file (``firebus_validate_site``)."""

    path: str  # e.g. "notify.channels[0].options.url"
    message: str


class HistoryBucket(StrEnum):
    """The rollup resolutions the core keeps (``readings_5m``, ``readings_1h``)."""

    FIVE_MIN = "5m"
    HOUR = "1h"


#: one rollup bucket: (bucket start in epoch seconds, n, mean, min, max, last value)
HistoryRow = tuple[int, int, float, float, float, float]


class History(msgspec.Struct, frozen=True):
    """Rollups of numeric state changes, read in one snapshot (``CoreAPI.history``).

    Every journal entry with ``seq <= through_seq`` is counted (rolled up or not yet),
    none after it: a consumer that adds later entries itself skips ``seq <= through_seq``.
    ``rows``: point id → rows in bucket order (points without rows are absent).
    """

    through_seq: int
    rows: dict[str, list[HistoryRow]]


class Clock(Protocol):
    """Wall time and sleeping, replaceable by a controllable clock in tests."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class AlarmAction(StrEnum):
    """What a person may do to an alarm from outside the panel (``CoreAPI.alarm_action``)."""

    ACKNOWLEDGE = "acknowledge"
    SILENCE = "silence"
    CLEAR = "clear"  # operator reset


class AlarmActionOutcome(StrEnum):
    APPLIED = "applied"
    UNKNOWN_ALARM = "unknown_alarm"
    ALREADY_CLEARED = "already_cleared"  # silence or clear of an alarm no longer active
    ALREADY_DONE = "already_done"  # acknowledged / silenced before
    REFUSED = "refused"  # any other refusal (``message`` says why)


class AlarmActionResult(msgspec.Struct, frozen=True, omit_defaults=True):
    outcome: AlarmActionOutcome
    message: str = ""  # the engine's reason for a refusal (English)
    status: str = ""  # the alarm's status afterwards (active_unack …), "" for an unknown alarm


class BusAPI(Protocol):
    def subscribe(
        self,
        name: str,
        handler: Callable[[Event], Awaitable[None] | None],
        types: Iterable[type[Payload]] | None = None,
        *,
        maxsize: int = 10_000,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
    ) -> Callable[[], None]: ...

    def publish(self, payload: Payload, context: Context | None = None) -> Event: ...


class StorageAPI(Protocol):
    """Writes go through the core's single writer, in order; reads never block it.

    ``lane``: writes on the alarm path (notifications of an alarm, linkage records)
    pass ``Lane.ALARM`` and commit ahead of telemetry batches; everything else the
    default.  Both return once committed.
    """

    async def execute(self, sql: str, params: Sequence[Any] = (), *, lane: Lane = Lane.TELEMETRY) -> Any: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], *, lane: Lane = Lane.TELEMETRY) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    async def fetch_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
        """Each statement's rows, all read from one committed snapshot.  Under load a request
        waits per read handed to a reader thread, so a view that needs several reads asks once."""
        ...


class ConsumerAPI(Protocol):
    """A running durable subscription (see ``JournalAPI.subscribe``)."""

    cursor: int

    @property
    def caught_up(self) -> Any:
        """An event set once the entries before the live tail have been handled."""

    def save(self) -> None:
        """Queue the cursor now (it is also saved every second and at stop)."""

    def ack(self, seq: int) -> None:
        """``ack="manual"`` subscriptions: entry ``seq`` is done.  The saved cursor moves
        only over a contiguous acknowledged prefix; unknown or repeated seqs are ignored."""

    @property
    def unacked(self) -> int:
        """Delivered entries not yet acknowledged (0 for ``ack="auto"``)."""

    def stop(self) -> None: ...


class JournalAPI(Protocol):
    """The site's durable, numbered, append-only record of every entry (see docs/architecture.md).

    ``subscribe`` is how a plugin that must not miss an entry consumes it: the
    handler gets lists of committed entries (``Event.seq`` set), oldest first, after
    the stored cursor on start and then live, alarm-lane entries first; it must be
    idempotent (after a crash the entries since the last saved cursor come again).
    ``provisional``: also receive entries released while the store refuses
    writes (``Event.durable`` False); their durable copy is then not delivered
    again.  ``initial``: where a consumer with no stored cursor starts
    ("start": entries committed since this process started; "earliest"; or a seq).

    ``ack="manual"`` (for a consumer whose work finishes elsewhere, such as an uplink
    waiting for a centre's confirmation): an entry is done only once
    ``consumer.ack(seq)`` is called; after a restart every delivered entry not yet
    acknowledged is delivered again.  ``max_unacked`` (> 0) bounds the outstanding
    entries: past it telemetry waits in the journal while alarm-lane entries are
    still delivered at once, and a catch-up delivers the backlog's alarm-lane entries
    before its telemetry.  Not combinable with ``provisional``.
    """

    @property
    def last_seq(self) -> int: ...

    async def read(
        self, after: int, limit: int = 1000, *, types: Iterable[str] | None = None,
        lanes: Iterable[Lane] | None = None, until: int | None = None,
    ) -> list[Event]: ...

    def subscribe(
        self, name: str, handler: Callable[[list[Event]], Awaitable[None] | None],
        types: Iterable[type[Payload]], *, provisional: bool = False, initial: str | int = "start",
        batch_max: int = 1000, ack: str = "auto", max_unacked: int = 0,
    ) -> ConsumerAPI: ...


class RegistryAPI(Protocol):
    def point_info(self, point_id: str) -> PointInfo | None: ...

    def points_of_device(self, device_id: str) -> list[PointInfo]: ...

    def points_at_location(self, location_id: str) -> list[PointInfo]: ...

    def place(self, place_id: str) -> PlaceInfo | None: ...

    def place_by_key(self, key: str) -> PlaceInfo | None:
        """The place a site-file key names (location first, then floor, building, unit)."""


class MediaAPI(Protocol):
    """Stills and clips kept with alarms (``firebus.sdk.media``), files in the database's folder.

    Media attached to a fire alarm are kept as long as the alarm; see docs/plugins/video.md
    for the retention of the others.  ``put`` checks ``content_type`` (``CONTENT_TYPES``) and
    raises ``MediaError`` with the reason for anything else, or for more than ``max_bytes``.
    """

    async def put(
        self, data: bytes | Path, content_type: str, *, kind: MediaKind = MediaKind.OTHER,
        device_id: str | None = None, ts: float | None = None,
        start_ts: float | None = None, end_ts: float | None = None,
    ) -> MediaRef:
        """Store ``data`` (bytes, or a file that is moved into the store); returns once durable."""

    async def attach(self, alarm_id: str, media_id: str) -> None:
        """Show ``media_id`` with ``alarm_id`` (idempotent; ``MediaError`` if either is unknown)."""

    async def of_alarm(self, alarm_id: str) -> list[MediaInfo]:
        """The media shown with an alarm, oldest first."""

    async def alarms_of(self, media_id: str) -> list[str]:
        """The alarms a medium is shown with."""

    async def get(self, media_id: str) -> tuple[MediaInfo, Path] | None:
        """A medium and its file, to read or serve (None: unknown, or its file is gone).

        The file belongs to the store: read it, never move or change it."""


class CoreAPI(Protocol):
    bus: BusAPI
    journal: JournalAPI
    storage: StorageAPI
    registry: RegistryAPI
    clock: Clock
    media: MediaAPI

    def logger(self, name: str) -> logging.Logger: ...

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The site file's top-level section ``name`` (e.g. ``notify``) as plain data: a dict, or a
        list for a list section (``organisations``; read it with ``firebus.sdk.org_tree``)."""

    def declared_types(self, kind: str) -> dict[str, type]:
        """Classes every loaded plugin registered for ``kind`` (transport, driver, rule, notifier, detector)."""

    async def mqtt_publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, *, transport: str | None = None
    ) -> None:
        """Publish through the site's MQTT transport (``transport`` names one if there are several)."""

    def start_task(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        """Run ``func(*args)`` in the core's task group until the core stops."""

    async def write_point(self, device_id: str, point_key: str, value: Any, context: Context | None = None) -> None:
        """Write a device point through its driver (linkage actions, commands)."""

    async def secret(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. ``"links"``), the same for every plugin and every
        start of this database; sign with it (HMAC) what another plugin must verify."""

    async def history(self, point_ids: Sequence[str], start: float, end: float, bucket: HistoryBucket) -> History:
        """Rollup rows with ``start <= bucket < end`` of these points (reports, live views; never raw rows)."""

    async def alarm_action(
        self, alarm_id: str, action: AlarmAction, actor: str, *, note: str = "", context: Context | None = None,
    ) -> AlarmActionResult:
        """Acknowledge, silence or clear an alarm exactly as the panel does (same checks, same
        history row naming ``actor``, same ``AlarmEvent``); returns once durable.  A refusal is
        an outcome, never an exception.  Idempotent by ``context.id``: an action whose context
        id is already in the alarm's history is not applied again (outcome ``applied``)."""
