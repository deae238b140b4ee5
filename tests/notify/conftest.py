"""Fixtures for the notify plugin: a real HTTP receiver, a real SMTP server, a small core.

The "core" is a real EventBus and a real Storage on a file plus a ManualClock;
``NotifyHarness.restart()`` stops the service, closes the storage and opens
the same file again, as a core restart would.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from firebus.sdk.testing.waiting import eventually as wait_for  # noqa: F401 (used by the tests importing it from here)
from firebus.core.bus import EventBus
from firebus.core.journal import Journal, quiesce
from firebus.core.storage import Storage
from firebus.plugins import notify
from firebus.sdk import AlarmCategory, AlarmEvent, AlarmTransition, Context, Event, Severity
from firebus.sdk.clock import ManualClock

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC = 16:00 Asia/Shanghai, a Friday


# -- HTTP receiver ------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on a free loopback port that records every request.

    ``respond`` decides the answer per request (status, JSON body); ``fail_with``
    makes every request fail until ``recover()``: a channel outage.
    """

    server: ThreadingHTTPServer | None = None
    requests: list[Request] = field(default_factory=list)
    respond: Callable[[Request], tuple[int, Any]] | None = None
    failing: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_with(self, status: int = 503) -> None:
        self.failing = status

    def recover(self) -> None:
        self.failing = None

    def on(self, path_prefix: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def ok(self, path_prefix: str) -> list[Request]:
        """Requests to ``path_prefix`` that were answered with success."""
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix) and getattr(r, "status", 200) < 300]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            req = Request(self.command, split.path, parse_qs(split.query), dict(self.headers.items()), body)
            if receiver.failing is not None:
                status, answer = receiver.failing, {"error": "down"}
            elif receiver.respond is not None:
                status, answer = receiver.respond(req)
            else:
                status, answer = 200, {"ok": True}
            req.status = status  # type: ignore[attr-defined]
            with receiver.lock:
                receiver.requests.append(req)
            data = json.dumps(answer).encode() if not isinstance(answer, (bytes, str)) else (
                answer.encode() if isinstance(answer, str) else answer)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Any:
    rec = Receiver()
    rec.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.server.daemon_threads = True
    thread = threading.Thread(target=rec.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()


# -- SMTP server ---------------------------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0
    refuse: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        return "250 OK"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(params=["starttls"])
def smtp_server(request: Any, tmp_path: Path) -> Any:
    """aiosmtpd on a free port, AUTH (after TLS) for user ``duty``/``s3cret``.

    ``starttls``: plain connection offering STARTTLS; ``ssl``: implicit TLS (port-465 style).
    """
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from firebus.sdk.testing.mosquitto import free_port

    box = Mailbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == ("duty", "s3cret")
        if ok:
            box.logins.append((user, password))
        return AuthResult(success=ok, handled=False)  # let aiosmtpd answer 535 itself

    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(str(cert), str(key))
    box.port = free_port()
    implicit = request.param == "ssl"
    controller = Controller(
        box, hostname="127.0.0.1", port=box.port, tls_context=None if implicit else tls,
        ssl_context=tls if implicit else None, require_starttls=False,
        authenticator=authenticator, auth_require_tls=not implicit, auth_required=False,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# -- the small core --------------------------------------------------------------------------------


class TestCore:
    """What the plugin sees of the core: a real bus and storage, a manual clock."""

    __test__ = False

    def __init__(self, bus: EventBus, storage: Storage, clock: ManualClock, tg: Any, section: dict[str, Any]) -> None:
        self.bus = bus
        self.storage = storage
        self.clock = clock
        self.registry = None
        self._tg = tg
        self.journal = Journal(storage, bus, clock=clock)
        self.journal.start_seq = storage.last_seq
        self.journal.start_task = self.start_task
        self._section = section
        self.published: list[Event] = []

    def logger(self, name: str) -> logging.Logger:
        return logging.getLogger(f"firebus.plugin.{name}")

    def start_task(self, func: Any, *args: Any, name: str = "") -> None:
        self._tg.start_soon(func, *args, name=name or None)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return self._section if name == "notify" else {}

    def declared_types(self, kind: str) -> dict[str, type]:
        return {}

    async def mqtt_publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, *, transport: str | None = None) -> None:
        raise RuntimeError("no MQTT transport in this test core")


class NotifyHarness:
    def __init__(self, db: Path, section: dict[str, Any], clock: ManualClock) -> None:
        self.db = db
        self.section = section
        self.clock = clock
        self.core: TestCore | None = None
        self.events: list[Event] = []
        self.mqtt: list[tuple[str, bytes, int, bool]] = []
        self.mqtt_publish: Any = None
        #: called with the test core before notify starts (give it media, a secret, a registry)
        self.prepare: Callable[[TestCore], None] | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TestCore]:
        bus = EventBus()
        storage = Storage(self.db, synchronous="NORMAL")
        await storage.open(notify.firebus_register_migrations(None))
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(storage.run_writer)
                bus.attach(tg)
                bus.subscribe("test-recorder", self.events.append)
                core = TestCore(bus, storage, self.clock, tg, self.section)
                if self.mqtt_publish is not None:
                    core.mqtt_publish = self.mqtt_publish  # type: ignore[attr-defined]
                self.core = core
                if self.prepare is not None:
                    self.prepare(core)
                await notify.firebus_startup(core)
                service = notify.service_for(core)
                assert service is not None
                with anyio.fail_after(10):
                    await service.wait_ready()
                try:
                    yield core
                finally:
                    await notify.firebus_shutdown(core)
                    await storage.barrier()
                    tg.cancel_scope.cancel()
        finally:
            await storage.close()
            self.core = None

    @property
    def service(self) -> notify.NotifyService:
        assert self.core is not None
        service = notify.service_for(self.core)
        assert service is not None
        return service

    def publish(self, alarm: AlarmEvent, context: Context | None = None) -> Event:
        assert self.core is not None
        return self.core.bus.publish(alarm, context or Context())

    async def settle(self) -> None:
        assert self.core is not None
        await quiesce(self.core.bus, self.core.storage)
        await self.clock.settle()
        await quiesce(self.core.bus, self.core.storage)

    async def rows(self, where: str = "1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        assert self.core is not None
        cols = ["id", "dedup_key", "alarm_id", "kind", "step", "recipient", "channel", "status", "attempts",
                "last_error", "next_ts"]
        rows = await self.core.storage.fetchall(
            f"SELECT {', '.join(cols)} FROM notify_outbox WHERE {where} ORDER BY created_ts, id", params
        )
        return [dict(zip(cols, r)) for r in rows]

    def results(self) -> list[Event]:
        return [e for e in self.events if e.type == "NotificationResult"]


def alarm(
    alarm_id: str = "A1",
    transition: AlarmTransition = AlarmTransition.NEW,
    category: AlarmCategory = AlarmCategory.FIRE,
    severity: Severity = Severity.FIRE,
    *,
    unit_id: str | None = "unit-a",
    ts: float = START,
    step: int = 0,
    **kw: Any,
) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=alarm_id, transition=transition, category=category, severity=severity, rule="smoke",
        device_id=kw.pop("device_id", "dev-1"), point_id=kw.pop("point_id", "pt-1"), unit_id=unit_id,
        value=kw.pop("value", 1), message=kw.pop("message", "smoke detector in alarm"), escalation_step=step,
        ts=ts, **kw,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def make_harness(tmp_path: Path, clock: ManualClock) -> Callable[[dict[str, Any]], NotifyHarness]:
    def make(section: dict[str, Any]) -> NotifyHarness:
        return NotifyHarness(tmp_path / "firebus.db", section, clock)

    return make


# -- a site used by the service tests ------------------------------------------------------------

SMS_BODY = ('{"to": {{ phone|tojson }}, "kind": {{ kind|tojson }}, "step": {{ step }}, '
            '"alarm": {{ alarm_id|tojson }}, "title": {{ title|tojson }}, "text": {{ text|tojson }}, '
            '"id": {{ id|tojson }}, "lang": {{ language|tojson }}}')


def site(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    """Two units; an SMS gateway (personal) and a signed webhook (group) on the test receiver."""
    section: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "channels": [
            {"key": "sms", "type": "sms", "options": {"url": receiver.url("/sms"), "body": SMS_BODY}},
            {"key": "hook", "type": "webhook", "options": {"url": receiver.url("/hook"), "secret": "k"}},
        ],
        "people": [
            {"name": "duty-a", "roles": ["duty_officer"], "units": ["unit-a"], "contacts": {"sms": "1001"}},
            {"name": "duty-b", "roles": ["duty_officer"], "units": ["unit-b"], "contacts": {"sms": "1002"}},
            {"name": "mgr-a", "roles": ["unit_manager"], "units": ["unit-a"], "contacts": {"sms": "2001"}},
            {"name": "mgr-b", "roles": ["unit_manager"], "units": ["unit-b"], "contacts": {"sms": "2002"}},
            {"name": "sup", "roles": ["supervisor"], "contacts": {"sms": "3000"}},
            {"name": "fixer", "roles": ["maintenance"], "contacts": {"sms": "4000"}, "language": "en"},
        ],
        "routes": [
            {"name": "alarms", "channels": ["sms", "hook"], "min_severity": "alarm",
             "escalation": {"steps": [{"roles": ["duty_officer"]},
                                      {"roles": ["unit_manager"], "after_minutes": 5},
                                      {"roles": ["supervisor"], "after_minutes": 15}]}},
            {"name": "faults", "channels": ["sms"], "categories": ["fault", "offline"],
             "escalation": {"steps": [{"roles": ["maintenance"]}]}},
        ],
        "rate_limit": {"burst": 5, "window_s": 300},
        "outbox": {"base_backoff_s": 10, "max_backoff_s": 120},
    }
    section.update(overrides)
    return section


def sms(receiver: Receiver) -> list[dict[str, Any]]:
    """Bodies of the SMS the gateway accepted, in arrival order."""
    return [r.json() for r in receiver.ok("/sms")]
