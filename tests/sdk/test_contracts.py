"""The contract suites tell good plugins from bad ones, and the quality level says how far each got.

The suites run in a separate pytest process (as in a vendor's repository) on a
good and a flawed version of each kind of plugin; the flaws are the classic
field bugs: a ``time.sleep`` in a driver, an identity built from an IP address,
a channel that blocks, a detector whose boxes are in pixels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from firebus.sdk.testing.contracts import Level, quality_level

SUITES = '''
import time

import msgspec
from firebus.sdk import DeviceInfo
from firebus.sdk.modbus import ModbusProfileDriver, profile_from_data
from firebus.sdk.testing.contracts import DetectorContract, ModbusDriverContract, NotifierContract
from firebus.sdk.testing.outbox import Outbox, outbox_channel_class
from contextlib import asynccontextmanager

PROFILE = profile_from_data({"name": "rc1", "manufacturer": "T", "points": [
    {"point_key": "rc", "point_class": "residual_current", "unit": "mA", "table": "holding", "address": 0},
    {"point_key": "t", "point_class": "temperature", "unit": "°C", "table": "holding", "address": 1,
     "dtype": "int16", "scale": 0.1}]})


class Good(ModbusProfileDriver):
    type_key = "t.good"
    profile = PROFILE


class Sleepy(Good):
    type_key = "t.sleepy"

    async def close(self):
        time.sleep(0.4)  # a blocking call: every other device on the site waits
        await super().close()


class ByAddress(Good):
    type_key = "t.byaddress"

    async def setup(self):
        info = await super().setup()
        return DeviceInfo(identifiers={"ip": "127.0.0.1:%d" % self.unit})


class TestGoodDriver(ModbusDriverContract):
    driver_class = Good
    values = {"rc": 12}


class TestSleepyDriver(ModbusDriverContract):
    driver_class = Sleepy


class TestByAddressDriver(ModbusDriverContract):
    driver_class = ByAddress


class OutboxRig:
    def __init__(self, blocking=False):
        self.outbox = Outbox()
        cls = outbox_channel_class(self.outbox)
        if blocking:
            class Blocking(cls):
                async def send(self, message):
                    time.sleep(0.4)
                    await super().send(message)
            cls = Blocking
        self.channel = cls("c", cls.Options(), None)

    def delivered(self):
        return self.outbox.messages

    def set_receiver_up(self, up):
        self.outbox.fail_next(0 if up else 1000)


class TestOutboxChannel(NotifierContract):
    notifier_class = outbox_channel_class(Outbox())

    @asynccontextmanager
    async def rig(self):
        yield OutboxRig()


class TestBlockingChannel(TestOutboxChannel):
    @asynccontextmanager
    async def rig(self):
        yield OutboxRig(blocking=True)


FIRE = [[(250, 40, 10) if 2 <= x < 6 and 3 <= y < 7 else (90, 90, 90) for x in range(8)] for y in range(8)]
PLAIN = [[(90, 90, 90)] * 8 for _ in range(8)]


class RedDetector:
    type_key = "t.red"
    Options = msgspec.Struct
    scale = 1.0

    def detect(self, frame):
        hits = [(x, y) for y, row in enumerate(frame) for x, (r, g, b) in enumerate(row) if r > 200 and g < 100]
        if not hits:
            return []
        h, w = len(frame), len(frame[0])
        xs, ys = [x for x, _ in hits], [y for _, y in hits]
        s = self.scale
        box = (min(xs) / w * s, min(ys) / h * s, (max(xs) + 1) / w * s, (max(ys) + 1) / h * s)
        return [("fire", round(len(hits) / (w * h) * 4, 3), box)]


class PixelBoxes(RedDetector):
    scale = 640.0


class TestRedDetector(DetectorContract):
    detector_class = RedDetector
    frames = [(FIRE, {"fire"}), (PLAIN, set())]


class TestPixelBoxDetector(TestRedDetector):
    detector_class = PixelBoxes


import json
import firebus.plugins.smoke as smoke
from firebus.sdk import DeviceReport, PushDriver, Reading
from firebus.sdk.testing.contracts import PushDriverContract

SMOKE = json.dumps({"v": 1, "imei": "861234567890123", "seq": 42, "ts": 1700000000.25, "event": "alarm",
                    "state": {"smoke": True, "fault": False, "low_battery": False, "tamper": False, "mute": False},
                    "battery": 87, "rsrp": -95, "sinr": 12, "heartbeat_s": 3600, "smoke_density": 3.5}).encode()


class TestSmokeGenericDriver(PushDriverContract):
    driver_class = next(d for d in smoke.DRIVERS if d.type_key == "smoke.generic")
    manifest = smoke.FIREBUS_MANIFEST
    plugin = smoke
    samples = [("firebus/smoke/861234567890123/up", SMOKE)]


class Naive(PushDriver):
    type_key = "t.naive"
    Options = msgspec.Struct
    transports = ("mqtt",)

    def subscriptions(self):
        return ["naive/+/up"]

    def decode(self, topic, payload):
        data = json.loads(payload)  # a KeyError or TypeError on odd input escapes
        return [DeviceReport(identifiers={"imei": data["imei"]},
                             readings=[Reading(point_key="smoke", value=data["state"]["smoke"])])]

    def points_for(self, report):
        from firebus.sdk import PointSpec
        return [PointSpec(key="smoke", point_class="smoke")]


class TestNaivePushDriver(PushDriverContract):
    driver_class = Naive
    samples = [("naive/1/up", SMOKE)]
'''


def test_levels_separate_good_from_flawed_plugins(tmp_path: Path) -> None:
    (tmp_path / "test_suites.py").write_text(SUITES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suites.py"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    levels = dict(re.findall(r"^firebus quality: (\w+): (\w+) ", result.stdout, re.M))
    assert levels == {
        "TestGoodDriver": "gold",
        "TestSleepyDriver": "silver",  # blocked the event loop
        "TestByAddressDriver": "none",  # identity from an address fails bronze
        "TestOutboxChannel": "gold",
        "TestBlockingChannel": "silver",
        "TestRedDetector": "gold",
        "TestPixelBoxDetector": "none",
        "TestSmokeGenericDriver": "gold",
        "TestNaivePushDriver": "bronze",  # crashes on malformed input instead of refusing it
    }, result.stdout[-5000:]
    assert "test_no_blocking_calls_in_the_event_loop" in re.search(
        r"^firebus quality: TestSleepyDriver: .*$", result.stdout, re.M).group(0)
    assert "contains an address" in result.stdout


def test_quality_level_needs_every_lower_level() -> None:
    assert quality_level([("bronze", True), ("silver", True), ("gold", True)]) is Level.GOLD
    assert quality_level([("bronze", True), ("silver", False), ("gold", True)]) is Level.BRONZE
    assert quality_level([("bronze", False), ("silver", True)]) is None
    assert quality_level([("bronze", True), ("gold", True)]) is Level.BRONZE  # silver untested: not earned
    assert quality_level([]) is None
