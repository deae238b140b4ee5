"""Base classes of the other declarations a plugin can register (rules: ``sdk/rule.py``).

Each has a ``type_key`` (unique across all loaded plugins; a duplicate fails
start-up naming both plugins) and an ``Options`` msgspec Struct that the
matching section of the site file must satisfy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import logging
from typing import Any, Awaitable, Callable, ClassVar, Protocol, runtime_checkable

import msgspec


class NoOptions(msgspec.Struct, forbid_unknown_fields=True):
    """For declarations that take no options."""


class TransportContext(Protocol):
    """What the core gives a transport.  Implemented by the core."""

    logger: logging.Logger

    def link_changed(self, up: bool, reason: str = "") -> None:
        """Report the link going down or coming back (published as ``LinkChanged``)."""

    async def run_in_background(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        """Start a task in the core's task group (cancelled when the core stops)."""


class Transport(ABC):
    """A shared connection to devices: an MQTT broker, a Modbus line.

    The core creates one instance per ``transports:`` entry in the site file and
    hands it to every driver configured on it; drivers never open sockets.
    """

    type_key: ClassVar[str]
    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    def __init__(self, key: str, options: Any, ctx: TransportContext) -> None:
        self.key = key
        self.options = options
        self.ctx = ctx

    @abstractmethod
    async def start(self) -> None:
        """Connect (or start connecting in the background); never raise for a dead peer."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect and release everything."""


#: ``handler(topic, payload, ack)``: ``ack()`` once what the message carried is durable.
MessageHandler = Callable[[str, bytes, Callable[[], None]], Awaitable[None]]


@runtime_checkable
class MessageTransport(Protocol):
    """A transport that carries topic messages both ways (the MQTT transport).

    Drivers and plugins that publish (commands to devices, notifications over MQTT)
    ask for this protocol — ``isinstance(transport, MessageTransport)`` — rather
    than probing for a ``publish`` attribute; a Modbus line is not one.
    """

    async def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                      *, timeout: float | None = None) -> None:
        """Publish; returns once the broker confirmed it (QoS ≥ 1) or it was written (QoS 0)."""

    def subscribe(self, pattern: str, handler: MessageHandler) -> Callable[[], None]:
        """Deliver messages matching ``pattern`` to ``handler``; returns a function that unsubscribes."""


class Notifier(ABC):
    """A notification channel type (e-mail, webhook, SMS gateway, group robots …)."""

    type_key: ClassVar[str]
    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    @abstractmethod
    async def send(self, message: Any) -> None:
        """Deliver one message; raise on failure so the outbox retries it."""


# The video detector contract (the base class, Detection, Label, the host tracker) lives in
# sdk/detector.py; imported here so ``firebus.sdk.VideoDetector`` is that one class.
from .detector import VideoDetector as VideoDetector  # noqa: E402 (an explicit re-export)
