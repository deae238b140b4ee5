"""A notification channel that keeps what it is given: the notifier outbox fixture.

Configure it like any channel (``notify.channels: [{key: duty, type: test_outbox}]``)
and register ``outbox.plugin`` with the core under test; every message the
notify service sends through it lands in ``outbox.messages``.  ``fail_next(n)``
makes the next ``n`` deliveries raise, to test retries and escalation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import msgspec

from firebus.sdk import hookimpl
from firebus.sdk.notify import Channel, DeliveryError, Message


class OutboxOptions(msgspec.Struct, forbid_unknown_fields=True):
    group: bool = False  # unused by the channel; lets a test mimic a group robot's routing


class Outbox:
    """What the channel received, and failures to inject."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.attempts = 0
        self._fail = 0
        self._changed = anyio.Event()
        self.plugin = _OutboxPlugin(self)

    def fail_next(self, n: int = 1, *, permanent: bool = False) -> None:
        self._fail = n
        self._permanent = permanent

    async def _deliver(self, message: Message) -> None:
        self.attempts += 1
        if self._fail > 0:
            self._fail -= 1
            raise DeliveryError("outbox: injected failure", permanent=getattr(self, "_permanent", False))
        self.messages.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, *, count: int = 1, timeout: float = 20.0, **match: Any) -> list[Message]:
        """At least ``count`` messages whose fields equal ``match`` (e.g. ``kind="new"``)."""
        def found() -> list[Message]:
            return [m for m in self.messages if all(getattr(m, k, None) == v for k, v in match.items())]

        try:
            with anyio.fail_after(timeout):
                while len(found()) < count:
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"outbox: {len(found())} of {count} messages matching {match} "
                               f"within {timeout}s (all: {[(m.kind, m.recipient) for m in self.messages]})") from None
        return found()


def outbox_channel_class(outbox: Outbox) -> type[Channel]:
    """A channel type bound to ``outbox`` (one per test, so parallel cores never mix)."""

    class OutboxChannel(Channel):
        type_key: ClassVar[str] = "test_outbox"
        Options: ClassVar[type[msgspec.Struct]] = OutboxOptions

        async def send(self, message: Any) -> None:
            await outbox._deliver(message)

    return OutboxChannel


class _OutboxPlugin:
    def __init__(self, outbox: Outbox) -> None:
        self._cls = outbox_channel_class(outbox)

    @hookimpl
    def firebus_register_notifiers(self, core: Any) -> list[type]:
        return [self._cls]
