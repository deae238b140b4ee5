"""Alarm lane: its own session, never behind telemetry, never paused by telemetry backpressure."""

from __future__ import annotations

import asyncio
import time

import pytest
from firebus.core.transports.mqtt import InboundMessage, Lane, MqttOptions, MqttTransport
from firebus.core.transports.mqtt_client import MqttSession
from firebus.sdk.testing.waiting import eventually as wait_for

from .conftest import RecordingContext
from .test_mqtt_session import hub, publish_many, register

pytestmark = pytest.mark.anyio


async def test_an_alarm_queued_behind_20000_telemetry_messages_arrives_while_they_are_held(mosquitto, ctx):
    telemetry: list[InboundMessage] = []
    alarms: list[tuple[InboundMessage, int, int]] = []
    t = hub(mosquitto, ctx, receive_maximum=1000)
    t.subscribe_batch("site/+/t", telemetry.extend)
    t.subscribe_batch("site/+/alarm", lambda batch: None, lane=Lane.ALARM)
    await register(t)  # both sessions exist at the broker; we go away
    backlog = 20_000
    await publish_many(mosquitto, [(f"site/d{i % 500}/t", b'{"v":%d}' % i) for i in range(backlog)])
    await publish_many(mosquitto, [("site/d7/alarm", b'{"fire":true}')], client_id="test-pub-alarm")

    # The broker honours a window of 1000 until acks flow; the held bound (500) is below it.
    t = hub(mosquitto, RecordingContext("lanes"), receive_maximum=1000, max_unacked=500)
    tele_session: list[MqttSession] = []

    def on_alarm(batch: list[InboundMessage]) -> None:
        s = tele_session[0]
        alarms.extend((m, s.received, s.held) for m in batch)
        for m in batch:
            m.ack()

    t.subscribe_batch("site/+/t", telemetry.extend)  # never acked during the test: the backlog is held
    t.subscribe_batch("site/+/alarm", on_alarm, lane=Lane.ALARM)
    await t.start()
    tele_session.append(t._sessions[Lane.TELEMETRY])
    try:
        await wait_for(lambda: alarms, what="the alarm")
        m, tele_received, tele_held = alarms[0]
        assert m.lane is Lane.ALARM and m.payload == b'{"fire":true}'
        assert tele_received < backlog, "the alarm waited for the whole telemetry backlog"
        assert m.received - time.time() < 5
        await wait_for(lambda: tele_session[0].paused, what="telemetry paused at its bound")
        tele, alarm = t._sessions[Lane.TELEMETRY], t._sessions[Lane.ALARM]
        assert tele.held == tele.max_held == 500 and len(telemetry) == 500
        assert not alarm.paused and alarm.config.client_id == "firebus-test-alarm"
        # while telemetry is paused, a publish (e.g. a linkage command) is not held behind it
        await asyncio.wait_for(t.publish("cmd/valve", b"close"), 10)
        # and a new alarm still gets through at once
        await publish_many(mosquitto, [("site/d8/alarm", b'{"fire":true}')], client_id="test-pub-alarm")
        await wait_for(lambda: len(alarms) == 2, what="a live alarm while telemetry is paused")
        # release the backlog: everything arrives, bounded all the way
        seen = 0
        while seen < backlog:
            await wait_for(lambda: telemetry, what="telemetry after acks")
            batch, telemetry[:] = list(telemetry), []
            seen += len(batch)
            for x in batch:
                x.ack()
        assert tele.max_unacked_held <= 500
        stats = t.stats()
        assert stats["lanes"] == {"alarm": 2, "telemetry": backlog}
        assert stats["sessions"]["alarm"]["acked"] == 2
        assert stats["sessions"]["telemetry"]["paused_s"] > 0
    finally:
        await t.stop()


async def test_classify_moves_alarm_class_messages_to_the_alarm_lane(mosquitto, ctx):
    calls: list[tuple[Lane, list[bytes]]] = []

    def handler(batch: list[InboundMessage]) -> None:
        lanes = {m.lane for m in batch}
        assert len(lanes) == 1, "one lane per handler call"
        calls.append((lanes.pop(), [m.payload for m in batch]))
        for m in batch:
            m.ack()

    def peek(topic: str, payload: bytes) -> Lane | None:
        return Lane.ALARM if b'"alarm"' in payload else None

    t = hub(mosquitto, ctx)
    t.subscribe_batch("smoke/+/up", handler, classify=peek)
    await t.start()
    try:
        await t.wait_connected()
        msgs = [b'{"type":"heartbeat","n":%d}' % i if i % 10 else b'{"type":"alarm","n":%d}' % i for i in range(100)]
        await publish_many(mosquitto, [("smoke/861234/up", p) for p in msgs])
        await wait_for(lambda: sum(len(p) for _, p in calls) == 100, what="all messages")
        alarm = [p for lane, ps in calls if lane is Lane.ALARM for p in ps]
        tele = [p for lane, ps in calls if lane is Lane.TELEMETRY for p in ps]
        assert alarm == [m for m in msgs if b'"alarm"' in m]  # arrival order within the lane
        assert tele == [m for m in msgs if b'"alarm"' not in m]
        assert t.classified_alarm == 10 and t.stats()["lanes"] == {"alarm": 10, "telemetry": 90}
        assert Lane.ALARM not in t._sessions, "classify needs no second session"
    finally:
        await t.stop()


def fake_messages(session, items):
    out = []
    for i, (topic, payload) in enumerate(items):
        m = InboundMessage(topic, payload, 1, False, False, i + 1, None)
        m.received, m.lane, m._owner, m._gen, m._acked = time.time(), Lane.TELEMETRY, session, 0, False
        out.append(m)
    return out


class _Owner:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def _ack(self, m: InboundMessage) -> None:
        self.acked.append(m.packet_id)


def test_alarm_handlers_are_called_before_telemetry_of_the_same_read(ctx):
    """Unit test of the hand-over: one socket read's messages, alarm lane first, each lane in order."""
    order: list[tuple[str, list[bytes]]] = []
    t = MqttTransport("m", MqttOptions(client_id="u"), ctx)
    t.subscribe_batch("d/+/t", lambda b: order.append(("tele", [m.payload for m in b])))
    t.subscribe_batch("d/+/up", lambda b: order.append(("mixed", [m.payload for m in b])),
                      classify=lambda topic, p: Lane.ALARM if p.startswith(b"A") else Lane.TELEMETRY)
    t.subscribe_batch("d/+/broken", lambda b: order.append(("broken", [m.payload for m in b])),
                      classify=lambda topic, p: 1 / 0)
    owner = _Owner()
    msgs = fake_messages(owner, [("d/1/t", b"t1"), ("d/1/up", b"h1"), ("d/1/up", b"A1"), ("d/2/t", b"t2"),
                                 ("d/2/up", b"A2"), ("d/3/broken", b"?"), ("x/y", b"nobody")])
    t._route(Lane.TELEMETRY, msgs, grace_over=False)
    first_telemetry = next(i for i, (name, ps) in enumerate(order) if ps[0].startswith((b"t", b"h")))
    alarm_calls = [(name, ps) for name, ps in order[:first_telemetry]]
    assert alarm_calls == [("mixed", [b"A1", b"A2"]), ("broken", [b"?"])]  # a failing peek errs to alarm
    assert order[first_telemetry:] == [("tele", [b"t1", b"t2"]), ("mixed", [b"h1"])]
    assert t.classify_errors == 1 and len(t._parked) == 1  # "x/y" waits for a late subscriber
    assert owner.acked == []  # the hub acknowledged nothing by itself


def test_a_message_on_two_routes_is_acked_once_both_owners_ack(ctx):
    one: list[InboundMessage] = []
    two: list[InboundMessage] = []
    t = MqttTransport("m", MqttOptions(client_id="u"), ctx)
    t.subscribe_batch("a/#", one.extend)
    t.subscribe_batch("a/+", two.extend)
    owner = _Owner()
    t._route(Lane.TELEMETRY, fake_messages(owner, [("a/b", b"x")]), grace_over=False)
    (first,), (second,) = one, two
    first.ack()
    first.ack()
    assert owner.acked == []
    second.ack()
    assert owner.acked == [1]


async def test_one_link_fault_per_outage_with_both_sessions(mosquitto, ctx):
    t = hub(mosquitto, ctx, keepalive=2, reconnect_min=1, reconnect_max=1)
    t.subscribe_batch("lk/t", lambda b: [m.ack() for m in b])
    t.subscribe_batch("lk/alarm", lambda b: [m.ack() for m in b], lane=Lane.ALARM)
    await t.start()
    try:
        await t.wait_connected()
        assert set(t._sessions) == {Lane.TELEMETRY, Lane.ALARM} and t.connects == 2
        mosquitto.stop()
        await wait_for(lambda: ctx.links, what="link fault")
        await wait_for(lambda: not any(s.connected for s in t._sessions.values()), what="both sessions down")
        mosquitto.start()
        await t.wait_connected(30)
        await wait_for(lambda: len(ctx.links) == 2, what="link cleared")
        assert [up for up, _ in ctx.links] == [False, True]
    finally:
        await t.stop()
