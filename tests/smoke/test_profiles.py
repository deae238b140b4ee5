"""Payload profiles as data: the shipped vendor formats decode as documented, bad input names its field."""

from __future__ import annotations

import json

import firebus.plugins.smoke as smoke
import pytest
from firebus.core.sim.smoke import FleetConfig, ScriptedEvent, timeline
from firebus.sdk.jsonmap import ProfileError, decode_message, encode_command, parse_profile

PROFILES = smoke.shipped_profiles()


def values(report) -> dict:
    return {r.point_key: (r.value if r.fault is None else ("fault", r.fault)) for r in report.readings}


def test_shipped_profiles_become_driver_types() -> None:
    assert {"generic", "nb_carrier", "zigbee2mqtt"} <= set(PROFILES)
    assert {d.type_key for d in smoke.DRIVERS} >= {"smoke.generic", "smoke.nb_carrier", "smoke.zigbee2mqtt"}
    for profile in PROFILES.values():
        assert profile.source, f"{profile.name}: say where the format comes from"
        classes = {s.point_class for s in profile.point_specs()}
        assert "smoke" in classes


def test_generic_profile_decodes_every_simulator_message_to_the_simulated_state() -> None:
    cfg = FleetConfig(devices=4, seed=3, heartbeat_s=10, tamper_rate=20, fault_rate=20, alarm_duration=15,
                      events=[ScriptedEvent(at=5, device=1, event="alarm", duration=20),
                              ScriptedEvent(at=7, device=2, event="test")])
    msgs = timeline(cfg, 200)
    assert len(msgs) > 50
    for m in msgs:
        report = decode_message(PROFILES["generic"], m.topic, m.encode())
        got = values(report)
        assert report.identifiers == {"imei": m.payload["imei"]}
        for key in ("smoke", "fault", "tamper", "low_battery"):
            assert got[key] is m.payload["state"][key]
        assert got["self_test"] is (m.payload["event"] == "test")
        assert got["battery"] == m.payload["battery"] and got["seq"] == m.payload["seq"]
        assert got["heartbeat_interval"] == m.payload["heartbeat_s"]
        assert all(r.ts == m.payload["ts"] for r in report.readings)


def carrier(*categories: int, **data) -> bytes:
    body = {"type": "EVENT", "publishTime": 1_800_000_000_000,
            "data": {"physicalNumber": "861234567890123", "sensorCode": "S1",
                     "currentStatus": [{"category": c, "name": "x"} for c in categories], **data}}
    return json.dumps(body, ensure_ascii=False).encode()


def test_carrier_status_categories() -> None:
    p = PROFILES["nb_carrier"]
    fire = decode_message(p, "nb-carrier/smoke/x", carrier(1))
    assert fire.identifiers == {"imei": "861234567890123"}
    assert values(fire) == {"smoke": True, "fault": False, "shielded": False, "sensor_code": "S1"}
    assert fire.readings[0].ts == 1_800_000_000.0  # publishTime in ms
    assert values(decode_message(p, "nb-carrier/smoke/x", carrier(2, 3))) == {
        "smoke": False, "fault": True, "shielded": True, "sensor_code": "S1"}
    assert values(decode_message(p, "nb-carrier/smoke/x", carrier(5)))["smoke"] is False
    with pytest.raises(ValueError, match="no device identity"):
        decode_message(p, "nb-carrier/smoke/x", json.dumps({"data": {"sensorCode": "S1"}}).encode())


def test_zigbee2mqtt_identity_from_topic_and_mute_command() -> None:
    p = PROFILES["zigbee2mqtt"]
    topic = "zigbee2mqtt/smoke/0x00124b0012345678"
    report = decode_message(p, topic, json.dumps(
        {"smoke": False, "tamper": True, "battery": 15, "battery_state": "low", "silence": False,
         "fault_alarm": False, "linkquality": 96}).encode())
    assert report.identifiers == {"zigbee": "0x00124b0012345678"}
    got = values(report)
    assert got["tamper"] is True and got["low_battery"] is True and got["mute"] is False
    odd = decode_message(p, topic, json.dumps({"smoke": False, "battery_state": "empty"}).encode())
    assert values(odd)["low_battery"] == ("fault", "unknown state 'empty'")
    with pytest.raises(ValueError, match="topic level 2"):
        decode_message(p, "zigbee2mqtt/smoke/kitchen", b'{"smoke": true}')
    topic_out, payload, qos = encode_command(p, report.identifiers, "mute", True)
    assert (topic_out, json.loads(payload), qos) == (topic + "/set", {"silence": True}, 1)


def test_out_of_range_value_is_a_faulty_reading_not_a_lost_message() -> None:
    p = PROFILES["generic"]
    msg = {"imei": "861234567890123", "state": {"smoke": True}, "battery": 250}
    got = values(decode_message(p, "firebus/smoke/861234567890123/up", json.dumps(msg).encode()))
    assert got["smoke"] is True
    assert got["battery"][0] == "fault" and "out of range" in got["battery"][1]


def test_nothing_mappable_is_malformed() -> None:
    p = parse_profile("name: t\ntopics: [a/+]\nidentity: [{namespace: serial, topic_level: 1}]\n"
                      "points: {smoke: {path: s, type: bool}}\n", "t.yaml")
    with pytest.raises(ValueError, match="nothing mappable"):
        decode_message(p, "a/S1", b'{"other": 1}')


@pytest.mark.parametrize("text, field", [
    ("name: t\ntopics: []\nidentity: [{namespace: s, path: x}]\npoints: {a: {path: a}}\n", "topics"),
    ("name: t\ntopics: [a]\nidentity: [{namespace: s}]\npoints: {a: {path: a}}\n", "exactly one of path"),
    ("name: t\ntopics: [a]\nidentity: [{namespace: s, path: x}]\npoints: {a: {path: 'a..[x'}}\n", "bad path"),
    ("name: t\ntopics: [a]\nidentity: [{namespace: s, path: x}]\npoints: {a: {path: a, typo: 1}}\n", "typo"),
])
def test_bad_profiles_are_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(ProfileError, match="bad.yaml") as err:
        parse_profile(text, "bad.yaml")
    assert field in str(err.value)


def chirpstack(event: str, dev_eui: str = "24e124538b223213", **obj) -> bytes:
    body = {"deduplicationId": "3c8d…", "time": "2026-11-23T12:00:00Z",
            "deviceInfo": {"tenantName": "t", "applicationName": "smoke", "devEui": dev_eui},
            "fCnt": 10, "fPort": 85, "data": "Ih5kABxA",
            "object": {"version": 2, "protocol": 2, "type": "smoke sensor", "event": event, "battery": 100,
                       "concentration": 0, "temperature": 28, **obj},
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -57, "snr": 9.5}]}
    return json.dumps(body).encode()


def test_milesight_gs524n_events_through_chirpstack() -> None:
    p = PROFILES["milesight_gs524n"]
    topic = "application/0b7d1b56-2c5b-4a4b-9a0e-2a3f0c3f6a10/device/24e124538b223213/event/up"
    alarm = decode_message(p, topic, chirpstack("alarm", concentration=12))
    assert alarm.identifiers == {"deveui": "24e124538b223213"}
    got = values(alarm)
    assert got["smoke"] is True and got["mute"] is False and got["smoke_density"] == 12
    assert "low_battery" not in got and "tamper" not in got  # an alarm event says nothing about those
    assert got["rssi"] == -57 and got["snr"] == 9.5 and got["ambient_temperature"] == 28
    silent = values(decode_message(p, topic, chirpstack("silent")))
    assert silent["mute"] is True and "smoke" not in silent  # silenced, not over
    normal = values(decode_message(p, topic, chirpstack("normal")))
    assert {k: normal[k] for k in ("smoke", "mute", "low_battery", "fault", "tamper")} == dict.fromkeys(
        ("smoke", "mute", "low_battery", "fault", "tamper"), False)
    assert values(decode_message(p, topic, chirpstack("removed")))["tamper"] is True
    test = values(decode_message(p, topic, chirpstack("testing alarm with low battery")))
    assert test["self_test"] is True and test["low_battery"] is True and "smoke" not in test
    # Another device type of the same application is not ours (and not malformed).
    gas = json.loads(chirpstack("normal"))
    gas["object"] = {"gas_status": "normal"}
    assert decode_message(p, topic, json.dumps(gas).encode()) is None
    with pytest.raises(ValueError, match="deveui"):
        decode_message(p, topic, chirpstack("alarm", ).replace(b"24e124538b223213", b"not-an-eui"))
