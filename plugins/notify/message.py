"""What a channel is asked to deliver, and what a channel may use of the core."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Protocol

import msgspec

#: ``publish(topic, payload, qos, retain)``: the core's MQTT publish, given to the MQTT channel.
MqttPublish = Callable[[str, bytes, int, bool], Awaitable[None]]


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rendered notification for one recipient on one channel.

    ``id`` is the outbox row id: stable across retries and restarts, so a
    receiver can drop a duplicate (webhook header, MQTT payload, e-mail Message-ID).
    For group channels (robots) ``address`` is empty and ``mentions`` lists the
    people to @-mention (their contact on that channel: mobile or user id).
    """

    id: str
    kind: str  # new | escalate | cleared | acknowledged | digest
    channel: str
    recipient: str  # person name, or "*" for a group channel
    title: str
    text: str
    address: str = ""
    mentions: list[str] = []
    language: str = "zh"
    alarm_id: str = ""
    category: str = ""
    severity: int = 0
    step: int = 0
    ts: float = 0.0
    data: dict[str, Any] = {}


class DeliveryError(Exception):
    """A delivery failed.  ``permanent`` ones (bad request, unknown address) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ChannelContext(Protocol):
    """What the notify service gives a channel instance."""

    logger: logging.Logger

    def time(self) -> float:
        """The core clock's time (signatures are timestamped with it)."""

    @property
    def http(self) -> Any:
        """A shared ``httpx.AsyncClient``."""

    @property
    def mqtt_publish(self) -> MqttPublish | None:
        """The core's MQTT publish function, if the core has one."""
