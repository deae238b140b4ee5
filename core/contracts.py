"""The core's side of the SDK's protocols, checked by mypy (scripts/typecheck.sh), never run.

The protocols in ``firebus.sdk`` (``DriverContext``, ``TransportContext``, ``CoreAPI`` …) are
what plugins are written against; the classes here implement them.  Each function below
only type-checks if the class really satisfies the protocol, so a change on either side
that breaks a plugin shows in ``make lint`` instead of at a vendor's run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firebus.sdk.driver import DriverContext
    from firebus.sdk.extension import MessageTransport, TransportContext

    from firebus.sdk.core_api import BusAPI, JournalAPI, StorageAPI

    from .bus import EventBus
    from .journal import Journal
    from .runtime import _DriverContext, _TransportContext
    from .storage import Storage
    from .transports.mqtt import MqttTransport

    def driver_context(ctx: _DriverContext) -> DriverContext:
        return ctx

    def transport_context(ctx: _TransportContext) -> TransportContext:
        return ctx

    def mqtt_is_a_message_transport(t: MqttTransport) -> MessageTransport:
        return t

    def bus_api(bus: EventBus) -> BusAPI:
        return bus

    def journal_api(journal: Journal) -> JournalAPI:
        return journal

    def storage_api(storage: Storage) -> StorageAPI:
        return storage

    # Not yet: Core → CoreAPI (its attributes are the concrete classes, and mutable protocol
    # members are invariant) and Registry → RegistryAPI (it returns PlaceEntry where the
    # protocol promises PlaceInfo: the same fields, two classes).
