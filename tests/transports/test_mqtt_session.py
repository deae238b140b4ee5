"""The asyncio MQTT session and the hub's fast path against a real Mosquitto: backpressure, batched
acks, stale acks across a broker restart, QoS 2, both protocol versions, TLS, malformed frames."""

from __future__ import annotations

import asyncio
import fcntl
import struct
import subprocess
import termios
import time

import pytest
from firebus.core.transports.mqtt import InboundMessage, MqttOptions, MqttTransport
from firebus.core.transports.mqtt_client import MqttSession, SessionConfig
from firebus.sdk.testing.mosquitto import Mosquitto, make_test_certs
from firebus.sdk.testing.waiting import eventually as wait_for

from .conftest import RecordingContext

pytestmark = pytest.mark.anyio


async def publish_many(broker, items: list[tuple[str, bytes]], qos: int = 1, client_id: str = "test-pub",
                       version: int = 4) -> None:
    """Publish with our own session (fast enough for tens of thousands) and wait for every confirmation."""
    s = MqttSession(SessionConfig(host=broker.host, port=broker.port, client_id=client_id, version=version),
                    on_messages=lambda *a: None, on_link=lambda *a: None)
    s.start()
    try:
        await s.wait_connected(10)
        await asyncio.wait_for(asyncio.gather(*(s.publish(t, p, qos=qos) for t, p in items)), 60)
    finally:
        await s.stop()


def hub(broker, ctx, client_id="firebus-test", **kw) -> MqttTransport:
    return MqttTransport("mqtt", MqttOptions(host=broker.host, port=broker.port, client_id=client_id, **kw), ctx)


async def register(t: MqttTransport) -> None:
    """Create the persistent session(s) and their subscriptions, then go away."""
    await t.start()
    await t.wait_connected()
    await t.stop()


@pytest.mark.parametrize("protocol", ["v5", "v311"])
async def test_unacked_messages_held_stay_bounded_when_acks_are_withheld(mosquitto, ctx, protocol):
    held: list[InboundMessage] = []
    # v3.1.1: no Receive Maximum, the broker (max_inflight_messages 0) sends all; bound 2 × 50.
    # v5: the broker honours a window of 1000 at first; an explicit bound of 100 is below it.
    opts = dict(receive_maximum=50) if protocol == "v311" else dict(receive_maximum=1000, max_unacked=100)
    t = hub(mosquitto, ctx, protocol=protocol, **opts)
    t.subscribe_batch("bp/#", held.extend)
    await register(t)
    total = 1500
    await publish_many(mosquitto, [(f"bp/{i % 7}", b"%d" % i) for i in range(total)])
    t = hub(mosquitto, RecordingContext("bp"), protocol=protocol, **opts)
    t.subscribe_batch("bp/#", held.extend)
    await t.start()
    try:
        session = t._sessions["telemetry"]
        await wait_for(lambda: session.paused, what="reading paused at the bound")
        assert len(held) == session.held == session.max_held == 100
        seen: list[bytes] = []
        while len(seen) < total:
            await wait_for(lambda: held, what="more after acks")
            batch, held[:] = list(held), []
            assert session.held <= 100
            seen += [m.payload for m in batch]
            for m in batch:
                m.ack()
        assert sorted(int(p) for p in seen) == list(range(total))
        assert session.max_unacked_held <= 100
        assert session.stats()["paused_s"] > 0 and session.pauses >= 1
        await wait_for(lambda: session.held == 0, what="all acked")
        assert session.stale_acks == 0 and session.connects == 1, session.stats()
    finally:
        await t.stop()
    # every message was acked: a new connection of the same session gets nothing back
    again: list[InboundMessage] = []
    t = hub(mosquitto, RecordingContext("bp2"), protocol=protocol)
    t.subscribe_batch("bp/#", again.extend)
    await t.start()
    try:
        await t.wait_connected()
        await publish_many(mosquitto, [("bp/end", b"end")])
        await wait_for(lambda: again, what="the fresh message")
        assert [m.payload for m in again] == [b"end"]
    finally:
        await t.stop()


async def test_acks_of_one_loop_iteration_go_out_in_one_write(mosquitto, ctx):
    held: list[InboundMessage] = []
    t = hub(mosquitto, ctx, receive_maximum=500)
    t.subscribe_batch("ba/#", held.extend)
    await t.start()
    try:
        await t.wait_connected()
        await publish_many(mosquitto, [("ba/x", b"%d" % i) for i in range(300)])
        await wait_for(lambda: len(held) == 300, what="300 held")
        session = t._sessions["telemetry"]
        sock = session._transport
        writes: list[bytes] = []
        real_write = sock.write
        sock.write = lambda data: (writes.append(bytes(data)), real_write(data))[1]  # type: ignore[method-assign]
        for m in held:
            m.ack()
            m.ack()  # idempotent
        assert t.acked == 300 and writes == []  # queued, not yet written
        await wait_for(lambda: writes, what="the flush")
        assert len(writes) == 1 and len(writes[0]) == 300 * 4
        assert writes[0] == b"".join(b"\x40\x02" + m.packet_id.to_bytes(2, "big") for m in held)
    finally:
        await t.stop()


async def test_acks_from_before_a_broker_restart_are_dropped_and_the_redelivery_is_acked(mosquitto, ctx):
    held: list[InboundMessage] = []
    t = hub(mosquitto, ctx, keepalive=2, reconnect_min=1, reconnect_max=1)
    t.subscribe_batch("st/#", held.extend)
    await t.start()
    try:
        await t.wait_connected()
        await publish_many(mosquitto, [("st/x", b"%d" % i) for i in range(20)])
        await wait_for(lambda: len(held) == 20, what="first delivery")
        first, held[:] = list(held), []
        mosquitto.stop()
        await wait_for(lambda: not t.connected, what="disconnect noticed")
        mosquitto.start()
        await wait_for(lambda: len(held) == 20, timeout=30, what="redelivery after the restart")
        for m in first:
            m.ack()  # a dead connection's packet ids: must not be sent
        assert t.stale_acks == 20 and t.acked == 0
        assert all(m.dup for m in held) and sorted(m.payload for m in held) == sorted(m.payload for m in first)
        for m in held:
            m.ack()
        assert t.acked == 20
        assert t._sessions["telemetry"].held == 0  # stale acks still free their slots
    finally:
        await t.stop()


async def test_qos2_inbound_is_delivered_once_and_completed_after_ack(mosquitto, ctx):
    got: list[InboundMessage] = []
    t = hub(mosquitto, ctx, subscribe_qos=2)
    t.subscribe_batch("q2/#", got.extend)
    await t.start()
    try:
        await t.wait_connected()
        await publish_many(mosquitto, [("q2/a", b"once"), ("q2/b", b"twice")], qos=2, version=5)
        await wait_for(lambda: len(got) == 2, what="QoS 2 delivery")
        assert [m.qos for m in got] == [2, 2]
        got[0].ack()  # PUBREC → broker PUBREL → our PUBCOMP
        session = t._sessions["telemetry"]
        await wait_for(lambda: not session._qos2_received, what="PUBREL answered with PUBCOMP")
    finally:
        await t.stop()  # the second one was never acked
    again: list[InboundMessage] = []
    t = hub(mosquitto, RecordingContext("q2"), subscribe_qos=2)
    t.subscribe_batch("q2/#", again.extend)
    await t.start()
    try:
        await wait_for(lambda: again, what="the unacked QoS 2 message redelivered")
        await t.wait_connected()
        await publish_many(mosquitto, [("q2/end", b"end")], qos=2)
        await wait_for(lambda: len(again) >= 2, what="a fresh message after the redelivery")
        assert [m.payload for m in again] == [b"twice", b"end"]  # "once" completed: not back
        for m in again:
            m.ack()
    finally:
        await t.stop()


async def test_publish_qos2_and_qos0(mosquitto, ctx):
    got: list[InboundMessage] = []
    t = hub(mosquitto, ctx)
    listener = hub(mosquitto, RecordingContext("l"), client_id="firebus-listener", subscribe_qos=2)
    listener.subscribe_batch("out/#", got.extend)
    await t.start()
    await listener.start()
    try:
        await t.wait_connected()
        await listener.wait_connected()
        await t.publish("out/2", b"exactly once", qos=2)
        await t.publish("out/0", "fire and forget", qos=0)
        await wait_for(lambda: len(got) == 2, what="both delivered")
        assert {(m.topic, m.payload) for m in got} == {("out/2", b"exactly once"), ("out/0", b"fire and forget")}
    finally:
        await t.stop()
        await listener.stop()


def client_cert(certs, name="firebus-client"):
    key, csr, crt = certs / "client.key", certs / "client.csr", certs / "client.crt"
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key),
                    "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(certs / "ca.crt"), "-CAkey",
                    str(certs / "ca.key"), "-CAcreateserial", "-days", "2", "-out", str(crt)],
                   check=True, capture_output=True)
    return crt, key


async def test_tls_client_certificate_and_insecure_hostname(tmp_path):
    certs = tmp_path / "certs"
    ca, cert, key = make_test_certs(certs, host="10.9.9.9")  # not the address we dial
    ccert, ckey = client_cert(certs)
    broker = Mosquitto(tmp_path / "tls", tls=(ca, cert, key), extra_config="require_certificate true\n")
    broker.start()
    try:
        def tls_hub(name, **kw):
            ctx = RecordingContext(name)
            return ctx, MqttTransport(name, MqttOptions(host=broker.host, port=broker.port, client_id=f"fb-{name}",
                                                        tls=True, ca_file=str(ca), **kw), ctx)

        # hostname 127.0.0.1 is not in the certificate: refused unless tls_insecure
        ctx, strict = tls_hub("strict", cert_file=str(ccert), key_file=str(ckey))
        await strict.start()
        try:
            await wait_for(lambda: ctx.links, what="hostname mismatch reported")
            assert ctx.links[0][0] is False and "certificate" in ctx.links[0][1].lower()
        finally:
            await strict.stop()
        # no client certificate: the broker refuses the handshake
        ctx, anon = tls_hub("anon", tls_insecure=True)
        await anon.start()
        try:
            await wait_for(lambda: ctx.links, what="missing client certificate reported")
            assert not anon.connected
        finally:
            await anon.stop()
        got: list[InboundMessage] = []
        ctx, ok = tls_hub("ok", tls_insecure=True, cert_file=str(ccert), key_file=str(ckey))
        ok.subscribe_batch("tls/#", got.extend)
        await ok.start()
        try:
            await ok.wait_connected()
            await ok.publish("tls/x", b"over tls with a client certificate")
            await wait_for(lambda: got, what="message over mutual TLS")
            assert got[0].payload == b"over tls with a client certificate"
        finally:
            await ok.stop()
    finally:
        broker.stop()


async def test_tls_setup_errors_name_the_file(tmp_path, ctx):
    t = MqttTransport("bad", MqttOptions(tls=True, ca_file=str(tmp_path / "missing.pem")), ctx)
    with pytest.raises(Exception, match="missing.pem"):
        await t.start()


async def test_a_malformed_frame_drops_the_connection_and_is_counted():
    """A scripted broker (Mosquitto never sends bad frames): CONNACK, then a PUBLISH with QoS 3."""
    connections = 0
    served = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(1024)  # CONNECT
        writer.write(b"\x20\x03\x00\x00\x00")  # CONNACK v5, accepted
        writer.write(b"\x36\x05\x00\x01a\x00\x01")  # QoS 3
        await writer.drain()
        if connections >= 2:
            served.set()
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ctx = RecordingContext("bad-broker")
    t = MqttTransport("m", MqttOptions(port=port, client_id="fb-m", reconnect_min=1, reconnect_max=1), ctx)
    await t.start()
    try:
        await asyncio.wait_for(served.wait(), 20)
        s = t._sessions["telemetry"]
        await wait_for(lambda: s.protocol_errors >= 1, what="the bad frame counted")
        assert any(not up and "QoS 3" in reason for up, reason in ctx.links)
        assert s.received == 0
    finally:
        await t.stop()
        server.close()


def _readable(sock) -> int:
    """Bytes waiting in a socket's receive buffer (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _hold_loop_until_readable(sock, n: int, timeout: float = 20.0) -> None:
    """Block (the event loop, on purpose: it must not read meanwhile) until ``n`` bytes wait."""
    deadline = time.monotonic() + timeout
    while _readable(sock) < n:
        assert time.monotonic() < deadline, "the broker did not send the backlog"
        time.sleep(0.002)


async def test_bytes_read_ahead_of_the_handover_stay_bounded(mosquitto):
    """Mosquitto sends a v3.1.1 session everything queued; handed over in slices, the bytes not
    yet parsed must not pile up in memory: reading stops past 2 × max_packet_size."""
    total = 4000
    topic = "ra/x"
    body = b"x" * 90
    got: list[bytes] = []

    def on_messages(session: MqttSession, msgs: list[InboundMessage]) -> None:
        for m in msgs:
            got.append(m.payload)
            m.ack()  # at once: the held bound is never what stops reading here

    cfg = SessionConfig(host=mosquitto.host, port=mosquitto.port, client_id="ra-sub", version=4,
                        max_packet_size=2048, session_expiry=3600)
    s = MqttSession(cfg, on_messages=on_messages, on_link=lambda *a: None)
    s.subscribe([topic])
    s.start()
    await s.wait_connected(10)
    await s.stop()  # the persistent session is there; now queue a backlog for it
    await publish_many(mosquitto, [(topic, b"%06d" % i + body) for i in range(total)])
    s = MqttSession(cfg, on_messages=on_messages, on_link=lambda *a: None)
    s.subscribe([topic])
    s.start()
    try:
        await s.wait_connected(10)
        # Hold the event loop (not a sleep to wait on: a condition on the socket) until the broker
        # has put well over the bound into our socket, so the next read brings more than the
        # bound whatever the machine's timing: reading must then stop.
        _hold_loop_until_readable(s._transport.get_extra_info("socket"), 16 * 1024)  # type: ignore[union-attr]
        await wait_for(lambda: len(got) >= total, 30, "the backlog delivered")
        stats = s.stats()
        assert sorted(int(p[:6]) for p in got) == list(range(total))  # each once, none lost
        assert stats["read_pauses"] >= 1, stats
        # the bound (2 × 2048) plus at most one socket read (asyncio reads ≤ 256 KiB at a time)
        assert stats["max_read_ahead_bytes"] <= 2 * 2048 + 256 * 1024, stats
    finally:
        await s.stop()
