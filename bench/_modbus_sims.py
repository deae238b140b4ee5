"""Simulated Modbus TCP gateways for bench/modbus_poll.py, in their own process (own GIL).

    _modbus_sims.py GATEWAYS UNITS PROFILE

Starts GATEWAYS ``ModbusSimulator``s (each its own port, like separate
gateways), each serving UNITS units of PROFILE; prints ``{"ports": [...]}``,
then serves until stdin closes and prints ``{"requests": N}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from firebus.core.sim.modbus import ModbusSimulator, SimDevice, resolve_profile


async def main(gateways: int, units: int, profile_name: str) -> None:
    profile = resolve_profile(profile_name)
    sims = [ModbusSimulator([SimDevice(u, profile, seed=u) for u in range(1, units + 1)]) for _ in range(gateways)]
    for sim in sims:
        await sim.start()
    print(json.dumps({"ports": [s.port for s in sims]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print(json.dumps({"requests": sum(len(s.requests) for s in sims)}), flush=True)
    for sim in sims:
        await sim.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
