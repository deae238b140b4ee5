"""What every contract suite shares: the blocking-call watch, the task-leak check, the
point-class rule, and the ``DriverContext`` a driver gets under test.

Nothing here imports pytest: ``firebus sdk check`` applies the same point-class rule
(``known_point_classes``) on a site box that has no test tools installed.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable

from firebus.sdk.driver import Reading
from firebus.sdk.manifest import Manifest
from firebus.sdk.vocab import Availability, PointClass


class BlockingWatch(logging.Handler):
    """Counts asyncio's "Executing <handle> took N seconds" warnings (debug mode).

    That warning means one callback held the event loop for longer than
    ``slow_callback_duration``: a blocking call (``time.sleep``, sync socket or
    file I/O, a CPU-heavy decode) that stalls every other device on the site.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing ") and " took " in message:
            self.slow.append(message)


@asynccontextmanager
async def watch_blocking(threshold: float = 0.15) -> AsyncIterator[BlockingWatch]:
    loop = asyncio.get_running_loop()
    watch = BlockingWatch()
    logger = logging.getLogger("asyncio")
    was_debug, was_threshold = loop.get_debug(), loop.slow_callback_duration
    logger.addHandler(watch)
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    # asyncio times a callback only if debug was on when it started: end this step first,
    # and end the last step under watch before switching debug off again.
    await asyncio.sleep(0)
    try:
        yield watch
    finally:
        await asyncio.sleep(0)
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_threshold
        logger.removeHandler(watch)


def running_tasks() -> set[asyncio.Task[Any]]:
    """The loop's unfinished tasks: taken before and after ``close``, the difference leaked."""
    return {t for t in asyncio.all_tasks() if not t.done()}


def known_point_classes(extra: Iterable[str] = (), manifest: Manifest | None = None, plugin: Any = None) -> set[str]:
    """The SDK's point classes plus what the plugin declares (manifest, ``firebus_register_point_classes``)."""
    known = {str(c) for c in PointClass} | set(extra)
    if manifest is not None:
        known |= set(manifest.point_classes)
    hook = getattr(plugin, "firebus_register_point_classes", None)
    if hook is not None:
        known |= set(hook(None) or [])
    return known


class ContractDriverContext:
    """The ``DriverContext`` a driver gets under contract test: records what it is told."""

    def __init__(self, transport: Any, logger: logging.Logger) -> None:
        self.device_id: str | None = "contract-device"
        self.transport = transport
        self.logger = logger
        self.availability: list[tuple[Availability, str]] = []
        self.reported: list[Reading] = []
        self.quarantined: list[tuple[str, bytes, str]] = []

    def set_availability(self, availability: Availability, reason: str = "") -> None:
        self.availability.append((availability, reason))

    async def report(self, readings: list[Reading]) -> None:
        self.reported.extend(readings)

    def quarantine(self, source: str, raw: bytes, reason: str) -> None:
        self.quarantined.append((source, raw, reason))
