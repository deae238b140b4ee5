"""A firebus core with a temperature push driver, run as its own process (so it can be SIGKILLed).

    python relcore.py SITE.yaml

Topic ``rel/<serial>/t``, payload ``{"seq": n, "v": value, "ts": t}``: one
temperature reading per message; the core's default threshold rule raises an
electrical alarm above 85 °C and clears it at 83 °C.  Prints ``core-started``
once running.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from firebus.core.config import load_file  # noqa: E402
from firebus.core.runtime import running_core  # noqa: E402
from firebus.sdk import DeviceReport, NoOptions, PointSpec, PushDriver, Reading, hookimpl  # noqa: E402


class Msg(msgspec.Struct):
    seq: int
    v: float
    ts: float


class TempDriver(PushDriver):
    type_key = "rel.temp"
    Options = NoOptions
    transports = ("mqtt",)
    _decoder = msgspec.json.Decoder(Msg)

    def subscriptions(self) -> list[str]:
        return ["rel/+/t"]

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        msg = self._decoder.decode(payload)
        serial = topic.split("/")[1]
        return [DeviceReport(identifiers={"serial": serial}, readings=[Reading(point_key="t", value=msg.v, ts=msg.ts)])]

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return [PointSpec(key="t", point_class="temperature", unit="°C")]


class Plugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [TempDriver]


async def main(path: str) -> None:
    # Warnings go to the log the test keeps (stdout): a failed run says what the core saw.
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")
    async with running_core(load_file(path), extra_plugins={"rel": Plugin()}, autoload=False):
        print("core-started", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
