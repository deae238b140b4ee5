"""Contract suite for notification channels (``firebus.sdk.Notifier`` / ``notify.Channel``).

The vendor's ``rig()`` wires the channel to a receiver the test controls (a local SMTP
server, an HTTP endpoint) and can take that receiver down to test failure and recovery.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import msgspec
import pytest

from firebus.sdk.extension import Notifier

from .checks import running_tasks, watch_blocking
from .levels import Level, level


class NotifierRig:
    """A channel wired to a receiver the test controls."""

    channel: Any

    def delivered(self) -> list[Any]:
        """What the receiver got so far."""
        raise NotImplementedError

    def set_receiver_up(self, up: bool) -> None:
        raise NotImplementedError


def sample_message(n: int = 1) -> Any:
    from firebus.sdk.notify import Message

    return Message(id=f"contract-{n}", kind="new", channel="contract", recipient="duty", title="Fire alarm",
                   text="Smoke detector B1 switch room: alarm", address="duty@example.invalid",
                   alarm_id="A-1", category="fire", severity=3, ts=time.time())


@pytest.mark.anyio
class NotifierContract:
    """Contract for notification channels (``firebus.sdk.Notifier`` / ``notify.Channel``)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the core runs on asyncio (trio is not supported)

    notifier_class: ClassVar[type[Notifier]]
    options: ClassVar[dict[str, Any]] = {}
    send_within: ClassVar[float] = 20.0
    blocking_threshold: ClassVar[float] = 0.15

    def rig(self) -> Any:
        """An async context manager yielding a ``NotifierRig``."""
        raise NotImplementedError

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.notifier_class
        assert isinstance(getattr(cls, "type_key", None), str) and cls.type_key
        opts = msgspec.convert(self.options, cls.Options)
        assert msgspec.convert(msgspec.to_builtins(opts), cls.Options) == opts

    @level(Level.BRONZE)
    async def test_send_delivers(self) -> None:
        async with self.rig() as rig:
            with anyio.fail_after(self.send_within):
                await rig.channel.send(sample_message(1))
            assert len(rig.delivered()) == 1

    @level(Level.SILVER)
    async def test_failure_raises_instead_of_hanging(self) -> None:
        async with self.rig() as rig:
            rig.set_receiver_up(False)
            with anyio.fail_after(self.send_within), pytest.raises(Exception):  # noqa: B017 — any error, never a hang
                await rig.channel.send(sample_message(2))
            assert not rig.delivered()

    @level(Level.SILVER)
    async def test_recovers_after_a_failure(self) -> None:
        async with self.rig() as rig:
            rig.set_receiver_up(False)
            with anyio.fail_after(self.send_within), pytest.raises(Exception):  # noqa: B017 — any error, never a hang
                await rig.channel.send(sample_message(3))
            rig.set_receiver_up(True)
            with anyio.fail_after(self.send_within):
                await rig.channel.send(sample_message(4))
            assert len(rig.delivered()) == 1

    @level(Level.GOLD)
    async def test_no_blocking_calls_in_the_event_loop(self) -> None:
        async with self.rig() as rig:
            async with watch_blocking(self.blocking_threshold) as watch:
                for n in range(3):
                    await rig.channel.send(sample_message(10 + n))
            assert not watch.slow, f"the channel blocked the event loop: {watch.slow}"

    @level(Level.GOLD)
    async def test_close_releases_resources(self) -> None:
        before = running_tasks()
        async with self.rig() as rig:
            await rig.channel.send(sample_message(20))
            close = getattr(rig.channel, "aclose", None)
            if close is not None:
                await close()
                await close()  # idempotent
        await anyio.lowlevel.checkpoint()
        leaked = [t.get_name() for t in running_tasks() - before if t is not asyncio.current_task()]
        assert not leaked, f"tasks left running after close: {leaked}"
