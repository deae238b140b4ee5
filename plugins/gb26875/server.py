"""Centre listener (监控中心): a TCP server accepting UITDs and fire-panel gateways.

Each accepted connection runs a ``Session`` in the centre role.  Admission, in order:
source IP against ``allow_ips`` (CIDR networks; empty = any), the connection limits
(``max_connections`` in total, ``max_per_ip``), then — on the first frame — the
device address against ``allow_addresses`` (empty = any): a frame from an address
not on the list is denied and quarantined and the connection closed.  A second
connection from a device address already connected replaces the first (a UITD that
reconnects after a NAT timeout).  Inbound rate limits and quarantine are the
session's (``SessionConfig.rate`` / ``burst``).

``session_for(address)`` finds the live session of a device, to send it queries and
controls (``session.request(...)``, ``session.control(...)``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import msgspec

from .session import BaseHandler, Received, Reply, Role, Session, SessionConfig, SessionEvent, SessionHandler

log = logging.getLogger("firebus.gb26875")


class ListenerConfig(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "0.0.0.0"
    port: int = 0
    session: SessionConfig  # role must be centre; local_address is the centre's address
    allow_addresses: frozenset[bytes] = frozenset()
    allow_ips: tuple[str, ...] = ()
    max_connections: int = 1024
    max_per_ip: int = 64


class ListenerStats(msgspec.Struct):
    accepted: int = 0
    refused_ip: int = 0
    refused_limit: int = 0
    refused_address: int = 0
    replaced: int = 0


class _Admission:
    """Wraps the role's handler: device allow-list and the address → session index."""

    def __init__(self, server: CentreServer, inner: SessionHandler) -> None:
        self.server = server
        self.inner = inner

    async def on_frame(self, session: Session, received: Received) -> Reply:
        return await self.inner.on_frame(session, received)

    def on_peer(self, session: Session, address: bytes) -> bool:
        allowed = self.server.config.allow_addresses
        if allowed and address not in allowed:
            self.server.stats.refused_address += 1
            log.warning("gb26875 centre: frame from %s with address %s refused (not on the allow-list)",
                        session.peer, address.hex().upper())
            return False
        if not self.inner.on_peer(session, address):
            self.server.stats.refused_address += 1
            return False
        old = self.server.by_address.get(address)
        if old is not None and old is not session and not old.closed:
            self.server.stats.replaced += 1
            old.close(f"replaced by a new connection from {session.peer}")
        self.server.by_address[address] = session
        return True

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        self.inner.on_event(session, event)


class CentreServer:
    def __init__(self, config: ListenerConfig, handler: SessionHandler | None = None) -> None:
        if config.session.role != Role.CENTRE:
            raise ValueError("the centre listener's sessions must have role centre")
        self.config = config
        self.handler = _Admission(self, handler or BaseHandler())
        self.stats = ListenerStats()
        self.sessions: set[Session] = set()
        self.by_address: dict[bytes, Session] = {}
        self._per_ip: dict[str, int] = {}
        self._networks = [ipaddress.ip_network(n, strict=False) for n in config.allow_ips]
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.config.host, self.config.port)

    async def stop(self) -> None:
        if self._server is not None and not self._server.is_serving() and not self.sessions:
            return  # already stopped
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close("centre stopping")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> CentreServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def session_for(self, address: bytes) -> Session | None:
        session = self.by_address.get(address)
        return session if session is not None and not session.closed else None

    def _ip_allowed(self, ip: str) -> bool:
        if not self._networks:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._networks)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else ""
        if not self._ip_allowed(ip):
            self.stats.refused_ip += 1
            log.warning("gb26875 centre: connection from %s refused (not on the IP allow-list)", ip)
            writer.close()
            return
        if len(self.sessions) >= self.config.max_connections or self._per_ip.get(ip, 0) >= self.config.max_per_ip:
            self.stats.refused_limit += 1
            log.warning("gb26875 centre: connection from %s refused (connection limit)", ip)
            writer.close()
            return
        self.stats.accepted += 1
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        session = Session(reader, writer, self.config.session, self.handler)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]
            for address in [a for a, s in self.by_address.items() if s is session]:
                del self.by_address[address]
            if task is not None:
                self._tasks.discard(task)
