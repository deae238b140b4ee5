"""Subscriber process for the SIGKILL test: commit (append + fsync) each seq, then ack.

Prints "subscribed" once its subscription is in place, then runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from firebus.core.transports.mqtt import MqttOptions, MqttTransport


class Ctx:
    logger = logging.getLogger("worker")

    def link_changed(self, up: bool, reason: str = "") -> None:
        pass

    async def run_in_background(self, func, *args, name=""):
        asyncio.create_task(func(*args))


async def main(host: str, port: int, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    t = MqttTransport("mqtt", MqttOptions(host=host, port=port, client_id="firebus-worker", receive_maximum=50), Ctx())

    async def handler(topic: str, payload: bytes, ack) -> None:
        seq = json.loads(payload)["seq"]
        os.write(fd, f"{seq}\n".encode())
        os.fsync(fd)  # "durably committed"
        ack()
        await asyncio.sleep(0.002)  # slow enough that the kill lands mid-stream

    t.subscribe("nb/smoke/#", handler)
    await t.start()
    await t.wait_connected()
    await asyncio.sleep(0.3)  # SUBACK
    print("subscribed", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
