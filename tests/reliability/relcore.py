"""A firebus core with a temperature push driver, run as its own process (so it can be SIGKILLed).

    python relcore.py SITE.yaml

Topic ``rel/<serial>/t``, payload ``{"seq": n, "v": value, "ts": t}``: one
temperature reading per message; the core's default threshold rule raises an
electrical alarm above 85 °C and clears it at 83 °C.  Prints ``core-started``
once running.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from firebus.core.config import load_file  # noqa: E402
from firebus.core.runtime import running_core  # noqa: E402
from firebus.sdk import hookimpl  # noqa: E402
from firebus.sdk.jsonmap import make_driver, parse_profile  # noqa: E402


# The device is data, as a vendor's would be: a payload profile, no driver code.
TEMP_PROFILE = """
name: rel.temp
topics: ["rel/+/t"]
identity:
  - {namespace: serial, topic_level: 1}
timestamp: {path: ts, unit: s}
required: [v, ts]
points:
  t: {path: v, type: number, point_class: temperature, unit: "°C"}
"""
TempDriver = make_driver(parse_profile(TEMP_PROFILE, "temp.yaml"), "rel.temp")


class Plugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [TempDriver]


async def main(path: str) -> None:
    async with running_core(load_file(path), extra_plugins={"rel": Plugin()}, autoload=False):
        print("core-started", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
