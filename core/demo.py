"""``firebus demo``: the example site against simulated devices, with the panel.

Everything is real except the devices: a Mosquitto broker started for the
demo, Modbus TCP simulators serving the plugins' shipped register maps, an
NB-IoT smoke-detector fleet and hydrant monitors publishing over MQTT, a small
webhook receiver standing in for the fire-control room's alarm display — and
the core with its panel on the example site (``examples/site.yaml``, shipped
in the package as ``firebus/examples/site.yaml``).

The demo starts from an empty database (``--keep`` resumes the last one) and
its scenario repeats every ``CYCLE_S`` seconds, so a newcomer who logs in late
still sees every kind of alarm happen.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import anyio

#: The installed ``firebus`` package folder (the checkout's root in an editable install):
#: ``examples/site.yaml`` and ``plugins/…`` resolve against it either way.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SITE = PACKAGE_ROOT / "examples" / "site.yaml"

#: Seconds after which every simulator starts its script again (the scripts end by ~4 min).
CYCLE_S = 300
#: How long the MQTT simulators run (the scripted events are repeated up to here).
HORIZON_S = 86400

#: gateway env var of the site file → the plugin whose demo scenario that gateway serves
MODBUS_GATEWAYS = {
    "FIREBUS_GW_ELECTRICAL_PORT": "leakage",
    "FIREBUS_GW_GAS_PORT": "gas",
    "FIREBUS_GW_WATER_PORT": "water",
}
SMOKE_FLEET = ["--devices", "4", "--seed", "0", "--heartbeat", "60"]
SMOKE_EVENTS = ["30:0:alarm:90", "40:1:alarm:90", "120:2:tamper:60"]  # AT:DEVICE:EVENT:DURATION
HYDRANTS = ["--hydrants", "3", "--seed", "0", "--heartbeat", "60"]
HYDRANT_EVENTS = ["45:0:open", "75:0:close", "100:1:tilt:35", "130:2:pressure:0.09"]

#: What happens when in each cycle (minutes:seconds from the cycle's start), zh / en.
TIMELINE = [
    ("0:30", "大厅烟感 1 火警，0:40 烟感 2 也报警", "Lobby smoke detector 1 fire alarm; detector 2 joins at 0:40"),
    ("0:45", "消火栓 H1 被打开（1:15 关闭），1:40 H2 倾斜，2:10 H3 水压低",
     "Hydrant H1 opened (closed 1:15), H2 tilted at 1:40, H3 low pressure at 2:10"),
    ("1:00", "AP2 剩余电流突增；1 号消防泵转手动（至 3:00）",
     "AP2 residual current jumps; fire pump 1 switched to manual (until 3:00)"),
    ("1:06", "厨房 2 可燃气体一级报警，约 2:17 二级：联动关阀、开风机",
     "Kitchen 2 gas level 1; level 2 at ~2:17 closes the valve and starts the fan (linkage)"),
    ("1:15", "屋顶水箱水位低于 90 %", "Roof tank level below 90 %"),
    ("2:00", "AL1 剩余电流报警；办公室烟感被拆；喷淋立管压力低 → 启动 2 号泵（泵卡死，无运行反馈）",
     "AL1 residual current alarm; office smoke detector tampered; riser pressure low → "
     "fire pump 2 started (it is seized: no running feedback)"),
    ("2:30", "L2 进线电缆温度超过 85 °C", "L2 incoming cable above 85 °C"),
    ("3:04", "锅炉房燃气二级报警，阀门卡住：关阀失败", "Boiler room gas level 2; its valve is stuck: failed to close"),
    ("3:20", "AP2 温度探头断线", "AP2 temperature probe wiring fault"),
    ("4:00", "AL1 N 线温度探头开路；锅炉房 3 号探测器故障",
     "AL1 N-cable probe open circuit; boiler room detector 3 fault"),
]

#: Files and folders the demo writes in its data folder; a folder holding anything else is
#: not wiped (``--data`` might point at something precious).
MARKER = ".firebus-demo"
DEMO_FILES = {MARKER, "firebus.db", "firebus.db-wal", "firebus.db-shm", "firebus.db-journal", "firebus.db.lock", "broker",
              "simulators.log", "backups"}


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


def repeated(events: list[str], flag: str, cycle: float = CYCLE_S, horizon: float = HORIZON_S) -> list[str]:
    """``AT:…`` event specs repeated every ``cycle`` seconds up to ``horizon``, as CLI flags."""
    out: list[str] = []
    for k in range(int(horizon // cycle) + 1):
        for spec in events:
            at, _, rest = spec.partition(":")
            t = float(at) + k * cycle
            if t < horizon:
                out += [flag, f"{t:g}:{rest}"]
    return out


def scenario(plugin: str) -> Path:
    """The demo scenario a plugin ships (``firebus/plugins/<plugin>/profiles/demo.scenario.yaml``)."""
    return Path(str(resources.files(f"firebus.plugins.{plugin}.profiles").joinpath("demo.scenario.yaml")))


def prepare_data(data: Path, keep: bool) -> str | None:
    """Empty the demo's folder unless ``keep``; an error message if the folder is not the demo's."""
    if data.is_dir() and any(data.iterdir()):
        foreign = sorted(p.name for p in data.iterdir() if p.name not in DEMO_FILES)
        if foreign:
            return (f"{data} holds files the demo did not write ({', '.join(foreign[:5])}); "
                    "choose an empty or new --data folder")
        if not keep:
            shutil.rmtree(data)
    elif data.exists() and not data.is_dir():
        return f"{data} is a file, not a folder"
    data.mkdir(parents=True, exist_ok=True)
    (data / MARKER).write_text("written by `firebus demo`; the demo empties this folder at start\n")
    return None


def guide(url: str, login: tuple[str, str], resumed: bool) -> str:
    """What to look at, in Chinese and English."""
    name, password = login
    lines = [
        "",
        "=" * 72,
        f"  面板 Panel:   {url}",
        f"  登录 Login:   {name} / {password}",
        f"  {'接着上次的数据库 Resumed the last database' if resumed else '全新数据库 Fresh database'}"
        f"（--keep 保留 / --keep resumes）",
        f"  场景每 {CYCLE_S // 60} 分钟重复一次 · the scenario repeats every {CYCLE_S // 60} minutes:",
    ]
    for at, zh, en in TIMELINE:
        lines.append(f"    {at:>5}  {zh}")
        lines.append(f"           {en}")
    lines += [
        "  告警页看报警、确认、消音 · Alarms page: watch, acknowledge, silence;",
        "  “[duty-room display]” 行是通知插件送到值班室的消息 · lines are what notify delivers.",
        "  Ctrl-C 停止 · Ctrl-C stops the demo.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def _free_port() -> int:
    from firebus.sdk.testing.mosquitto import free_port

    return free_port()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the demo dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the demo's own shutdown still stops its children


def _spawn(args: list[str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    # Own session: Ctrl-C reaches the demo only, which then stops the core before the devices.
    proc = subprocess.Popen(
        [sys.executable, "-m", "firebus.core.cli", *args], cwd=PACKAGE_ROOT, stdout=out,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_die_with_parent,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()

    stack.callback(stop)
    return proc


class _Interrupt:
    """Ctrl-C or SIGTERM while the demo starts, remembered as well as raised.

    A KeyboardInterrupt raised while ``subprocess`` forks runs inside an at-fork hook
    (logging's ``_releaseLock``), where Python reports it as unraisable and carries on:
    the demo went on starting and ignored the Ctrl-C.  So the handler also sets a flag,
    looked at after each process started, and the lost exception is not printed."""

    requested = False

    @classmethod
    def handler(cls, signum: int, frame: Any) -> None:
        cls.requested = True
        raise KeyboardInterrupt

    @classmethod
    def note(cls, signum: int, frame: Any) -> None:
        cls.requested = True

    @classmethod
    def remember_only(cls) -> None:
        """From here on a signal is only noted: raised inside the event loop, it would tear
        through the core's start-up tasks; run_site stops once its own handling is in place."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, cls.note)

    @classmethod
    def check(cls) -> None:
        if cls.requested:
            raise KeyboardInterrupt


def _quiet_lost_interrupt(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def unraisable(info: Any) -> None:
        if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
            return  # lost in an at-fork hook; _Interrupt.requested has it
        hook(info)

    return unraisable


def _reap_children(timeout: float = 10.0) -> None:
    """Stop any child still running: one started by a ``Popen`` that a Ctrl-C interrupted
    after the fork never reached the exit stack (Linux: /proc lists a process's children)."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").glob("*/children"):
        try:
            pids.update(int(pid) for pid in task.read_text().split())
        except OSError:
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # already reaped (its Popen did)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)


def run_demo(args: argparse.Namespace) -> int:
    # Ctrl-C or SIGTERM while starting: stop what has started, quietly (the core's own signal
    # handling takes over once it runs).
    _Interrupt.requested = False
    previous = {sig: signal.signal(sig, _Interrupt.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_lost_interrupt(previous_hook)
    try:
        return _run_demo(args)
    except KeyboardInterrupt:
        _Interrupt.remember_only()  # a second Ctrl-C while stopping: no traceback
        _reap_children()
        print("demo: stopped", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook


def _run_demo(args: argparse.Namespace) -> int:
    from firebus.sdk.testing.mosquitto import Mosquitto, wait_port

    from .cli import run_site
    from .config import ConfigError, load_file
    from .plugins import PluginError
    from .runtime import build_plugin_host, prepare

    data = Path(args.data).resolve()
    config = Path(args.config) if args.config else SITE
    if not config.exists():
        print(f"error: {config} not found", file=sys.stderr)
        return 2
    resumed = bool(args.keep) and (data / "firebus.db").exists()
    problem = prepare_data(data, bool(args.keep))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        broker = Mosquitto(data / "broker")
        stack.callback(broker.stop)  # before start: a Ctrl-C while it starts still stops it
        broker.start()
        _Interrupt.check()
        env = {"FIREBUS_MQTT_PORT": str(broker.port), "FIREBUS_DATA": str(data)}
        display = ThreadingHTTPServer(("127.0.0.1", 0), _AlarmDisplay)
        threading.Thread(target=display.serve_forever, daemon=True).start()
        stack.callback(display.server_close)
        stack.callback(display.shutdown)
        env["FIREBUS_DUTY_WEBHOOK"] = f"http://127.0.0.1:{display.server_address[1]}/alarms"
        logs = data / "simulators.log"
        for variable, plugin in MODBUS_GATEWAYS.items():
            env[variable] = str(_free_port())
            _spawn(["sim", "modbus", "--port", env[variable], "--scenario", str(scenario(plugin)),
                    "--loop", str(CYCLE_S)], logs, stack)
            _Interrupt.check()
        _spawn(["sim", "smoke", "--port", str(broker.port), *SMOKE_FLEET, "--duration", str(HORIZON_S),
                *repeated(SMOKE_EVENTS, "--alarm")], logs, stack)
        _Interrupt.check()
        _spawn(["sim", "hydrant", "--port", str(broker.port), *HYDRANTS, "--duration", str(HORIZON_S),
                *repeated(HYDRANT_EVENTS, "--event")], logs, stack)
        _Interrupt.check()
        for variable in MODBUS_GATEWAYS:  # start the core once the gateways answer
            wait_port("127.0.0.1", int(env[variable]), timeout=30)
        print(f"demo: broker 127.0.0.1:{broker.port}, simulators logging to {logs}", flush=True)
        try:
            loaded = load_file(config, env={**os.environ, **env})
            host = build_plugin_host(loaded.site)
            prepare(loaded, host)
        except (ConfigError, PluginError) as exc:
            for error in getattr(exc, "errors", None) or [exc]:
                print(f"error: {error}", file=sys.stderr)
            return 2

        def announce(url: str, login: tuple[str, str]) -> None:
            print(guide(url, login, resumed), flush=True)

        _Interrupt.remember_only()
        _Interrupt.check()
        try:
            anyio.run(run_site, loaded, host, args, True, announce, lambda: _Interrupt.requested)
        except KeyboardInterrupt:
            pass
    return 0
