"""The test infrastructure itself: our own nats-server with JetStream and our own PostgreSQL."""

from __future__ import annotations


import psycopg
import pytest


def test_postgres_is_ours(pg_cluster, pg_dsn) -> None:
    with psycopg.connect(pg_dsn) as conn:
        port = conn.execute("SHOW port").fetchone()[0]
        data = conn.execute("SHOW data_directory").fetchone()[0]
        assert int(port) == pg_cluster.port
        assert data == str(pg_cluster.data)
        assert conn.execute("SELECT 1 + 1").fetchone()[0] == 2


@pytest.mark.anyio
async def test_jetstream_survives_a_restart(nats_server) -> None:
    import nats

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="T", subjects=["t.>"])
    ack = await js.publish("t.a", b"x", headers={"Nats-Msg-Id": "s:1"})
    dup = await js.publish("t.a", b"x", headers={"Nats-Msg-Id": "s:1"})
    assert ack.seq == 1 and dup.duplicate
    await nc.close()
    nats_server.stop()
    nats_server.start()
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().stream_info("T")
    assert info.state.messages == 1
    await nc.close()
