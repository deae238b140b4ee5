"""firebus.sdk: the only import a firebus plugin needs.

Everything exported here is public and versioned by ``API_VERSION``;
everything in ``firebus.core`` is internal and may change.
"""

from __future__ import annotations

import pluggy

from .context import Context, new_id
from .core_api import (
    BusAPI,
    Clock,
    ConsumerAPI,
    CoreAPI,
    JournalAPI,
    MediaAPI,
    OverflowPolicy,
    PlaceInfo,
    PointInfo,
    RegistryAPI,
    SiteProblem,
    StorageAPI,
)
from .driver import (
    DeviceInfo,
    DeviceReport,
    Driver,
    DriverContext,
    NotReady,
    PointSpec,
    PolledDriver,
    PushDriver,
    Reading,
    ServiceContext,
    ServiceDriver,
)
from .media import CONTENT_TYPES, MediaError, MediaInfo, MediaKind, MediaRef
from .events import (
    AlarmEvent,
    AlarmTransition,
    AvailabilityChanged,
    CommandRequested,
    CommandResult,
    ConditionReported,
    Event,
    Lane,
    LinkChanged,
    NotificationResult,
    Payload,
    PayloadQuarantined,
    RegistryAction,
    RegistryUpdated,
    StateChanged,
    StateReported,
)
from .clock import ManualClock, SystemClock
from .extension import NoOptions, Notifier, Transport, TransportContext, VideoDetector
from .rule import (
    AlarmRule,
    AvailabilityInput,
    CommandInput,
    Condition,
    Evaluation,
    ReportInput,
    RuleConfigError,
    RuleInput,
    Scope,
    Subject,
    LinkInput,
    TickInput,
    ValueInput,
)
from .manifest import API_VERSION, Manifest, sdk_compatible
from . import links
from .links import LinkClaim
from .migration import Migration
from .orgs import ORG_KIND_NAMES, OrgError, OrgKind, OrgNode, OrgTree, Organisation, org_tree
from .web import URGE_ROLES, Caller, caller, nav_link, signed_in
from .vocab import (
    ActorKind,
    AlarmCategory,
    Availability,
    PlaceKind,
    PointClass,
    Severity,
    Unit,
)

#: Decorate hook implementations with this: ``@hookimpl def firebus_register_drivers(core): …``
hookimpl = pluggy.HookimplMarker("firebus")

#: Entry-point group plugins register under (built-ins use the same one).
ENTRY_POINT_GROUP = "firebus.plugins"

__all__ = [
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "ActorKind",
    "AlarmCategory",
    "AlarmEvent",
    "AlarmRule",
    "AvailabilityInput",
    "CommandInput",
    "Condition",
    "Evaluation",
    "ManualClock",
    "ReportInput",
    "RuleConfigError",
    "RuleInput",
    "Scope",
    "Subject",
    "SystemClock",
    "TickInput",
    "ValueInput",
    "LinkInput",
    "AlarmTransition",
    "Availability",
    "BusAPI",
    "Clock",
    "ConsumerAPI",
    "CoreAPI",
    "JournalAPI",
    "MediaAPI",
    "MediaError",
    "MediaInfo",
    "MediaKind",
    "MediaRef",
    "CONTENT_TYPES",
    "ServiceContext",
    "ServiceDriver",
    "OverflowPolicy",
    "PlaceInfo",
    "PointInfo",
    "SiteProblem",
    "RegistryAPI",
    "StorageAPI",
    "AvailabilityChanged",
    "CommandRequested",
    "CommandResult",
    "ConditionReported",
    "Caller",
    "URGE_ROLES",
    "ORG_KIND_NAMES",
    "OrgError",
    "OrgKind",
    "OrgNode",
    "OrgTree",
    "Organisation",
    "org_tree",
    "Context",
    "DeviceInfo",
    "DeviceReport",
    "Driver",
    "DriverContext",
    "Event",
    "Lane",
    "LinkChanged",
    "LinkClaim",
    "Manifest",
    "Migration",
    "NoOptions",
    "NotReady",
    "NotificationResult",
    "Notifier",
    "Payload",
    "PayloadQuarantined",
    "PlaceKind",
    "PointClass",
    "PointSpec",
    "PolledDriver",
    "PushDriver",
    "Reading",
    "RegistryAction",
    "RegistryUpdated",
    "Severity",
    "StateChanged",
    "StateReported",
    "Transport",
    "TransportContext",
    "Unit",
    "VideoDetector",
    "caller",
    "hookimpl",
    "links",
    "signed_in",
    "nav_link",
    "new_id",
    "sdk_compatible",
]
