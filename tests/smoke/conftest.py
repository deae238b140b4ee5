"""Smoke plugin fixtures: a real Mosquitto, a real core with the smoke plugin, the real fleet simulator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import firebus.plugins.smoke as smoke_plugin
import paho.mqtt.client as mqtt
import pytest
from firebus.core.sim.smoke import FleetConfig, SmokeFleetPublisher, iter_imeis
from firebus.sdk.testing.harness import start_core as sdk_start_core
from firebus.sdk.testing.mosquitto import Mosquitto
from firebus.sdk.testing.recorder import EventRecorder
from paho.mqtt.enums import CallbackAPIVersion


@pytest.fixture
def broker(firebus_mosquitto: Mosquitto) -> Mosquitto:
    """The SDK's broker fixture, under the name these tests use."""
    return firebus_mosquitto


def site_yaml(db: Path, port: int, devices: list[tuple[str, str, str]], alarms: str = "", driver: str = "smoke.generic",
              identity: str = "imei") -> str:
    """``devices``: (key, identifier, location)."""
    devs = "".join(
        f"  - {{key: {key}, driver: {driver}, transport: mq, location: {loc}, name: {key},"
        f" identifiers: {{{identity}: '{ident}'}}}}\n"
        for key, ident, loc in devices
    )
    return (
        f"storage: {{path: '{db}'}}\n"
        "units:\n"
        "  - key: u1\n    name: Test unit\n    buildings:\n"
        "      - key: b1\n        floors:\n"
        "          - key: f1\n            locations:\n"
        "              - {key: room-a, name: Room A}\n"
        "              - {key: room-b, name: Room B}\n"
        f"transports:\n  - {{key: mq, type: mqtt, options: {{port: {port}, client_id: fb-test-{port}}}}}\n"
        f"devices:\n{devs}"
        + alarms
    )


def start_core(tmp_path: Path, broker: Mosquitto, devices: list[tuple[str, str, str]],
               recorder: EventRecorder | None = None, **kw: Any):
    """The SDK's ``start_core`` on ``site_yaml``; ``recorder`` (``firebus_recorder``) sees every event."""
    return sdk_start_core(site_yaml(tmp_path / "fb.db", broker.port, devices, **kw), plugins={"smoke": smoke_plugin},
                          recorder=recorder)


def imeis(cfg: FleetConfig) -> list[str]:
    return list(iter_imeis(cfg))


async def run_fleet(cfg: FleetConfig, port: int, duration: float, speed: float = 1.0) -> list[Any]:
    """Publish the simulator's timeline in (simulated) real time; returns the messages sent."""
    pub = SmokeFleetPublisher(cfg, "127.0.0.1", port, client_id=f"sim-{cfg.seed}-{time.monotonic_ns()}")
    return await anyio.to_thread.run_sync(lambda: pub.run(duration, speed=speed))


def publish_raw(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"raw-{time.monotonic_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


class Listener:
    """A real MQTT client recording what the core publishes (commands to detectors)."""

    def __init__(self, port: int, pattern: str) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"listen-{time.monotonic_ns()}")
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        subscribed = []
        self.client.on_subscribe = lambda *a: subscribed.append(True)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(pattern, qos=1)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not subscribed and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def ready(core: Any, transport: str = "mq") -> None:
    """Wait until the core's MQTT session is subscribed.

    The broker handles packets of one connection in order, so once a publish sent
    after the SUBSCRIBE is acknowledged, the subscriptions are in place.
    """
    hub = core.transports[transport]
    await hub.wait_connected(20)
    await hub.publish("firebus-test/probe", b"probe", qos=1)
