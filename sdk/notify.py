"""The notification-channel contract: what a channel is given, what it must send, how it fails.

A channel type is a ``Channel`` subclass (a ``firebus.sdk.Notifier``) with a
``type_key`` and an ``Options`` Struct, returned from a plugin's
``firebus_register_notifiers`` hook.  The notify service creates one
instance per ``notify.channels`` entry of the site file as
``cls(key, options, ctx)`` and calls ``send(message)`` from its durable
outbox: raise ``DeliveryError`` (or anything) to have the message retried
with back-off; return to have it recorded as delivered.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, ClassVar, Protocol

import msgspec

from .extension import Notifier

#: ``publish(topic, payload, qos, retain)``: the core's MQTT publish, for channels that need one.
MqttPublish = Callable[[str, bytes, int, bool], Awaitable[None]]


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rendered notification for one recipient on one channel.

    ``id`` is the outbox row id: stable across retries and restarts, so a
    receiver can drop a duplicate (put it in the wire format: a header, the
    payload, the e-mail Message-ID).  For group channels (robots) ``address``
    is empty and ``mentions`` lists the people to @-mention (their contact on
    that channel: a mobile number or a user id).
    """

    id: str
    kind: str  # new | escalate | cleared | acknowledged | digest | test
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
    #: A signed, expiring link that opens the alarm in the app ("" when the site has no
    #: ``notify.links.base_url``).  Already in ``text``; channels with a click/URL field put it there too.
    url: str = ""


class DeliveryError(Exception):
    """A delivery failed.  ``permanent`` ones (no address, bad template) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ChannelContext(Protocol):
    """What the notify service gives a channel instance."""

    logger: logging.Logger

    def time(self) -> float:
        """The core clock's time (timestamps in signatures come from it)."""

    @property
    def http(self) -> Any:
        """A shared ``httpx.AsyncClient`` (connection pool, owned by the service)."""

    @property
    def mqtt_publish(self) -> MqttPublish | None:
        """The core's MQTT publish function, if the site has an MQTT transport."""


class Channel(Notifier):
    """Base of notification channel types.

    ``group`` channels (group robots, webhooks, MQTT) post once per alarm step
    into a shared place and @-mention the step's people; personal channels
    (e-mail, SMS, voice) send one message per person to that person's address.
    """

    group: ClassVar[bool] = False

    def __init__(self, key: str, options: Any, ctx: ChannelContext) -> None:
        self.key = key
        self.options = options
        self.ctx = ctx

    async def aclose(self) -> None:
        """Release anything the channel holds (the shared HTTP client is not its own)."""


__all__ = ["Channel", "ChannelContext", "DeliveryError", "Message", "MqttPublish"]
