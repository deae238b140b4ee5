"""Nothing acknowledged is lost: SIGKILL the core mid-stream, restart, count every sequence number.

Real parts only: a real Mosquitto with persistence, a real paho publisher at
QoS 1, the core in its own process with its MQTT transport's manual
acknowledgement, killed with SIGKILL (no clean shutdown, no flush).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.waiting import wait

HERE = Path(__file__).parent
TOTAL = 3000


def stored(db: Path) -> tuple[int, int]:
    """(rows, distinct sequence numbers) stored so far."""
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(
                "SELECT count(*), count(DISTINCT r.value) FROM readings r JOIN points p ON p.id = r.point_id"
                " WHERE p.key = 'seq'"
            ).fetchone()
    except sqlite3.OperationalError:  # schema not created yet
        return 0, 0


def start_core(site: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
    return subprocess.Popen(
        [sys.executable, str(HERE / "noloss_core.py"), str(site)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
    )


def publish_all(port: int, done: threading.Event) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="noloss-publisher", protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for seq in range(TOTAL):
        infos.append(client.publish("seqtest/dev-1/up", f'{{"seq": {seq}, "ts": {1_800_000_000 + seq / 1000}}}', qos=1))
        if seq % 200 == 0:
            time.sleep(0.05)  # a steady stream, so the kills land mid-stream
    for info in infos:
        info.wait_for_publish(timeout=30)
    client.loop_stop()
    client.disconnect()
    done.set()


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        db = tmp_path / "fb.db"
        site = tmp_path / "site.yaml"
        site.write_text(
            f"storage: {{path: {db}}}\n"
            "transports:\n"
            f"  - key: mqtt\n    type: mqtt\n    options: {{port: {broker.port}, client_id: noloss-core, receive_maximum: 200}}\n"
            "devices:\n"
            "  - key: counter\n    driver: test.sequence\n    transport: mqtt\n    identifiers: {serial: dev-1}\n"
        )
        log = tmp_path / "core.log"
        procs = [start_core(site, log)]  # the live core is always procs[-1]
        try:
            wait(lambda: "core-started" in log.read_text() or procs[-1].poll() is not None, 30, "core start")
            assert procs[-1].poll() is None, log.read_text()
            done = threading.Event()
            publisher = threading.Thread(target=publish_all, args=(broker.port, done), daemon=True)
            publisher.start()
            kills = 0
            for fraction in (0.25, 0.6):
                wait(lambda: stored(db)[1] >= TOTAL * fraction, 60, f"{fraction:.0%} stored")
                procs[-1].send_signal(signal.SIGKILL)
                procs[-1].wait()
                kills += 1
                procs.append(start_core(site, log))
            assert procs[-1].poll() is None
            wait(done.is_set, 60, "publisher finished")
            try:
                wait(lambda: stored(db)[1] == TOTAL, 90, "every sequence number stored")
            except AssertionError as exc:
                with sqlite3.connect(db) as conn:
                    have = {int(v) for (v,) in conn.execute("SELECT value FROM readings")}
                missing = sorted(set(range(TOTAL)) - have)
                raise AssertionError(f"{exc}: {len(missing)} missing (first {missing[:10]}, last {missing[-5:]}), "
                                     f"core alive {procs[-1].poll() is None}; core log tail:\n"
                                     + log.read_text()[-4000:] + "\nbroker log tail:\n" + broker.log()[-3000:]) from None
            time.sleep(1.0)  # any redelivery still in flight lands now
            rows, distinct = stored(db)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        assert kills == 2
        assert distinct == TOTAL  # nothing lost
        assert rows == TOTAL  # redeliveries after the kills absorbed, not double-counted
        with sqlite3.connect(db) as conn:
            values = {v for (v,) in conn.execute("SELECT value FROM readings")}
        assert values == set(range(TOTAL))
