"""Contract test suites a vendor subclasses, and the quality level they earn.

Subclass one per declaration your plugin ships, name the subclass ``Test…``
so pytest collects it, and set the class attributes::

    from firebus.sdk.testing.contracts import ModbusDriverContract

    class TestAcmeRcm(ModbusDriverContract):
        driver_class = AcmeRcmDriver
        options = {"unit": 1}

Each test is tagged bronze, silver or gold.  A suite's level is the highest
one whose tests (and every lower level's) all passed; the pytest plugin prints
it at the end of the run (``firebus quality: TestAcmeRcm: gold (11/11)``).

* bronze — it works: options round-trip, identity from hardware (never an IP),
  points of known classes, a poll returns what was declared.
* silver — it survives the field: identity stable across restarts, an
  unreachable device is "unavailable" (an exception from ``poll``, ``NotReady``
  from ``setup``), never a crash or a hang, recovery afterwards, one log line
  per outage.
* gold — it is a good neighbour: no blocking call in the event loop (asyncio
  slow-callback detection), ``close`` releases what it holds.

This module is the stable import path; the suites live one per module beside it:

=============================  ==================================================
``levels``                     ``Level``, ``level``, ``quality_level``
``checks``                     ``watch_blocking``, ``known_point_classes``,
                               ``ContractDriverContext`` (shared by the suites)
``polled_contract``            ``PolledDriverContract``, ``DriverRig``,
                               ``ModbusDriverContract``, ``ModbusRig``
``push_contract``              ``PushDriverContract``, ``mutations``,
                               ``valid_topic_filter``
``notifier_contract``          ``NotifierContract``, ``NotifierRig``, ``sample_message``
``frame_detector_contract``    ``DetectorContract``, ``detection_fields``
=============================  ==================================================

(``detector_contract.VideoDetectorContract`` is the fuller video-detector suite.)
"""

from __future__ import annotations

# Re-exports.  ``__all__`` is the list it was before the split (``import *`` gives the same
# names); the ``X as X`` names were importable from here unlisted, and still are.
from .checks import BlockingWatch as BlockingWatch
from .checks import ContractDriverContext, watch_blocking
from .checks import known_point_classes as known_point_classes
from .frame_detector_contract import DetectorContract
from .frame_detector_contract import detection_fields as detection_fields
from .levels import LEVELS as LEVELS
from .levels import Level, level, quality_level
from .notifier_contract import NotifierContract, NotifierRig, sample_message
from .polled_contract import DriverRig, ModbusDriverContract, ModbusRig, PolledDriverContract
from .push_contract import PushDriverContract
from .push_contract import mutations as mutations
from .push_contract import valid_topic_filter as valid_topic_filter

__all__ = [
    "ContractDriverContext", "DetectorContract", "DriverRig", "Level", "ModbusDriverContract", "ModbusRig",
    "NotifierContract", "NotifierRig", "PolledDriverContract", "PushDriverContract", "level", "quality_level", "sample_message",
    "watch_blocking",
]
