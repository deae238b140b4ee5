"""The core as its own process for bench/coldstart.py: start, serve the API, report, stay up.

    _coldstart_core.py SITE.yaml [--populate POINTS]

Prints JSON lines on stdout: ``{"stage": "subscribed", ...}`` once the core
is started and its MQTT session subscribed, ``{"stage": "serving", ...}``
once the web server listens (times since the parent's ``--t0``), then with
``--populate`` gives every configured device POINTS points and one latest
value each (through the real registry and ingest) and prints ``populated``.
Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import time
from pathlib import Path

t_import = time.time()

import anyio  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchPlugin, rss_mb  # noqa: E402

from firebus.core.config import load_file  # noqa: E402
from firebus.core.runtime import running_core  # noqa: E402
from firebus.core.web.server import serve  # noqa: E402
from firebus.sdk import PointSpec, Reading  # noqa: E402

POINTS = [
    PointSpec(key="t", point_class="temperature", unit="°C"),
    PointSpec(key="smoke", point_class="smoke"),
    PointSpec(key="battery", point_class="battery", unit="%"),
    PointSpec(key="rsrp", point_class="signal", unit="dBm"),
]

# A quiet site's latest values (a smoke detector reading 1.0 is in fire alarm: with every
# device of the bench in one location that made 10,000 detectors confirm one fire).
QUIET: dict[str, float | bool] = {"t": 21.5, "smoke": False, "battery": 90.0, "rsrp": -85.0}


#: libraries a core serving no camera and rendering no report should not have imported
HEAVY = ("numpy", "cv2", "av", "matplotlib", "weasyprint", "PIL", "asyncpg", "psycopg", "nats")


def say(t0: float, stage: str, **kw: object) -> None:
    # cpu_s: CPU time of this process so far (every thread), less sensitive than wall time
    # to other load on the box.
    print(json.dumps({"stage": stage, "s": round(time.time() - t0, 3), "cpu_s": round(time.process_time(), 3),
                      "rss_mb": rss_mb(), **kw}), flush=True)


async def main(args: argparse.Namespace) -> None:
    t0 = args.t0
    loaded = load_file(args.site)
    # --installed-plugins: every plugin installed on the firebus.plugins entry points is loaded
    # too, as `firebus run` does (the built-in ones: notify, video, reports, …)
    async with running_core(loaded, extra_plugins={"bench": BenchPlugin()}, autoload=args.installed_plugins) as core:
        transport = core.transports.get("mqtt")
        if transport is not None:
            await transport.wait_connected(60)
        say(t0, "subscribed", devices=len(core.registry.devices), python_start_s=round(t_import - t0, 3))
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, core, "127.0.0.1", args.port)
            say(t0, "serving", url=server.url)
            if args.populate:
                started = time.perf_counter()
                for device_id in list(core.device_ids.values()):
                    device = core.registry.devices[device_id]
                    await core.registry.ensure_points(device_id, POINTS[: args.populate])
                    await core.ingest.ingest(device, [Reading(point_key=p.key, value=QUIET[p.key], ts=1_800_000_000.0)
                                                      for p in POINTS[: args.populate]])
                await core.storage.barrier()
                say(t0, "populated", seconds=round(time.perf_counter() - started, 2))
            gc.collect()
            say(t0, "steady", devices=len(core.registry.devices), gc_objects=len(gc.get_objects()),
                plugins=len(core.plugins.records), heavy=sorted(m for m in HEAVY if m in sys.modules))
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("site")
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--populate", type=int, default=0)
    p.add_argument("--installed-plugins", action="store_true")
    anyio.run(main, p.parse_args())
