"""A firebus core with a sequence-counting push driver, run as its own process.

tests/core/test_no_loss.py starts it, SIGKILLs it mid-stream and starts it
again; every sequence number a publisher sent at QoS 1 must end up stored once.
"""

from __future__ import annotations

import sys

import anyio
import msgspec

from firebus.core.config import load_file
from firebus.core.runtime import running_core
from firebus.sdk import DeviceReport, NoOptions, PointSpec, PushDriver, Reading, hookimpl


class SeqPayload(msgspec.Struct):
    seq: int
    ts: float


class SequenceDriver(PushDriver):
    type_key = "test.sequence"
    Options = NoOptions
    transports = ("mqtt",)
    _decoder = msgspec.json.Decoder(SeqPayload)

    def subscriptions(self) -> list[str]:
        return ["seqtest/+/up"]

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        msg = self._decoder.decode(payload)
        serial = topic.split("/")[1]
        return [DeviceReport(identifiers={"serial": serial}, readings=[Reading(point_key="seq", value=msg.seq, ts=msg.ts)])]

    def points_for(self, report: DeviceReport) -> list[PointSpec]:
        return [PointSpec(key="seq", point_class="sequence")]


class Plugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [SequenceDriver]


async def main(path: str) -> None:
    async with running_core(load_file(path), extra_plugins={"noloss": Plugin()}, autoload=False):
        print("core-started", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
