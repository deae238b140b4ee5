"""``firebus demo``: the example site against simulated devices, with the panel.

Everything is real except the devices: a Mosquitto broker started for the
demo, Modbus TCP simulators serving the plugins' shipped register maps, an
NB-IoT smoke-detector fleet and hydrant monitors publishing over MQTT, a small
webhook receiver standing in for the fire-control room's alarm display — and
the core with its panel on ``examples/site.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]

# (gateway env var, scenario shipped with the plugin)
MODBUS_GATEWAYS = {
    "FIREBUS_GW_ELECTRICAL_PORT": "plugins/leakage/profiles/demo.scenario.yaml",
    "FIREBUS_GW_GAS_PORT": "plugins/gas/profiles/demo.scenario.yaml",
    "FIREBUS_GW_WATER_PORT": "plugins/water/profiles/demo.scenario.yaml",
}
SMOKE_FLEET = [
    "--devices", "4", "--seed", "0", "--heartbeat", "60", "--duration", "86400",
    "--alarm", "30:0:alarm:90", "--alarm", "40:1:alarm:90", "--alarm", "120:2:tamper:60",
]
HYDRANTS = [
    "--hydrants", "3", "--seed", "0", "--heartbeat", "60", "--duration", "86400",
    "--event", "45:0:open", "--event", "75:0:close", "--event", "100:1:tilt:35", "--event", "130:2:pressure:0.09",
]


class _AlarmDisplay(BaseHTTPRequestHandler):
    """The duty room's alarm display: prints what the notify plugin delivers."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            text = json.loads(body).get("text") or body.decode()
        except (ValueError, AttributeError):
            text = body.decode(errors="replace")
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        print(f"[duty-room display] {' | '.join(lines[:3])}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    from firebus.sdk.testing.mosquitto import free_port

    return free_port()


def _spawn(args: list[str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "firebus.core.cli", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()

    stack.callback(stop)
    return proc


def run_demo(args: argparse.Namespace) -> int:
    from firebus.sdk.testing.mosquitto import Mosquitto

    from .cli import run_site
    from .config import ConfigError, load_file
    from .plugins import PluginError
    from .runtime import build_plugin_host, prepare

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    config = Path(args.config) if args.config else REPO / "examples" / "site.yaml"
    if not config.exists():
        print(f"error: {config} not found (run from a source checkout or pass --config)", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(data / "broker"))
        env = {"FIREBUS_MQTT_PORT": str(broker.port), "FIREBUS_DATA": str(data)}
        display = ThreadingHTTPServer(("127.0.0.1", 0), _AlarmDisplay)
        threading.Thread(target=display.serve_forever, daemon=True).start()
        stack.callback(display.shutdown)
        env["FIREBUS_DUTY_WEBHOOK"] = f"http://127.0.0.1:{display.server_address[1]}/alarms"
        logs = data / "simulators.log"
        for variable, scenario in MODBUS_GATEWAYS.items():
            env[variable] = str(_free_port())
            _spawn(["sim", "modbus", "--port", env[variable], "--scenario", scenario], logs, stack)
        _spawn(["sim", "smoke", "--port", str(broker.port), *SMOKE_FLEET], logs, stack)
        _spawn(["hydrant-sim", "--port", str(broker.port), *HYDRANTS], logs, stack)
        from firebus.sdk.testing.mosquitto import wait_port

        for variable in MODBUS_GATEWAYS:  # start the core once the gateways answer
            wait_port("127.0.0.1", int(env[variable]), timeout=30)
        print(f"demo: broker 127.0.0.1:{broker.port}, simulators logging to {logs}", flush=True)
        try:
            loaded = load_file(config, env={**os.environ, **env})
            host = build_plugin_host(loaded.site)
            prepare(loaded, host)
        except (ConfigError, PluginError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            anyio.run(run_site, loaded, host, args, True)
        except KeyboardInterrupt:
            pass
    return 0
