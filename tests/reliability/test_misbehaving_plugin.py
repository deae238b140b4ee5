"""A plugin that raises or blocks in every handler does not delay other plugins' alarms.

The bad plugin: an alarm rule whose ``evaluate`` raises on every temperature
reading, a startup hook that raises, bus subscribers on every event type that
raise (one) or never return (another), and a notification route to a webhook
that accepts the connection and never answers.  The good path: a reading of
95 °C from another driver must still raise the core's threshold alarm and
reach the working webhook within a few seconds, and the engine must count the
bad rule's errors instead of stopping.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import anyio
import paho.mqtt.client as mqtt
import pytest

from firebus.core.runtime import running_core
from firebus.plugins import notify
from firebus.sdk import AlarmRule, Event, hookimpl
from firebus.sdk.testing.mosquitto import Mosquitto

from .helpers import WebhookReceiver
from .relcore import Plugin as TempPlugin

pytestmark = pytest.mark.anyio


class ExplodingRule(AlarmRule):
    type_key = "bad.explodes"
    defaults = {"temperature": {}}

    def evaluate(self, point, opts, inp, state):
        raise RuntimeError("bad plugin: evaluate always raises")


class BadPlugin:
    def __init__(self) -> None:
        self.raised = 0
        self.blocked = 0

    @hookimpl
    def firebus_register_rules(self, core):
        return [ExplodingRule]

    @hookimpl
    def firebus_startup(self, core):
        def raising(event: Event) -> None:
            self.raised += 1
            raise RuntimeError("bad plugin: handler always raises")

        async def blocking(event: Event) -> None:
            self.blocked += 1
            await anyio.sleep_forever()

        core.bus.subscribe("bad-raises", raising)
        core.bus.subscribe("bad-blocks", blocking)

        async def fail() -> None:
            raise RuntimeError("bad plugin: startup always fails")

        return fail()


class SilentServer:
    """Accepts TCP connections and never answers (a hung notification gateway)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


class Outcome:
    notified_after_s: float | None = None
    body: dict = {}
    rule_errors = 0
    raised = blocked = 0
    alarms_depth = -1
    shutdown_error: BaseException | None = None


async def run_core(site: str, bad: BadPlugin, good: WebhookReceiver, out: Outcome) -> None:
    async with running_core(site, extra_plugins={"rel": TempPlugin(), "bad": bad}) as core:
        await core.transports["mqtt"].wait_connected(20)
        service = notify.service_for(core)
        assert service is not None
        with anyio.fail_after(20):
            await service.wait_ready()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad-pub", protocol=mqtt.MQTTv311)
        pub.connect("127.0.0.1", int(site.split("port: ")[1].split(",")[0]))
        pub.loop_start()
        try:
            # Normal readings first: the bad handlers are now raising and blocked.
            for i in range(20):
                pub.publish("rel/cable/t", json.dumps({"seq": i, "v": 20.0 + i % 3, "ts": time.time()}), qos=1)
            await anyio.sleep(0.5)
            sent = time.monotonic()
            pub.publish("rel/cable/t", json.dumps({"seq": 99, "v": 95.0, "ts": time.time()}), qos=1)
            deadline = sent + 10
            while not good.new_alarms() and time.monotonic() < deadline:
                await anyio.sleep(0.02)
            if good.new_alarms():
                out.notified_after_s = time.monotonic() - sent
        finally:
            pub.loop_stop()
            pub.disconnect()
        metrics = core.metrics()
        out.rule_errors = metrics["alarms"]["rule_errors"]
        out.raised, out.blocked = bad.raised, bad.blocked
        out.alarms_depth = metrics["bus"]["subscribers"]["journal:alarms"]["depth"]  # the engine reads the journal


async def scenario(tmp_path: Path) -> Outcome:
    out = Outcome()
    good, hung = WebhookReceiver(), SilentServer()
    bad = BadPlugin()
    try:
        with Mosquitto(tmp_path / "broker") as broker:
            site = (
                f"storage: {{path: '{tmp_path / 'fb.db'}'}}\n"
                "plugins: {allow: [notify]}\n"
                "transports:\n"
                f"  - {{key: mqtt, type: mqtt, options: {{port: {broker.port}, client_id: bad-core}}}}\n"
                "devices:\n"
                "  - {key: cable, driver: rel.temp, transport: mqtt, identifiers: {serial: cable}}\n"
                "notify:\n"
                "  channels:\n"
                f"    - {{key: good, type: webhook, options: {{url: '{good.url}'}}}}\n"
                f"    - {{key: hung, type: webhook, options: {{url: '{hung.url}', timeout: 300}}}}\n"
                "  people:\n"
                "    - {name: duty, roles: [duty_officer], contacts: {good: duty, hung: duty}}\n"
                "  routes:\n"
                "    - {name: hung-first, channels: [hung], categories: [electrical_alarm]}\n"
                "    - {name: good, channels: [good], categories: [electrical_alarm]}\n"
            )
            try:
                await run_core(site, bad, good, out)
            except BaseException as exc:  # noqa: BLE001 — recorded, asserted by its own test
                out.shutdown_error = exc
    finally:
        good.close()
        hung.close()
    out.body = good.new_alarms()[0] if good.new_alarms() else {}
    return out


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return await scenario(tmp_path_factory.mktemp("bad"))


async def test_raising_and_blocking_plugin_does_not_delay_other_alarms(outcome: Outcome) -> None:
    # 10 s is generous for a loaded CI machine; bench/alarm_latency.py measures the milliseconds.
    assert outcome.notified_after_s is not None and outcome.notified_after_s < 10, outcome.notified_after_s
    assert outcome.body["category"] == "electrical_alarm" and outcome.body["data"]["value"] == 95.0
    assert outcome.rule_errors > 0  # the bad rule ran and was contained
    assert outcome.raised > 0 and outcome.blocked == 1  # its handlers were really called, one is stuck
    assert outcome.alarms_depth == 0  # the engine's queue is not held up by the stuck subscriber


async def test_core_stops_cleanly_although_a_plugin_handler_never_returns(outcome: Outcome) -> None:
    assert outcome.shutdown_error is None, repr(outcome.shutdown_error)
