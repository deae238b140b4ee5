"""The session layer over real TCP on 127.0.0.1: confirm/deny, serial per direction, timeout and
resends, link fault, fire alarms first (sending and receiving), deny + quarantine of bad frames,
duplicates, heartbeat, idle timeout, allow-lists and limits, the persistent UITD outbox across a
centre restart, backup failover, queries and controls (checklist items 2, 3, 4, 5, 9)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Awaitable, Callable

import pytest

from firebus.plugins.gb26875 import codec
from firebus.plugins.gb26875.client import ClientConfig, Endpoint, UitdClient
from firebus.plugins.gb26875.framer import Framer
from firebus.plugins.gb26875.model import (
    Adu,
    ComponentState,
    DutyCheck,
    Frame,
    Header,
    ReadUitdSoftwareVersion,
    ReadUitdState,
    TimeTag,
    UitdState,
    address,
)
from firebus.plugins.gb26875.outbox import ConfirmedPrefix, Outbox, OutcomeStatus, Priority, priority_of
from firebus.plugins.gb26875.server import CentreServer, ListenerConfig
from firebus.plugins.gb26875.session import (
    CONFIRM,
    DENY,
    NO_REPLY,
    BaseHandler,
    LinkFault,
    Quarantine,
    Received,
    Reply,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    respond,
)
from firebus.plugins.gb26875.tables import Command

pytestmark = pytest.mark.anyio

UITD, CENTRE = address(889), address(88888)
FAST = dict(timeout=0.25, resends=3)


class Recorder(BaseHandler):
    """Records frames and events; ``reply`` decides each answer (may be async)."""

    def __init__(self, reply: Callable[[Received], Reply | Awaitable[Reply]] | None = None) -> None:
        self.reply = reply
        self.frames: list[Received] = []
        self.events: list[SessionEvent] = []
        self.changed = asyncio.Event()

    async def on_frame(self, session: Session, received: Received) -> Reply:
        self.frames.append(received)
        self.changed.set()
        if self.reply is None:
            return await super().on_frame(session, received)
        result = self.reply(received)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[return-value]

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds (re-checked on every event, and every 20 ms for state
        that changes without one), or fail after ``timeout``."""
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), 0.02)
                except asyncio.TimeoutError:
                    pass
        await asyncio.wait_for(loop(), timeout)

    def uploads(self) -> list[Received]:
        return [r for r in self.frames if r.frame.header.command == Command.SEND_DATA and r.frame.adu is not None]


def state(n: int) -> Adu:
    return Adu(2, (ComponentState(system_type=1, system_address=1, component_type=42, component_address=n,
                                  state=0b1, description=bytes(31), time=TimeTag.now()),))


def fire(n: int = 99) -> Adu:
    return Adu(2, (ComponentState(system_type=1, system_address=1, component_type=42, component_address=n,
                                  state=0b11, description=bytes(31), time=TimeTag.now()),))


_SERVERS: list[CentreServer] = []


@pytest.fixture(autouse=True)
async def _stop_servers():
    yield
    while _SERVERS:  # a failed assertion must not leave a listener behind
        await _SERVERS.pop().stop()


async def centre(handler: Recorder, *, port: int = 0, **kw) -> CentreServer:
    listener = {k: kw.pop(k) for k in ("allow_addresses", "allow_ips", "max_connections", "max_per_ip") if k in kw}
    server = CentreServer(ListenerConfig(host="127.0.0.1", port=port, session=SessionConfig(
        role=Role.CENTRE, local_address=CENTRE, **({"timeout": 0.25} | kw)), **listener), handler)
    await server.start()
    _SERVERS.append(server)
    return server


def uitd_config(*ports: int, **kw) -> ClientConfig:
    return ClientConfig(centres=tuple(Endpoint("127.0.0.1", p) for p in ports), reconnect_min=0.05,
                        reconnect_max=0.2, session=SessionConfig(role=Role.UITD, local_address=UITD,
                                                                 peer_address=CENTRE, **(FAST | kw)))


class Running:
    """A UITD client running in the background for the length of a test."""

    def __init__(self, client: UitdClient) -> None:
        self.client = client
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> UitdClient:
        self.task = asyncio.create_task(self.client.run())
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        self.client.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


async def test_confirm_serials_and_addresses() -> None:
    rec = Recorder()
    server = await centre(rec)
    uitd_events = Recorder()
    async with Running(UitdClient(uitd_config(server.port), uitd_events)) as client:
        outcomes = [await client.send(state(i)) for i in range(3)]
        assert [o.status for o in outcomes] == [OutcomeStatus.CONFIRMED] * 3
        # serials from 0, one per new packet (the announce heartbeat is one of them)
        assert [r.frame.header.serial for r in rec.frames] == [0, 1, 2, 3]
        assert sum(r.frame.is_heartbeat for r in rec.frames) == 1
        for o in outcomes:  # confirm: serial echoed, addresses swapped, L = 0 (checklist item 3)
            h = o.reply.header
            assert h.serial == o.serial and h.source == CENTRE and h.destination == UITD
            assert h.command == Command.CONFIRM and o.reply.adu is None and o.attempts == 1
        # the centre's own exchanges count from 0 on their own
        session = server.session_for(UITD)
        assert session is not None
        outcome = await session.send(Adu(91, (DutyCheck(),)), command=Command.CONTROL)
        assert outcome.status == OutcomeStatus.CONFIRMED and outcome.serial == 0
    await server.stop()


async def test_deny_then_confirm_resends_the_same_frame() -> None:
    answers = iter([DENY, CONFIRM])
    rec = Recorder(lambda r: CONFIRM if r.frame.is_heartbeat else next(answers))
    server = await centre(rec)
    async with Running(UitdClient(uitd_config(server.port))) as client:
        outcome = await client.send(state(1))
    await server.stop()
    assert outcome.status == OutcomeStatus.CONFIRMED and outcome.attempts == 2 and outcome.denies == 1
    first, second = rec.uploads()
    assert first.raw == second.raw  # a resend is the same packet, same serial


async def test_denied_after_every_resend() -> None:
    rec = Recorder(lambda r: CONFIRM if r.frame.is_heartbeat else DENY)
    server = await centre(rec)
    events = Recorder()
    async with Running(UitdClient(uitd_config(server.port), events)) as client:
        outcome = await client.send(state(1))
        assert outcome.status == OutcomeStatus.DENIED and outcome.attempts == 4 and outcome.denies == 4
        assert any(isinstance(e, LinkFault) and "denied" in e.reason for e in events.events)
        assert client.connections == 1  # a deny is an answer: the link stays up
    await server.stop()


async def test_timeout_and_resend() -> None:
    drops = iter([NO_REPLY, NO_REPLY])
    rec = Recorder(lambda r: CONFIRM if r.frame.is_heartbeat else next(drops, CONFIRM))
    server = await centre(rec)
    async with Running(UitdClient(uitd_config(server.port))) as client:
        outcome = await client.send(state(1))
    await server.stop()
    assert outcome.status == OutcomeStatus.CONFIRMED and outcome.attempts == 3
    assert 0.5 <= outcome.latency < 2.0  # two timeouts of 0.25 s
    assert len({r.raw for r in rec.uploads()}) == 1 and len(rec.uploads()) == 3


async def test_link_fault_after_resends_exhausted() -> None:
    rec = Recorder(lambda r: NO_REPLY)
    server = await centre(rec)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    events = Recorder()
    session = Session(reader, writer, SessionConfig(role=Role.UITD, local_address=UITD, peer_address=CENTRE,
                                                    announce=False, timeout=0.2, resends=2), events)
    run = asyncio.create_task(session.run())
    outcome = await session.send(state(1))
    reason = await asyncio.wait_for(run, 5)
    await server.stop()
    assert outcome.status == OutcomeStatus.FAILED and outcome.attempts == 3
    faults = [e for e in events.events if isinstance(e, LinkFault)]
    assert len(faults) == 1 and "no answer after 3 attempts" in faults[0].reason
    assert reason.startswith("link fault") and session.stats.timeouts == 3 and session.stats.resends == 2


async def test_fire_alarm_jumps_a_queue_of_state_uploads() -> None:
    release = asyncio.Event()

    async def slow(r: Received) -> Reply:
        if not r.fire:
            await release.wait()  # the centre sits on state uploads until told
        return CONFIRM

    rec = Recorder(slow)
    server = await centre(rec)
    client = UitdClient(uitd_config(server.port, timeout=5.0, announce=False))
    async with Running(client):
        subs = [client.submit(state(i), key=i) for i in range(20)]
        await rec.wait(lambda: len(rec.frames) == 1)  # state 0 is on the wire, unconfirmed
        alarm = client.submit(fire(), key="fire")
        outcome = await asyncio.wait_for(alarm.outcome(), 2)
        assert outcome.status == OutcomeStatus.CONFIRMED
        # sent and confirmed while state 0 waits, 19 others behind it (checklist item 9)
        assert [r.fire for r in rec.frames] == [False, True]
        assert not subs[0].done
        release.set()
        results = [await s.outcome() for s in subs]
        assert all(o.ok for o in results)
        assert [r.frame.adu.objects[0].component_address for r in rec.uploads() if not r.fire] == list(range(20))
    await server.stop()


async def test_fire_alarm_first_when_everything_is_queued() -> None:
    rec = Recorder()
    server = await centre(rec)
    client = UitdClient(uitd_config(server.port))
    for i in range(10):
        client.submit(state(i), priority=Priority.STATE)
    client.submit(Adu(21, (UitdState(state=0b101, time=TimeTag.now()),)))  # a fault: ALARM
    client.submit(fire())
    async with Running(client):
        await rec.wait(lambda: len(rec.uploads()) == 12)
    await server.stop()
    kinds = [("fire" if r.fire else r.frame.adu.type) for r in rec.uploads()]
    assert kinds[:2] == ["fire", 21] and kinds[2:] == [2] * 10


async def test_received_fire_alarms_are_handled_first() -> None:
    gate = asyncio.Event()
    order: list[bool] = []

    async def handle(r: Received) -> Reply:
        order.append(r.fire)
        if not r.fire:
            await gate.wait()  # the centre is slow with state uploads
        return CONFIRM

    rec = Recorder(handle)
    server = await centre(rec)
    client = UitdClient(uitd_config(server.port, window=6, announce=False, timeout=5.0))
    async with Running(client):
        subs = [client.submit(state(i)) for i in range(5)]
        await rec.wait(lambda: len(order) == 1 and (s := next(iter(server.sessions), None)) is not None
                       and s.waiting == 4)
        alarm = client.submit(fire())
        assert (await asyncio.wait_for(alarm.outcome(), 2)).ok  # handled while four states wait
        assert order == [False, True] and not any(s.done for s in subs)
        gate.set()
        results = [await s.outcome() for s in subs]
        assert all(o.ok for o in results)
    assert order == [False, True, False, False, False, False]


async def _raw_exchange(port: int, data: bytes, expect: int = 1, timeout: float = 3.0) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    framer = Framer()
    frames: list[bytes] = []

    async def read() -> None:
        while len(frames) < expect:
            chunk = await reader.read(4096)
            if not chunk:
                return
            frames.extend(f for f in framer.feed(chunk) if isinstance(f, bytes))

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        writer.close()
    return frames


async def test_bad_frames_are_denied_and_quarantined(vectors) -> None:
    rec = Recorder()
    server = await centre(rec)
    a1 = bytearray(vectors["A1_upload_component_fire"].data)
    a1[50] ^= 0x01  # one ADU byte flipped
    bad_command = bytearray(vectors["B1_upload_uitd_mains_fault"].data)
    bad_command[26] = 7
    bad_command[-3] = codec.checksum(bad_command[:-3])
    replies = await _raw_exchange(server.port, b"junk!" + bytes(a1) + bytes(bad_command), expect=2)
    await rec.wait(lambda: len([e for e in rec.events if isinstance(e, Quarantine)]) == 3)
    await server.stop()
    assert len(replies) == 2
    for reply in replies:  # deny: cmd 6, empty ADU, serial bytes echoed, addresses swapped (checklist 2)
        d = codec.decode(reply).frame.header
        assert d.command == Command.DENY and d.serial == 1 and d.source == CENTRE and d.destination == UITD
        assert len(reply) == 30
    quarantined = [e for e in rec.events if isinstance(e, Quarantine)]
    assert [q.code for q in quarantined] == ["garbage", "checksum", "command"]
    assert [q.denied for q in quarantined] == [False, True, True]
    assert quarantined[1].hex == bytes(a1).hex().upper()
    assert rec.frames == []  # nothing bad reached the handler


async def test_strict_session_denies_pitfalls(vectors) -> None:
    rec = Recorder()
    server = await centre(rec, mode=codec.Mode.STRICT)
    replies = await _raw_exchange(server.port, vectors["M1_real_capture_photoelectric_fire"].data)
    await server.stop()
    assert codec.decode(replies[0], "tolerant").frame.header.command == Command.DENY
    assert [e.code for e in rec.events if isinstance(e, Quarantine)] == ["version"]


async def test_tolerant_session_takes_the_real_capture(vectors) -> None:
    rec = Recorder()
    server = await centre(rec)
    m1 = vectors["M1_real_capture_photoelectric_fire"].data
    replies = await _raw_exchange(server.port, m1)
    await server.stop()
    reply = codec.decode(replies[0], "tolerant").frame.header
    assert reply.command == Command.CONFIRM and reply.serial == 20
    assert (reply.version_main, reply.version_user) == (0x10, 0x00)  # the peer's version echoed (pitfall 1)
    assert reply.destination == bytes.fromhex("2C312C320000")
    (got,) = rec.frames
    assert got.fire and {w.code for w in got.warnings} >= {"version", "text_padding", "clock_skew"}
    assert abs(got.received_at - time.time()) < 60  # receive time kept beside the device time


async def test_a_resent_frame_is_confirmed_again_but_handled_once(vectors) -> None:
    rec = Recorder()
    server = await centre(rec)
    a1 = vectors["A1_upload_component_fire"].data
    replies = await _raw_exchange(server.port, a1 + a1, expect=2)
    await server.stop()
    assert len(replies) == 2 and replies[0] == replies[1]
    assert len(rec.frames) == 1


async def test_heartbeat_when_idle() -> None:
    rec = Recorder()
    server = await centre(rec)
    async with Running(UitdClient(uitd_config(server.port, heartbeat=0.1))):
        await rec.wait(lambda: len([r for r in rec.frames if r.frame.is_heartbeat]) >= 3)
    await server.stop()


async def test_idle_timeout_closes_a_silent_connection() -> None:
    rec = Recorder()
    server = await centre(rec, idle_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(100), 3) == b""  # the centre hung up
    writer.close()
    await server.stop()
    assert any(isinstance(e, LinkFault) and "nothing received" in e.reason for e in rec.events)


async def test_device_allow_list() -> None:
    rec = Recorder()
    server = await centre(rec, allow_addresses=frozenset({address(1234)}))
    async with Running(UitdClient(uitd_config(server.port))) as client:
        sub = client.submit(state(1))
        # refused, denied and cut off; the UITD keeps trying (its upload stays queued)
        await rec.wait(lambda: server.stats.refused_address >= 2)
        assert not sub.done and rec.frames == []
    denied = [e for e in rec.events if isinstance(e, Quarantine)]
    assert denied and all("not allowed" in e.en and e.denied for e in denied)

    allowed = Recorder()
    server = await centre(allowed, allow_addresses=frozenset({UITD}))
    async with Running(UitdClient(uitd_config(server.port))) as client:
        assert (await asyncio.wait_for(client.send(state(1)), 5)).ok


async def test_ip_allow_list_and_connection_limits() -> None:
    rec = Recorder()
    server = await centre(rec, allow_ips=("10.0.0.0/8",))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(10), 3) == b""
    writer.close()
    await server.stop()
    assert server.stats.refused_ip == 1 and server.stats.accepted == 0

    server = await centre(rec, max_connections=1)
    first = await asyncio.open_connection("127.0.0.1", server.port)
    await asyncio.wait_for(_until(lambda: len(server.sessions) == 1), 3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(10), 3) == b""
    writer.close()
    first[1].close()
    await server.stop()
    assert server.stats.refused_limit == 1


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_rate_limit_denies_a_flood(vectors) -> None:
    rec = Recorder()
    server = await centre(rec, rate=0.5, burst=2)
    frames = []
    for serial in range(5):
        f = codec.decode(vectors["B1_upload_uitd_mains_fault"].data).frame
        h = Header(serial=serial, time=f.header.time, source=UITD, destination=CENTRE, command=2)
        frames.append(codec.encode(Frame(h, f.adu)))
    replies = await _raw_exchange(server.port, b"".join(frames), expect=5)
    await server.stop()
    commands = [codec.decode(r).frame.header.command for r in replies]
    assert sorted(commands) == [3, 3, 6, 6, 6] and len(rec.frames) == 2


async def test_nothing_lost_across_a_centre_restart_fire_first() -> None:
    rec = Recorder()
    server = await centre(rec)
    port = server.port
    client = UitdClient(uitd_config(port))
    async with Running(client):
        assert (await client.send(state(0))).ok
        await server.stop()  # the centre goes away
        subs = [client.submit(state(i), key=i) for i in range(1, 11)]
        subs.append(client.submit(fire(), key="fire"))
        await asyncio.wait_for(_until(lambda: client.session is None), 5)
        assert not any(s.done for s in subs)
        rec2 = Recorder()
        server = await centre(rec2, port=port)  # back on the same port
        results = [await asyncio.wait_for(s.outcome(), 10) for s in subs]
        assert all(o.ok for o in results)
    await server.stop()
    uploads = rec2.uploads()
    assert uploads[0].fire  # the fire alarm first after the outage
    assert [r.frame.adu.objects[0].component_address for r in uploads[1:]] == list(range(1, 11))  # in order
    assert client.connections >= 2


async def test_backup_centre_when_the_primary_is_down() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    rec = Recorder()
    backup = await centre(rec)
    events = Recorder()
    client = UitdClient(uitd_config(dead, backup.port), events)
    async with Running(client):
        assert (await asyncio.wait_for(client.send(fire()), 5)).ok
        assert client.endpoint == Endpoint("127.0.0.1", backup.port)
    await backup.stop()
    assert any(isinstance(e, LinkFault) and "connect to" in e.reason for e in events.events)


async def test_queries_and_answers() -> None:
    async def answer(r: Received) -> Reply:
        adu = r.frame.adu
        if r.frame.header.command == Command.REQUEST and isinstance(adu, Adu) and adu.type == 81:
            return respond(Adu(21, (UitdState(state=0b1001, time=TimeTag.now()),)))
        return DENY if r.frame.header.command == Command.REQUEST else CONFIRM

    uitd = Recorder(answer)
    rec = Recorder()
    server = await centre(rec)
    async with Running(UitdClient(uitd_config(server.port), uitd)) as client:
        await asyncio.wait_for(client.connected.wait(), 3)
        await rec.wait(lambda: server.session_for(UITD) is not None)
        session = server.session_for(UITD)
        outcome = await session.request(Adu(81, (ReadUitdState(),)))
        assert outcome.status == OutcomeStatus.RESPONDED
        assert outcome.reply.header.command == Command.RESPONSE and outcome.reply.adu.type == 21
        assert outcome.reply.adu.objects[0].state == 0b1001
        # a request the UITD cannot answer is denied (after the resends)
        denied = await session.request(Adu(85, (ReadUitdSoftwareVersion(),)))
        assert denied.status == OutcomeStatus.DENIED and denied.attempts == 4
        # a confirm is no answer to a request: it does not count as a response
        confirmed_only = Recorder(lambda r: CONFIRM)
        uitd.reply = confirmed_only.reply
        odd = await session.request(Adu(85, (ReadUitdSoftwareVersion(),)))
        assert odd.status == OutcomeStatus.FAILED and session.stats.unsolicited >= 4
    await server.stop()


async def test_a_reply_with_another_serial_confirms_nothing(vectors) -> None:
    # a fake centre that answers every upload with serial + 1
    async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = Framer()
        while chunk := await reader.read(4096):
            for f in framer.feed(chunk):
                h = codec.decode(f).frame.header
                wrong = Header(serial=(h.serial + 1) & 0xFFFF, time=h.time, source=CENTRE, destination=UITD,
                               command=3)
                writer.write(codec.encode(Frame(wrong)))

    srv = await asyncio.start_server(fake, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    session = Session(reader, writer, SessionConfig(role=Role.UITD, local_address=UITD, peer_address=CENTRE,
                                                    announce=False, timeout=0.1, resends=1))
    run = asyncio.create_task(session.run())
    outcome = await session.send(state(5))
    await asyncio.wait_for(run, 3)
    srv.close()
    assert outcome.status == OutcomeStatus.FAILED and session.stats.unsolicited >= 1


# ------------------------------------------------------------- pure parts

async def test_confirmed_prefix_is_the_cursor() -> None:
    p = ConfirmedPrefix(start=10)
    for k in (11, 12, 13, 14):
        p.add(k)
    assert p.done(12) == 10  # 11 still open
    assert p.done(11) == 12
    assert p.done(14) == 12
    assert p.done(13) == 14
    with pytest.raises(ValueError):
        p.add(14)


async def test_priorities_from_content() -> None:
    assert priority_of(fire()) == Priority.FIRE
    assert priority_of(Adu(21, (UitdState(state=0b11, time=TimeTag.now()),))) == Priority.FIRE
    assert priority_of(Adu(21, (UitdState(state=0b1001, time=TimeTag.now()),))) == Priority.ALARM
    assert priority_of(state(1)) == Priority.STATE
    assert priority_of(None) == Priority.ROUTINE


async def test_outbox_order_and_requeue() -> None:
    from firebus.plugins.gb26875.outbox import Submission

    box = Outbox(persistent=True)
    a, b, c = (box.put(Submission(state(i))) for i in range(3))
    f = box.put(Submission(fire()))
    assert box.pop() is f and box.pop() is a
    box.requeue(a)  # a dropped connection gives it back: before b again
    assert [box.pop(), box.pop(), box.pop()] == [a, b, c] and box.pop() is None


async def test_count_over_the_maximum_is_denied_even_when_tolerant(vectors) -> None:
    rec = Recorder()
    server = await centre(rec)
    b1 = codec.decode(vectors["B1_upload_uitd_mains_fault"].data).frame
    two = Frame(b1.header, Adu(21, b1.adu.objects * 2))  # type 21 allows one object (checklist item 7)
    head = bytearray(codec.encode(Frame(Header(serial=2, time=b1.header.time, source=UITD, destination=CENTRE,
                                               command=2)))[:24])
    body = bytes([24, 1, 0x20, 0x01])  # a type-24 object without its time tag (the dgiot ambiguity)
    frame2 = head + len(body).to_bytes(2, "little") + b"\x02" + body
    frame2 += bytes([codec.checksum(frame2)]) + b"##"
    replies = await _raw_exchange(server.port, codec.encode(two, "tolerant") + bytes(frame2), expect=2)
    commands = {codec.decode(r).frame.header.serial: codec.decode(r).frame.header.command for r in replies}
    assert commands == {1: Command.DENY, 2: Command.CONFIRM}  # the time-tag ambiguity is accepted
    assert [e.code for e in rec.events if isinstance(e, Quarantine)] == ["count_over_max"]
    (accepted,) = rec.frames
    assert [w.code for w in accepted.warnings] == ["time_tag_missing", "clock_skew"]  # 2012 header time
