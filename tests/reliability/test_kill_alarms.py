"""SIGKILL the core repeatedly in an alarm storm: no acknowledged reading lost, no alarm lost.

tests/core/test_no_loss.py proves readings survive two kills.  Here every
reading is also an alarm transition: ten temperature points alternate 20 °C /
90 °C, so each 90 °C reading must raise a NEW alarm (threshold 85 °C) and each
20 °C reading clear it.  The core is killed with SIGKILL four times while this
runs.  Afterwards, per point:

* every sequence number the publisher sent is stored exactly once;
* the number of alarms equals the number of 90 °C readings stored — an alarm
  whose reading was acknowledged must exist even if the kill came between the
  reading's commit and the alarm's;
* the alarm state matches the last reading (active iff it was 90 °C), and no
  point has two active alarms.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firebus.sdk.testing.mosquitto import Mosquitto

from .helpers import CoreProcess, wait

DEVICES = 10
TOTAL = 2000
BASE_TS = 1_800_000_000.0


def value(seq: int) -> float:
    # per device: 20, 90, 20, 90 … (seq // DEVICES is the device's own counter)
    return 90.0 if (seq // DEVICES) % 2 else 20.0


def publish(port: int, done: threading.Event, errors: list[BaseException]) -> None:
    try:
        _publish(port)
    except BaseException as exc:  # reported by the test, not lost in a thread
        errors.append(exc)
    finally:
        done.set()


def _publish(port: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rel-pub", protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for seq in range(TOTAL):
        payload = json.dumps({"seq": seq, "v": value(seq), "ts": BASE_TS + seq / 100})
        infos.append(client.publish(f"rel/dev{seq % DEVICES}/t", payload, qos=1))
        if seq % 50 == 0:
            threading.Event().wait(0.03)  # a steady stream, so kills land mid-storm
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


class Storm:
    """What one storm left in the database, per temperature point."""

    def __init__(self, db: Path, log: Path | None = None) -> None:
        self.db = db
        self.log = log
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            self.points = dict(conn.execute(
                "SELECT p.id, d.config_key FROM points p JOIN devices d ON d.id = p.device_id WHERE p.key = 't'"
            ).fetchall())
            self.readings = conn.execute("SELECT point_id, ts, value FROM readings ORDER BY point_id, ts").fetchall()
            alarms = conn.execute("SELECT point_id, active FROM alarms WHERE category = 'electrical_alarm'").fetchall()
            # hot readings the core took as history, not the present: committed after a newer one
            late_hot = conn.execute(
                "SELECT subject, COUNT(*) FROM journal WHERE type = 'StateChanged' AND late AND value > 85 "
                "GROUP BY subject").fetchall()
        self.late_hot: dict[str, int] = dict(late_hot)
        self.hot: dict[str, int] = {}
        self.last: dict[str, float] = {}
        for point_id, _, v in self.readings:
            self.hot[point_id] = self.hot.get(point_id, 0) + (v > 85)
            self.last[point_id] = v
        self.raised: dict[str, int] = {}
        self.active: dict[str, int] = {}
        for point_id, is_active in alarms:
            self.raised[point_id] = self.raised.get(point_id, 0) + 1
            self.active[point_id] = self.active.get(point_id, 0) + is_active

    def explain(self, key: str) -> str:
        """What the journal and the core's log show for one device (for a failure's message):
        its readings in commit order with the publisher's seq, late flags and alarm entries."""
        point_id = next(p for p, k in self.points.items() if k == key)
        base_ms = int(BASE_TS * 1000)
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT seq, vts, value, late FROM journal WHERE type = 'StateChanged' AND subject = ? ORDER BY seq",
                (point_id,)).fetchall()
            history = conn.execute(
                "SELECT h.ts, h.transition FROM alarm_history h JOIN alarms a ON a.id = h.alarm_id "
                "WHERE a.point_id = ? ORDER BY h.ts", (point_id,)).fetchall()
        out_of_order = [(s, (v - base_ms) // 10) for (s, v, _, _), (_, prev, _, _) in zip(rows[1:], rows) if v < prev]
        readings = " ".join(f"{(v - base_ms) // 10}{'L' if late else ''}={val:g}" for _, v, val, late in rows)
        log = self.log.read_text()[-3000:] if self.log is not None and self.log.exists() else ""
        return (f"\n{key}: {len(rows)} readings in commit order (publisher seq, L = late): {readings}"
                f"\ncommitted out of the publisher's order: {out_of_order}"
                f"\nalarm transitions: {len(history)}, {[t for _, t in history][-12:]}"
                f"\ncore log (tail): {log}")


def storm(tmp_path: Path, kills: tuple[float, ...] = (0.15, 0.35, 0.55, 0.75)) -> Storm:
    with Mosquitto(tmp_path / "broker") as broker:
        db = tmp_path / "fb.db"
        site = tmp_path / "site.yaml"
        devices = "".join(
            f"  - {{key: dev{i}, driver: rel.temp, transport: mqtt, identifiers: {{serial: dev{i}}}}}\n"
            for i in range(DEVICES)
        )
        site.write_text(
            f"storage: {{path: '{db}'}}\n"
            "alarms: {escalation: {}}\n"
            "transports:\n"
            f"  - {{key: mqtt, type: mqtt, options: {{port: {broker.port}, client_id: rel-core, receive_maximum: 100}}}}\n"
            "devices:\n" + devices
        )
        core = CoreProcess(site, tmp_path / "core.log")
        try:
            core.start()
            done, errors = threading.Event(), []
            threading.Thread(target=publish, args=(broker.port, done, errors), daemon=True).start()
            for fraction in kills:
                wait(lambda: stored(db) >= TOTAL * fraction, 90, f"{fraction:.0%} stored")
                core.kill()
                core.start()
            wait(done.is_set, 90, "publisher finished")
            assert not errors, f"publisher failed: {errors!r}"
            try:
                wait(lambda: stored(db) >= TOTAL, 45, "every reading stored")
            except AssertionError:
                pass  # a lost reading is reported by its own test, not as a hang of this fixture
            core.settle(db)
        finally:
            core.stop()
        assert core.kills == len(kills)
    return Storm(db, tmp_path / "core.log")


@pytest.fixture(scope="module")
def storm_result(tmp_path_factory: pytest.TempPathFactory) -> Storm:
    """One storm (four kills) shared by the checks below."""
    return storm(tmp_path_factory.mktemp("storm"))


@pytest.mark.slow
def test_sigkill_in_an_alarm_storm_stores_every_acknowledged_reading_exactly_once(storm_result: Storm) -> None:
    s = storm_result
    base_ms = int(BASE_TS * 1000)
    seqs = [(ts - base_ms) // 10 for _, ts, _ in s.readings]  # ts = BASE + seq·10 ms
    missing = sorted(set(range(TOTAL)) - set(seqs))
    explained = "".join(s.explain(f"dev{d}") for d in sorted({m % DEVICES for m in missing}))
    assert not missing, f"acknowledged but never stored: seq {missing}{explained}"
    assert len(seqs) == TOTAL  # nothing counted twice


@pytest.mark.slow
def test_sigkill_in_an_alarm_storm_alarm_state_follows_the_last_reading(storm_result: Storm) -> None:
    s = storm_result
    assert len(s.readings) >= TOTAL * 0.99  # the storm ran (a lost reading is the test above)
    for point_id, key in s.points.items():
        assert s.active.get(point_id, 0) == (1 if s.last[point_id] > 85 else 0), f"{key}: alarm state ≠ last reading"


@pytest.mark.slow
def test_sigkill_in_an_alarm_storm_loses_no_alarm_of_an_acknowledged_reading(storm_result: Storm) -> None:
    s = storm_result
    # Every hot reading raised its alarm.  One committed after a newer reading of its point (a
    # broker's redelivery order after a kill) is told late (补报, docs/alarms.md); the split is
    # printed when it fails.
    short = {s.points[p]: (s.hot[p], s.late_hot.get(p, 0), s.raised.get(p, 0))
             for p in s.points if s.raised.get(p, 0) < s.hot[p]}
    assert not short, (f"(readings above 85 °C, of them committed late, alarms raised) per device: {short}"
                       f"{''.join(map(s.explain, short))}")


@pytest.mark.slow
def test_sigkill_in_an_alarm_storm_raises_no_phantom_alarm_from_redelivered_readings(storm_result: Storm) -> None:
    s = storm_result
    extra = {s.points[p]: (s.hot[p], s.raised.get(p, 0)) for p in s.points if s.raised.get(p, 0) > s.hot[p]}
    assert not extra, f"(readings above 85 °C, alarms raised) per device: {extra}"


@pytest.mark.slow
def test_readings_handed_over_out_of_order_across_a_kill_raise_one_late_alarm_per_hot_reading(
    tmp_path: Path,
) -> None:
    """What the storm above meets only by chance, on purpose: a gateway hands over a cable's
    newest reading (20 °C) first, then its buffer in time order (20 / 90 °C alternating);
    the core is SIGKILLed half-way and the gateway, not sure what arrived, sends the first
    half again.  Each 90 °C reading is one episode: one late alarm each, none twice, the
    present untouched."""
    buffered = 60  # readings 0 … 59 in the buffer: 30 hot
    with Mosquitto(tmp_path / "broker") as broker:
        db = tmp_path / "fb.db"
        site = tmp_path / "site.yaml"
        site.write_text(
            f"storage: {{path: '{db}'}}\nalarms: {{escalation: {{}}}}\n"
            f"transports:\n  - {{key: mqtt, type: mqtt, options: {{port: {broker.port}, client_id: rel-core}}}}\n"
            "devices:\n  - {key: gw0, driver: rel.temp, transport: mqtt, identifiers: {serial: gw0}}\n"
        )
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rel-gw", protocol=mqtt.MQTTv311)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()

        def send(n: int) -> None:
            payload = json.dumps({"seq": n, "v": value(n * DEVICES), "ts": BASE_TS + n})
            pub.publish("rel/gw0/t", payload, qos=1).wait_for_publish(timeout=30)

        core = CoreProcess(site, tmp_path / "core.log")
        try:
            core.start()
            send(buffered)  # the present: 20 °C
            wait(lambda: stored(db) >= 1, 30, "the newest reading stored")
            for n in range(buffered // 2):
                send(n)
            wait(lambda: stored(db) >= 1 + buffered // 3, 30, "part of the buffer stored")
            core.kill()
            core.start()
            for n in range(buffered):  # the first half again, then the rest
                send(n)
            wait(lambda: stored(db) >= 1 + buffered, 60, "the whole buffer stored")
            core.settle(db)
        finally:
            core.stop()
            pub.loop_stop()
            pub.disconnect()
    with sqlite3.connect(db) as conn:
        alarms = conn.execute(
            "SELECT json_extract(data, '$.start_ts'), active, json_extract(data, '$.late') FROM alarms"
            " WHERE category = 'electrical_alarm' ORDER BY 1").fetchall()
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert readings == buffered + 1
    hot = [BASE_TS + n for n in range(buffered) if value(n * DEVICES) > 85]
    assert [a[0] for a in alarms] == pytest.approx(hot), "one late alarm per hot reading, at its own time"
    assert all(not a[1] and a[2] for a in alarms), "late alarms are cleared at once; the present is 20 °C"
