"""The uplink and the centre listener inside a running core, against real TCP peers.

The peers are the plugin's own ``CentreServer`` / ``UitdClient`` over loopback (the
same classes ``firebus sim centre`` / ``sim uitd`` run), never mocks.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

import firebus.plugins.gb26875 as plugin
from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.plugins.gb26875.client import ClientConfig, Endpoint, UitdClient
from firebus.plugins.gb26875.model import (
    Adu,
    ComponentState,
    DutyCheck,
    ReadComponentState,
    ReadUitdState,
    SyncClock,
    SystemOperation,
    TimeTag,
    UitdOperation,
)
from firebus.plugins.gb26875.outbox import OutcomeStatus
from firebus.plugins.gb26875.server import CentreServer, ListenerConfig
from firebus.plugins.gb26875.session import CONFIRM, BaseHandler, Received, Reply, Role, Session, SessionConfig
from firebus.plugins.gb26875.simsite import component_address, description
from firebus.plugins.gb26875.uplink import DutyCheckRequested
from firebus.sdk import AlarmEvent, Context, PointSpec, Reading
from firebus.sdk.events import AlarmTransition
from firebus.sdk.vocab import ActorKind, AlarmCategory, Severity

from .conftest import run_cli

pytestmark = pytest.mark.anyio

UITD = 889
CENTRE = 88888


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder(BaseHandler):
    """The centre side: records every upload with its arrival time."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, Received]] = []
        self.changed = asyncio.Event()
        self.sessions: list[Session] = []

    async def on_frame(self, session: Session, received: Received) -> Reply:
        if session not in self.sessions:
            self.sessions.append(session)
        if received.frame.adu is not None:
            self.frames.append((time.monotonic(), received))
            self.changed.set()
        return CONFIRM

    def objects(self, adu_type: int) -> list[Any]:
        return [o for _, r in self.frames if getattr(r.frame.adu, "type", None) == adu_type for o in r.frame.adu.objects]

    async def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def centre_server(port: int, handler: Recorder) -> CentreServer:
    cfg = SessionConfig(role=Role.CENTRE, local_address=CENTRE.to_bytes(6, "little"))
    return CentreServer(ListenerConfig(host="127.0.0.1", port=port, session=cfg), handler)


def uplink_site(db: Path, port: int, extra: str = "") -> str:
    return f"""
storage: {{path: {db}, synchronous: NORMAL}}
units:
  - key: u
    buildings: [{{key: b, floors: [{{key: f, locations: [{{key: room, name: Room 101}}]}}]}}]
alarms: {{link_fault_after: 0}}
gb26875:
  uplink:
    address: {UITD}
    centre_address: {CENTRE}
    centres: [{{host: 127.0.0.1, port: {port}}}]
    timeout: 1
    resends: 1
    reconnect_max: 0.3
    connect_timeout: 1
{extra}"""


def fire(n: int) -> AlarmEvent:
    return AlarmEvent(alarm_id=f"a{n}", transition=AlarmTransition.NEW, category=AlarmCategory.FIRE,
                      severity=Severity.FIRE, rule="two_detector", device_id=f"dev{n}", value=True)


async def pump(core: Any) -> Any:
    """A real registry device with a running-state and an analog point (through ingest, as a driver's)."""
    device = await core.registry.resolve_device({"serial": "PUMP-1"}, driver="water.test", config_key="pump-1")
    await core.registry.ensure_points(device.id, [PointSpec(key="run", point_class="pump_state"),
                                                  PointSpec(key="p", point_class="pressure", unit="MPa")])
    return device


async def reading(core: Any, device: Any, n: int) -> None:
    await core.ingest.ingest(device, [Reading(point_key="run", value=bool(n % 2), ts=time.time() + n * 0.001)])


def core_for(text: str) -> Any:
    return running_core(load_text(text, "site.yaml"), extra_plugins={"gb26875": plugin}, autoload=False)


async def settled(core: Any, timeout: float = 10.0) -> None:
    up = plugin.uplink_for(core)
    with anyio.fail_after(timeout):
        while up.consumer.unacked or len(up.client.outbox):
            await anyio.sleep(0.02)


async def test_fire_alarm_reaches_the_centre_within_budget_and_is_acknowledged(tmp_path: Path) -> None:
    rec = Recorder()
    port = free_port()
    async with centre_server(port, rec), core_for(uplink_site(tmp_path / "a.db", port)) as core:
        up = plugin.uplink_for(core)
        await up.client.connected.wait()
        t0 = time.monotonic()
        core.bus.publish(fire(1))
        await rec.wait(lambda: rec.objects(2))
        latency = rec.frames[-1][0] - t0
        state = rec.objects(2)[0]
        assert state.state & 0b11 == 0b11  # fire alarm, normal operation
        assert rec.frames[-1][1].frame.header.source == UITD.to_bytes(6, "little")
        assert latency < 10.0, latency  # GB 26875.1: ≤ 10 s end to end; the link adds milliseconds
        print(f"journal → centre: {latency * 1000:.1f} ms")
        # an operator's acknowledgement is an operation record (type 4, bit 5)
        core.bus.publish(AlarmEvent(alarm_id="a1", transition=AlarmTransition.ACKNOWLEDGED,
                                    category=AlarmCategory.FIRE, severity=Severity.FIRE, rule="two_detector",
                                    device_id="dev1"), Context(actor=ActorKind.USER, actor_id="wang"))
        await rec.wait(lambda: rec.objects(4))
        assert isinstance(rec.objects(4)[0], SystemOperation) and rec.objects(4)[0].operation == 0b100000
        await settled(core)
        cursor, _ = up.consumer.acked_position()
        assert cursor >= max(e.seq for e in await core.journal.read(0, 100, types=["AlarmEvent"]))


async def test_an_alarm_reported_late_goes_up_with_the_time_it_happened(tmp_path: Path) -> None:
    """补报 (AlarmEvent.occurred_ts): the centre's record shows when the fire was, not when we heard."""
    rec = Recorder()
    port = free_port()
    async with centre_server(port, rec), core_for(uplink_site(tmp_path / "late.db", port)) as core:
        up = plugin.uplink_for(core)
        await up.client.connected.wait()
        happened = time.time() - 3 * 3600
        late = AlarmEvent(alarm_id="late1", transition=AlarmTransition.NEW, category=AlarmCategory.FIRE,
                          severity=Severity.FIRE, rule="two_detector", device_id="dev1", value=True,
                          occurred_ts=happened)
        core.bus.publish(late)
        core.bus.publish(msgspec.structs.replace(late, transition=AlarmTransition.CLEARED, ts=time.time()))
        await rec.wait(lambda: len(rec.objects(2)) >= 2)
        raised, cleared = rec.objects(2)[:2]
        assert raised.state & 0b11 == 0b11 and cleared.state & 0b10 == 0
        assert raised.time is not None and cleared.time is not None
        assert abs(raised.time.to_datetime().timestamp() - happened) < 1.5
        assert abs(cleared.time.to_datetime().timestamp() - time.time()) < 60


async def test_centre_outage_queues_then_delivers_in_order_fire_first(tmp_path: Path) -> None:
    rec = Recorder()
    port = free_port()
    async with core_for(uplink_site(tmp_path / "b.db", port)) as core:
        up = plugin.uplink_for(core)
        device = await pump(core)
        for n in range(6):
            await reading(core, device, n)
        core.bus.publish(fire(9))
        # the link fault is raised as a communication fault alarm of the uplink
        with anyio.fail_after(10):
            while not any(a.rule == "link" for a in core.alarms._active.values()):
                await anyio.sleep(0.05)
        assert up.link_up is False
        async with centre_server(port, rec):
            await rec.wait(lambda: len(rec.objects(2)) >= 7, timeout=15)
            await settled(core)
        states = rec.objects(2)
        assert states[0].state & 0b10  # the fire alarm went first
        runs = [s.state & 0b100000 != 0 for s in states[1:] if not s.state & 0b10]
        assert runs[:6] == [bool(n % 2) for n in range(6)]  # the backlog in order
        assert up.consumer.unacked == 0


async def test_restart_mid_queue_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    port = free_port()
    async with core_for(uplink_site(db, port)) as core:
        device = await pump(core)
        for n in range(5):
            await reading(core, device, n)
        core.bus.publish(fire(3))
        up = plugin.uplink_for(core)
        with anyio.fail_after(5):
            while up.consumer.unacked < 6:
                await anyio.sleep(0.02)
    rec = Recorder()
    async with centre_server(port, rec), core_for(uplink_site(db, port)) as core:
        await rec.wait(lambda: len(rec.objects(2)) >= 6, timeout=15)
        await settled(core)
        states = rec.objects(2)
        assert states[0].state & 0b10  # the queued fire alarm first after the restart
        assert sum(1 for s in states if not s.state & 0b10) == 5
    # a third start sends nothing again as new
    rec2 = Recorder()
    async with centre_server(port, rec2), core_for(uplink_site(db, port)) as core:
        up = plugin.uplink_for(core)
        await up.client.connected.wait()
        await up.consumer.caught_up.wait()
        await settled(core)
        assert rec2.objects(2) == []


async def test_centre_queries_duty_check_and_clock(tmp_path: Path) -> None:
    rec = Recorder()
    port = free_port()
    async with centre_server(port, rec) as server, core_for(uplink_site(tmp_path / "d.db", port)) as core:
        up = plugin.uplink_for(core)
        device = await pump(core)
        await reading(core, device, 1)
        await core.ingest.ingest(device, [Reading(point_key="p", value=0.35)])
        await rec.wait(lambda: rec.objects(2) and rec.objects(3))
        assert rec.objects(3)[0].analog_type == 5 and rec.objects(3)[0].raw == 3500  # 0.35 MPa = 350.0 kPa
        session = server.session_for(UITD.to_bytes(6, "little"))
        assert session is not None
        out = await session.request(Adu(81, (ReadUitdState(),)))
        assert out.status == OutcomeStatus.RESPONDED and out.reply is not None and out.reply.adu.type == 21
        comp = rec.objects(2)[0]

        out = await session.request(Adu(62, (ReadComponentState(system_type=comp.system_type,
                                                                system_address=comp.system_address,
                                                                component_address=comp.component_address),)))
        assert out.ok and out.reply.adu.objects[0] == comp
        assert (await session.control(Adu(90, (SyncClock(time=TimeTag.now()),)))).ok
        assert (await session.control(Adu(91, (DutyCheck(parameter=10),)))).ok
        with anyio.fail_after(5):
            while not (asked := await core.journal.read(0, 10, types=["DutyCheckRequested"])):
                await anyio.sleep(0.02)
        request = asked[0].data
        assert isinstance(request, DutyCheckRequested)
        # the prompt is an alarm on the board; the duty officer acknowledging it is the answer
        with anyio.fail_after(5):
            while not (prompt := [a for a in core.alarms._active.values() if a.rule == "gb26875.duty_check"]):
                await anyio.sleep(0.02)
        await core.alarms.acknowledge(prompt[0].id, "wang")
        await rec.wait(lambda: rec.objects(24))
        op = rec.objects(24)[0]
        assert isinstance(op, UitdOperation) and op.operation == 0b100000 and op.operator == 1
        with anyio.fail_after(5):  # answered: the prompt leaves the board
            while any(a.rule == "gb26875.duty_check" for a in core.alarms._active.values()):
                await anyio.sleep(0.02)
        assert not rec.objects(1) and not rec.objects(4)  # the prompt itself is not uploaded
        # the Python API answers too (a panel button would call it)
        assert (await session.control(Adu(91, (DutyCheck(parameter=10),)))).ok
        with anyio.fail_after(5):
            while len(asked := await core.journal.read(0, 10, types=["DutyCheckRequested"])) < 2:
                await anyio.sleep(0.02)
        up.answer_duty_check(asked[1].data.request_id, operator=2, by="li")
        await rec.wait(lambda: len(rec.objects(24)) == 2)
        assert rec.objects(24)[1].operator == 2


def gateway_site(db: Path, port: int, gw: bytes) -> str:
    return f"""
storage: {{path: {db}, synchronous: NORMAL}}
units:
  - key: u
    buildings: [{{key: b, floors: [{{key: f, locations: [{{key: panel-room, name: Panel room}}]}}]}}]
transports:
  - key: city
    type: gb26875.centre
    options: {{host: 127.0.0.1, port: {port}, address: {CENTRE}}}
devices:
  - key: panel-1
    driver: gb26875.gateway
    transport: city
    location: panel-room
    identifiers: {{gb26875: "{gw.hex().upper()}"}}
"""


async def test_centre_listener_turns_a_transmission_devices_fire_into_an_alarm(tmp_path: Path) -> None:
    port = free_port()
    gw = UITD.to_bytes(6, "little")
    async with core_for(gateway_site(tmp_path / "e.db", port, gw)) as core:
        session = SessionConfig(role=Role.UITD, local_address=gw, peer_address=CENTRE.to_bytes(6, "little"),
                                timeout=2, resends=1)
        client = UitdClient(ClientConfig(centres=(Endpoint("127.0.0.1", port),), session=session))
        task = asyncio.create_task(client.run())
        try:
            obj = ComponentState(system_type=1, system_address=1, component_type=42,
                                 component_address=component_address(1, 2), state=0b11,
                                 description=description("1号回路2号 光电感烟"), time=TimeTag.now())
            out = await asyncio.wait_for(client.send(Adu(2, (obj,))), 10)
            assert out.status == OutcomeStatus.CONFIRMED  # confirmed once durable in the core
            with anyio.fail_after(10):
                while not [a for a in core.alarms._active.values() if a.category == AlarmCategory.FIRE]:
                    await anyio.sleep(0.05)
            alarm = next(a for a in core.alarms._active.values() if a.category == AlarmCategory.FIRE)
            device = core.registry.devices[alarm.device_id] if alarm.device_id else None
            assert device is not None and device.config_key == "panel-1"
            assert core.registry.place(device.location_id).key == "panel-room"
        finally:
            client.stop()
            await task
        # the gateway's connection is gone: a fault of the gateway device
        with anyio.fail_after(10):
            while not [a for a in core.alarms._active.values()
                       if a.category == AlarmCategory.FAULT and a.device_id == device.id]:
                await anyio.sleep(0.05)
        # an address nobody configured is refused and counted
        stranger = (12345).to_bytes(6, "little")
        session = SessionConfig(role=Role.UITD, local_address=stranger, peer_address=CENTRE.to_bytes(6, "little"),
                                timeout=0.5, resends=0)
        client = UitdClient(ClientConfig(centres=(Endpoint("127.0.0.1", port),), session=session, reconnect_max=0.2))
        task = asyncio.create_task(client.run())
        try:
            sub = client.submit(Adu(2, (obj,)))
            with anyio.fail_after(10):
                while core.transports["city"].stats()["refused_unknown"] < 1:
                    await anyio.sleep(0.05)
            out = await asyncio.wait_for(sub.outcome(), 5)
            assert out.status == OutcomeStatus.DENIED  # denied, never taken into the core
            assert all(d.config_key == "panel-1" for d in core.registry.devices.values())
        finally:
            client.stop()
            await task


def test_site_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "gb26875:\n"
        "  uplink:\n"
        "    address: 889\n"
        "    centres:\n"
        "      - {host: 127.0.0.1, port: 99999}\n"
    )
    out = run_cli("check", str(site))
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "site.yaml:5" in text and "gb26875.uplink.centres[0]" in text, text
    assert "Traceback" not in text
    cases = {
        "gb26875:\n  uplink:\n    address: 889\n    centres: [{host: a, port: 1}]\n    sendd: [alarms]\n":
            ("site.yaml:5", "gb26875.uplink.sendd"),
        "gb26875:\n  uplink:\n    address: 'h:12'\n    centres: [{host: a, port: 1}]\n":
            ("site.yaml:3", "gb26875.uplink.address"),
        "gb26875:\n  uplink:\n    address: 1\n    centres: [{host: a, port: 1}]\n    send: [alarm]\n":
            ("site.yaml:5", "gb26875.uplink.send"),
        "devices:\n  - key: p\n    driver: gb26875.gateway\n    identifiers: {gb26875: '79'}\n":
            ("site.yaml:4", "devices[0].identifiers"),
    }
    from firebus.core.runtime import build_plugin_host, prepare

    for text, (line, field) in cases.items():  # the same check in-process (each CLI start costs ~3 s)
        loaded = load_text(text, "site.yaml")
        with pytest.raises(Exception) as err:
            prepare(loaded, build_plugin_host(loaded.site, extra_plugins={"gb26875": plugin}, autoload=False))
        assert f"{line}: {field}" in str(err.value), str(err.value)
