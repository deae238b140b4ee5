"""A firebus core with a sequence-counting push driver, run as its own process.

tests/core/test_no_loss.py starts it, SIGKILLs it mid-stream and starts it
again; every sequence number a publisher sent at QoS 1 must end up stored once.
"""

from __future__ import annotations

import sys

import anyio
from firebus.core.config import load_file
from firebus.core.runtime import running_core
from firebus.sdk import hookimpl
from firebus.sdk.jsonmap import make_driver, parse_profile


# The device is data, as a vendor's would be: a payload profile, no driver code.
SEQUENCE_PROFILE = """
name: test.sequence
topics: ["seqtest/+/up"]
identity:
  - {namespace: serial, topic_level: 1}
timestamp: {path: ts, unit: s}
required: [seq, ts]
points:
  seq: {path: seq, type: int, point_class: sequence}
"""
SequenceDriver = make_driver(parse_profile(SEQUENCE_PROFILE, "sequence.yaml"), "test.sequence")


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
