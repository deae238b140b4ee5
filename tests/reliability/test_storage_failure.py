"""The database refuses writes (disk full) under load: nothing acknowledged that is not stored.

Fault injection that really fails SQLite writes: ``PRAGMA max_page_count`` set
to the file's current size on the core's writer connection, so the next commit
that needs a page fails with SQLITE_FULL ("database or disk is full") — what
a full disk gives.  (chmod on an open database changes nothing for the open
descriptor, and no tmpfs can be mounted here.)  A QoS 1 stream runs
throughout; an over-temperature reading arrives while the store is full.

Checked: while writes fail the core sends no PUBACK (the broker keeps the
messages); after the limit is lifted every confirmed message is stored exactly
once and ``PRAGMA integrity_check`` is ok; the alarm reaches the webhook during the
outage (released before it is durable) and is recorded once, with no second notification,
after it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import paho.mqtt.client as mqtt
import pytest

from firebus.core.runtime import running_core
from firebus.plugins import notify
from firebus.sdk.testing.mosquitto import Mosquitto

from .helpers import WebhookReceiver, notify_yaml
from .relcore import Plugin

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BASE_TS = 1_800_000_000.0


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


class Outcome:
    acked_during_failure = 0
    write_errors = 0
    notified_during_failure = False
    notified_after = False
    total = rows = distinct = 0
    integrity = ""
    error_text = ""
    alarms_recorded = outbox_sent = new_notifications = -1


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await anyio.sleep(0.05)


async def disk_full(tmp_path: Path) -> Outcome:
    out = Outcome()
    receiver = WebhookReceiver()
    db = tmp_path / "fb.db"
    try:
        with Mosquitto(tmp_path / "broker") as broker:
            devices = "".join(
                f"  - {{key: dev{i}, driver: rel.temp, transport: mqtt, identifiers: {{serial: dev{i}}}}}\n"
                for i in range(5)
            )
            site = (
                f"storage: {{path: '{db}'}}\n"
                "plugins: {allow: [notify]}\n"
                "transports:\n"
                f"  - {{key: mqtt, type: mqtt, options: {{port: {broker.port}, client_id: full-core}}}}\n"
                "devices:\n" + devices + notify_yaml(receiver.url, "electrical_alarm")
            )
            async with running_core(site, extra_plugins={"rel": Plugin()}) as core:
                transport = core.transports["mqtt"]
                await transport.wait_connected(20)
                service = notify.service_for(core)
                assert service is not None
                with anyio.fail_after(20):
                    await service.wait_ready()
                pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="full-pub", protocol=mqtt.MQTTv311)
                pub.connect("127.0.0.1", broker.port)
                pub.loop_start()
                infos = []
                seq = 0
                stop = threading.Event()

                def stream() -> None:
                    nonlocal seq
                    while not stop.is_set():
                        payload = json.dumps({"seq": seq, "v": 20.0 + seq % 5, "ts": BASE_TS + seq / 100})
                        infos.append(pub.publish(f"rel/dev{1 + seq % 4}/t", payload, qos=1))
                        seq += 1
                        time.sleep(0.01)

                thread = threading.Thread(target=stream, daemon=True)
                thread.start()
                await until(lambda: transport.acked >= 100, 20, "the stream flowing")

                # Fault injection on the core's own writer connection (SQLITE_FULL from max_page_count).
                (pages,) = await core.storage.fetchone("PRAGMA page_count")
                await core.storage.on_writer(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
                await until(lambda: core.storage.write_errors > 0, 30, "commits failing (SQLITE_FULL)")
                acked = transport.acked
                hot = pub.publish("rel/dev0/t", json.dumps({"seq": -1, "v": 95.0, "ts": time.time()}), qos=1)
                await anyio.sleep(5)
                out.acked_during_failure = transport.acked - acked
                out.write_errors = core.storage.write_errors
                out.notified_during_failure = bool(receiver.new_alarms())

                await core.storage.on_writer(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))  # space again
                await until(lambda: transport.acked > acked + 50, 60, "acks again after the store recovered")
                stop.set()
                thread.join(10)
                for info in [*infos, hot]:
                    info.wait_for_publish(30)
                out.total = seq
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    row = await core.storage.fetchone("SELECT count(*) FROM readings r JOIN points p ON p.id = r.point_id "
                                                      "JOIN devices d ON d.id = p.device_id WHERE d.config_key != 'dev0'")
                    if row[0] >= seq:
                        break
                    await anyio.sleep(0.1)
                await until(lambda: bool(receiver.new_alarms()), 30, "the over-temperature alarm notified")
                out.notified_after = True

                async def recorded() -> bool:
                    rows = await core.storage.fetchall(
                        "SELECT status FROM notify_outbox WHERE kind = 'new' AND alarm_id IN "
                        "(SELECT id FROM alarms WHERE category = 'electrical_alarm')")
                    return bool(rows) and all(r[0] == "sent" for r in rows)

                deadline = time.monotonic() + 30
                while not await recorded() and time.monotonic() < deadline:
                    await anyio.sleep(0.1)
                await core.storage.barrier()
                out.alarms_recorded = (await core.storage.fetchone(
                    "SELECT count(*) FROM alarm_history h JOIN alarms a ON a.id = h.alarm_id "
                    "WHERE a.category = 'electrical_alarm' AND h.transition = 'new'"))[0]
                out.outbox_sent = (await core.storage.fetchone(
                    "SELECT count(*) FROM notify_outbox WHERE kind = 'new' AND status = 'sent'"))[0]
                out.new_notifications = len(receiver.new_alarms())
                pub.loop_stop()
                pub.disconnect()
        with sqlite3.connect(db) as conn:
            out.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            out.rows, out.distinct = conn.execute(
                "SELECT count(*), count(DISTINCT r.ts) FROM readings r JOIN points p ON p.id = r.point_id "
                "JOIN devices d ON d.id = p.device_id WHERE d.config_key != 'dev0'").fetchone()
    finally:
        receiver.close()
    return out


@pytest.fixture(scope="module")
async def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return await disk_full(tmp_path_factory.mktemp("full"))


async def test_no_ack_while_the_store_refuses_writes(outcome: Outcome) -> None:
    assert outcome.write_errors > 0  # the fault was real: commits failed
    assert outcome.acked_during_failure == 0


async def test_after_recovery_every_message_stored_once_and_the_database_is_consistent(outcome: Outcome) -> None:
    assert outcome.integrity == "ok"
    assert outcome.distinct == outcome.total and outcome.rows == outcome.total, (outcome.rows, outcome.distinct, outcome.total)
    assert outcome.notified_after


async def test_alarm_notified_while_the_store_refuses_writes(outcome: Outcome) -> None:
    assert outcome.notified_during_failure


async def test_alarm_told_during_the_outage_is_recorded_once_and_not_told_twice(outcome: Outcome) -> None:
    assert outcome.alarms_recorded == 1  # the alarm and its NEW transition are on disk after recovery
    assert outcome.outbox_sent >= 1  # the message sent during the outage is in the outbox, as sent
    assert outcome.new_notifications == 1  # and the usual path did not send it again
