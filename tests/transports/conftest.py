"""Fixtures for transport tests: a real Mosquitto, real pymodbus servers, a small TransportContext.

``RecordingContext`` stands in for the core's TransportContext until the
runtime lands; it records ``link_changed`` calls so tests can assert one
event per outage.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import pytest
from firebus.sdk.testing.mosquitto import Mosquitto


class RecordingContext:
    def __init__(self, name: str = "transport") -> None:
        self.logger = logging.getLogger(f"firebus.test.{name}")
        self.links: list[tuple[bool, str]] = []
        self.tasks: list[asyncio.Task[Any]] = []

    def link_changed(self, up: bool, reason: str = "") -> None:
        self.links.append((up, reason))

    async def run_in_background(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str = "") -> None:
        self.tasks.append(asyncio.create_task(func(*args), name=name or None))


@pytest.fixture
def ctx() -> RecordingContext:
    return RecordingContext()


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
