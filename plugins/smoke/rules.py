"""Alarm rules of the smoke plugin: offline from the detector's own heartbeat, battery and isolation.

Fire (single detector and two-detector confirmation), fault and tamper need no
rule of their own: the generic ``two_detector`` and ``device_status`` rules
apply to the ``smoke``, ``fault`` and ``tamper`` point classes by default.
"""

from __future__ import annotations

from firebus.sdk import AlarmCategory, Severity
from firebus.sdk.rules import DeviceStatusRule
from firebus.sdk.rules.reported import ReportedHeartbeatRule


class SmokeHeartbeatRule(ReportedHeartbeatRule):
    """Offline when a detector misses its reported heartbeat (one period + half a period).

    fire-domain.md §3.2: offline is derived from the period the device reports, with a
    grace margin; "24 h + grace" is practice, not a norm.  GB 20517-2025 5.11.1 makes the
    detector check its battery at least every 24 h, so NB detectors report at least daily.
    """

    type_key = "smoke_heartbeat"
    drivers = ("smoke.",)


def _flag(name: str, category: AlarmCategory, severity: Severity, message: str) -> dict:
    return {"name": name, "category": category, "severity": severity, "message": message}


class SmokeStatusRule(DeviceStatusRule):
    """Low battery and isolation: faults of their own kind, apart from "detector fault"."""

    type_key = "smoke_status"
    defaults = {
        # GB 20517-2025 5.11.1: a networked alarm must output a battery-fault signal.  A
        # warning-level fault (firebus severity SUPERVISORY): the detector still works today.
        "low_battery": {"on_true": _flag("low_battery", AlarmCategory.FAULT, Severity.SUPERVISORY, "low battery")},
        # Carrier status category 3 (屏蔽): the detector is isolated and watches nothing.
        "shielded": {
            "on_true": _flag("shielded", AlarmCategory.SUPERVISORY, Severity.SUPERVISORY, "detector isolated (屏蔽)")
        },
    }
