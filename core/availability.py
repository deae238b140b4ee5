"""Device availability: one event per change, one log line per outage."""

from __future__ import annotations

import logging
from typing import Callable

from firebus.sdk.context import Context
from firebus.sdk.events import AvailabilityChanged
from firebus.sdk.vocab import ActorKind, Availability

from .bus import EventBus

log = logging.getLogger(__name__)


class AvailabilityTracker:
    def __init__(self, bus: EventBus, describe: Callable[[str], str] = str) -> None:
        self.bus = bus
        self.describe = describe  # device id → what a person calls it, for log lines
        self.current: dict[str, Availability] = {}

    def set(self, device_id: str, availability: Availability, reason: str = "") -> bool:
        """Record ``availability``; returns True (and publishes) only when it changed."""
        previous = self.current.get(device_id)
        if previous is availability:
            return False
        self.current[device_id] = availability
        if previous is None and availability is Availability.AVAILABLE:
            return False  # first contact is not news (10,000 detectors arriving are not 10,000 events)
        if availability is Availability.UNAVAILABLE:
            log.warning("device %s unavailable: %s", self.describe(device_id), reason or "no reason given")
        elif previous is Availability.UNAVAILABLE:
            log.info("device %s available again", self.describe(device_id))
        self.bus.publish(
            AvailabilityChanged(device_id=device_id, availability=availability, reason=reason),
            Context(actor=ActorKind.DEVICE, actor_id=device_id),
        )
        return True

    def get(self, device_id: str) -> Availability | None:
        return self.current.get(device_id)
