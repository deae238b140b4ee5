"""UITD client (用户信息传输装置): keeps a link to a centre, primary first, then backups.

Submissions go into one *persistent* ``Outbox`` that outlives connections: an upload
the centre has not confirmed when the link breaks (or whose resends are exhausted)
stays queued in its place and is sent on the next connection — to the backup centre
if the primary is unreachable — so an entry is finished only by the centre's answer
(``Outcome``), a deny, or ``stop()``.  Fire alarms stay at the head of that queue.

This is the sending half phase 2's uplink consumes the core's journal with: submit
each entry with ``key=seq``, and save the ``ConfirmedPrefix`` watermark as the cursor.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Callable, Hashable

import msgspec

from .model import AnyAdu
from .outbox import Outbox, Outcome, OutcomeStatus, Priority, Submission
from .session import (
    BaseHandler,
    Closed,
    LinkFault,
    Role,
    Session,
    SessionConfig,
    SessionHandler,
    validate,
)
from .tables import Command

log = logging.getLogger("firebus.gb26875")


class Endpoint(msgspec.Struct, frozen=True):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    centres: tuple[Endpoint, ...]  # primary first, then backups
    session: SessionConfig  # role uitd; peer_address is the centre's address
    connect_timeout: float = 5.0
    reconnect_min: float = 0.2
    reconnect_max: float = 30.0


class UitdClient:
    def __init__(self, config: ClientConfig, handler: SessionHandler | None = None, *,
                 now: Callable[[], datetime] | None = None) -> None:
        if config.session.role != Role.UITD:
            raise ValueError("the UITD client's sessions must have role uitd")
        if not config.centres:
            raise ValueError("at least one centre endpoint is needed")
        self.config = config
        self.handler: SessionHandler = handler or BaseHandler()
        self.outbox = Outbox(persistent=True)
        self.session: Session | None = None
        self.endpoint: Endpoint | None = None
        self.connected = asyncio.Event()
        self.connections = 0
        self._now = now
        self._stopping = False
        self._index = 0

    def submit(self, adu: AnyAdu | None, *, command: int = Command.SEND_DATA, priority: Priority | None = None,
               key: Hashable = None) -> Submission:
        validate(adu, command, self.config.session.mode)
        return self.outbox.put(Submission(adu, command=command, priority=priority, key=key))

    async def send(self, adu: AnyAdu | None, *, command: int = Command.SEND_DATA, priority: Priority | None = None,
                   key: Hashable = None) -> Outcome:
        return await self.submit(adu, command=command, priority=priority, key=key).outcome()

    def stop(self) -> None:
        self._stopping = True
        if self.session is not None:
            self.session.close("client stopping")

    async def run(self) -> None:
        """Connect, run a session, reconnect with backoff (to the next centre after a
        failure), until ``stop()``; unfinished submissions are then cancelled."""
        delay = self.config.reconnect_min
        try:
            while not self._stopping:
                endpoint = self.config.centres[self._index % len(self.config.centres)]
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(endpoint.host, endpoint.port), self.config.connect_timeout)
                except (OSError, asyncio.TimeoutError) as exc:
                    self.handler.on_event(None, LinkFault(reason=f"connect to {endpoint} failed: {exc or 'timeout'}",
                                                          reason_zh=f"连接监控中心 {endpoint} 失败：{exc or '超时'}"))
                    self._index += 1
                    await self._pause(delay)
                    delay = min(delay * 2, self.config.reconnect_max)
                    continue
                self.endpoint = endpoint
                self.connections += 1
                session = Session(reader, writer, self.config.session, self.handler, outbox=self.outbox,
                                  now=self._now)
                self.session = session
                self.connected.set()
                reason = await session.run()
                self.connected.clear()
                self.session = None
                if self._stopping:
                    break
                if reason.startswith("link fault") or session.stats.confirmed + session.stats.responded == 0:
                    self._index += 1  # the backup next
                else:
                    delay = self.config.reconnect_min
                log.info("gb26875 uitd: link to %s closed (%s); reconnecting in %.1f s", endpoint, reason, delay)
                await self._pause(delay)
                delay = min(delay * 2, self.config.reconnect_max)
        finally:
            self.outbox.close(OutcomeStatus.CANCELLED)
            self.handler.on_event(None, Closed(reason="client stopped"))

    async def _pause(self, seconds: float) -> None:
        # stop() during the pause ends it at once
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while not self._stopping and loop.time() < end:
            await asyncio.sleep(min(0.05, end - loop.time()))
