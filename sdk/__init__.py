"""firebus.sdk: the only import a firebus plugin needs.

Everything in ``firebus.core`` is internal and may change.  ``firebus.sdk`` has three
layers, and only the first carries the ``API_VERSION`` promise (docs/sdk.md, "What is
stable"):

==================  ==================================================================
stable contract     this package's top-level names (every one of them below);
(semver under       ``hookspecs``, ``events``, ``extension``, ``driver``, ``detector``,
``API_VERSION``,    ``rule``, ``notify``, ``core_api``, ``context``, ``clock``, ``vocab``,
mypy --strict)      ``manifest``, ``migration``, ``media``, ``web``, ``orgs``, ``links``;
                    for tests: the ``firebus_*`` pytest fixtures, ``testing.contracts``,
                    ``testing.detector_contract``, ``testing.waiting``
kit (may change     ``modbus``, ``jsonmap``, ``profile_data`` (profile codecs and their
in minor            generic drivers), ``channels``, ``rules`` (generic alarm rules),
releases)           ``timers``, ``durations``; the rest of ``testing`` (the pieces behind the fixtures
                    and the suites' own modules: import those from ``testing.contracts``)
tools               ``tools`` (``tools.scaffold``, ``tools.check``, ``tools.cli``):
                    ``firebus sdk new|check``; the commands are stable, the Python API is
                    not, and plugins never import it
==================  ==================================================================

A minor SDK release only adds to the contract; a major one may change it, and a plugin's
``requires_sdk`` upper bound keeps it off a core it would break.  The kit is shared code
the built-in plugins use too; a plugin built on it runs its tests against each new
firebus release.  No kit name is exported here: import it from its module
(``from firebus.sdk.modbus import ModbusProfileDriver``).
"""

from __future__ import annotations

import pluggy

from .context import Context, new_id
from .core_api import (
    AlarmAction,
    AlarmActionOutcome,
    AlarmActionResult,
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
    UnitScored,
    VideoTrackChanged,
)
from .clock import ManualClock, SystemClock
from .detector import DetectorDeclaration
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

# Every name here is stable contract (grouped by the module it comes from); none is kit.
__all__ = [
    # manifest, entry point, hooks
    "API_VERSION",
    "AlarmAction",
    "AlarmActionOutcome",
    "AlarmActionResult",
    "ENTRY_POINT_GROUP",
    "Manifest",
    "hookimpl",
    "sdk_compatible",
    # driver: devices, points, readings
    "DeviceInfo",
    "DeviceReport",
    "Driver",
    "DriverContext",
    "NotReady",
    "PointSpec",
    "PolledDriver",
    "PushDriver",
    "Reading",
    "ServiceContext",
    "ServiceDriver",
    # extension: transports, notifiers, video detectors
    "NoOptions",
    "Notifier",
    "Transport",
    "TransportContext",
    "VideoDetector",
    "DetectorDeclaration",
    # rule: alarm rules and their inputs
    "AlarmRule",
    "AvailabilityInput",
    "CommandInput",
    "Condition",
    "Evaluation",
    "LinkInput",
    "ReportInput",
    "RuleConfigError",
    "RuleInput",
    "Scope",
    "Subject",
    "TickInput",
    "ValueInput",
    # events: what travels on the bus
    "AlarmEvent",
    "AlarmTransition",
    "AvailabilityChanged",
    "CommandRequested",
    "CommandResult",
    "UnitScored",
    "VideoTrackChanged",
    "ConditionReported",
    "Event",
    "Lane",
    "LinkChanged",
    "NotificationResult",
    "Payload",
    "PayloadQuarantined",
    "RegistryAction",
    "RegistryUpdated",
    "StateChanged",
    "StateReported",
    # core_api: what a plugin may ask of the running core
    "BusAPI",
    "Clock",
    "ConsumerAPI",
    "CoreAPI",
    "JournalAPI",
    "MediaAPI",
    "OverflowPolicy",
    "PlaceInfo",
    "PointInfo",
    "RegistryAPI",
    "SiteProblem",
    "StorageAPI",
    # context, clock
    "Context",
    "new_id",
    "ManualClock",
    "SystemClock",
    # vocab: the shared vocabularies
    "ActorKind",
    "AlarmCategory",
    "Availability",
    "PlaceKind",
    "PointClass",
    "Severity",
    "Unit",
    # media, migration
    "CONTENT_TYPES",
    "MediaError",
    "MediaInfo",
    "MediaKind",
    "MediaRef",
    "Migration",
    # web, orgs, links: panel pages, the organisation tree, linkage claims
    "Caller",
    "URGE_ROLES",
    "caller",
    "nav_link",
    "signed_in",
    "ORG_KIND_NAMES",
    "OrgError",
    "OrgKind",
    "OrgNode",
    "OrgTree",
    "Organisation",
    "org_tree",
    "LinkClaim",
    "links",
]
