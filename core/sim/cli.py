"""``firebus sim …``: run device simulators from the command line.

``add_sim_commands(subparsers)`` adds the ``sim`` command to an argparse
parser; each sub-command sets ``func`` to a callable taking the parsed
namespace and returning an exit code.  ``python -m firebus.core.sim`` runs the
same commands without the rest of the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

DEMO = "demo"


def add_sim_commands(subparsers: Any, host: Any = None) -> None:
    sim = subparsers.add_parser(
        "sim", help="run device simulators (Modbus TCP devices, an NB-IoT smoke fleet over MQTT)",
        description="Real-protocol device simulators for tests, demos and vendors. Scenarios are "
                    "scripted and reproducible from a seed.",
    )
    sub = sim.add_subparsers(dest="sim_command", metavar="SIMULATOR")
    sub.required = True

    m = sub.add_parser("modbus", help="serve Modbus devices from register-map profiles on a TCP port",
                       description="Serve one or more devices (unit ids) on a Modbus TCP listener. "
                                   "Without --scenario/--device the demo scenario runs (units 1-4).")
    m.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    m.add_argument("--port", type=int, default=5020, help="listen port (default 5020; 0 = any free port)")
    m.add_argument("--framer", choices=["socket", "rtu"], default="socket",
                   help="socket = Modbus TCP, rtu = RTU frames over TCP (default socket)")
    m.add_argument("--scenario", help="scenario YAML file, or 'demo' (default when no --device)")
    m.add_argument("--device", action="append", default=[], metavar="UNIT:PROFILE",
                   help="serve PROFILE (built-in name or file) as UNIT with steady values; repeatable")
    m.add_argument("--seed", type=int, help="override the scenario's seed")
    m.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    m.add_argument("--latency", type=float, default=0.0, help="seconds before each answer (slow gateway)")
    m.add_argument("--loop", type=float, default=0.0, metavar="SECONDS",
                   help="start the scenario again every SECONDS of simulated time, forgetting writes "
                        "(0 = run once; the demo uses 300)")
    m.add_argument("--status", type=float, default=0.0, metavar="SECONDS",
                   help="print every device's decoded values every SECONDS (0 = off)")
    m.set_defaults(func=run_modbus)

    s = sub.add_parser("smoke", help="publish a fleet of NB-IoT smoke detectors to an MQTT broker",
                       description="Heartbeats with sequence numbers, alarm/clear, low battery, tamper "
                                   "and fault events as JSON at QoS 1 (format: docs/transports.md).")
    s.add_argument("--host", default="127.0.0.1", help="MQTT broker address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=1883, help="MQTT broker port (default 1883)")
    s.add_argument("--username", help="MQTT user name (default: none)")
    s.add_argument("--password", help="MQTT password (default: none)")
    s.add_argument("--tls", action="store_true", help="connect with TLS (port usually 8883)")
    s.add_argument("--ca-file", help="CA certificate (PEM) to verify the broker with --tls")
    s.add_argument("--devices", type=int, default=10, help="fleet size (default 10)")
    s.add_argument("--seed", type=int, default=0,
                   help="seed for the IMEIs and random events: the same seed, the same fleet (default 0)")
    s.add_argument("--heartbeat", type=float, default=60.0, help="heartbeat period, simulated s (default 60)")
    s.add_argument("--prefix", default="firebus/smoke", help="topic prefix (default firebus/smoke)")
    s.add_argument("--duration", type=float, default=600.0, help="simulated seconds to run (default 600)")
    s.add_argument("--speed", type=float, default=1.0, help="simulated s per wall s; 0 = as fast as possible")
    s.add_argument("--alarm-rate", type=float, default=0.0, help="random alarms per device per hour")
    s.add_argument("--tamper-rate", type=float, default=0.0, help="random tampers per device per hour")
    s.add_argument("--fault-rate", type=float, default=0.0, help="random faults per device per hour")
    s.add_argument("--battery-drain", type=float, default=0.0, help="battery %% lost per simulated hour")
    s.add_argument("--alarm", action="append", default=[], metavar="AT:DEVICE[:EVENT[:DURATION]]",
                   help="scripted event, e.g. 30:2 (alarm on device 2 at 30 s) or 45:0:tamper:60; repeatable")
    s.add_argument("--dry-run", action="store_true", help="print the messages instead of publishing")
    s.set_defaults(func=run_smoke)

    ls = sub.add_parser("list", help="list built-in profiles and scenarios with their points",
                        description="List the built-in register-map profiles (and their points) and scenarios.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    if host is not None:  # plugins' own simulators (e.g. GB/T 26875.3 UITD and centre)
        host.call_each("firebus_register_simulators", sim=sub)
    ls.set_defaults(sim_names=sorted(sub.choices))  # for `sim list`, plugins' simulators included


def _scenario(args: argparse.Namespace):
    import yaml

    from .scenario import DeviceScenario, Scenario, load_scenario

    if args.device:
        devices = []
        for spec in args.device:
            unit, _, profile = spec.partition(":")
            if not unit.isdigit() or not profile:
                raise SystemExit(f"--device wants UNIT:PROFILE, got {spec!r}")
            devices.append(DeviceScenario(unit=int(unit), profile=profile))
        scen = Scenario(seed=args.seed or 0, devices=devices)
    else:
        name = args.scenario or DEMO
        if name == DEMO:
            text = resources.files("firebus.core.sim.profiles").joinpath("demo.scenario.yaml").read_text("utf-8")
            source = "demo.scenario.yaml"
        else:
            text = Path(name).read_text(encoding="utf-8")
            source = name
        scen = load_scenario(yaml.safe_load(text), source)
    if args.seed is not None:
        scen.seed = args.seed
    return scen


def looping_clock(period: float, speed: float, simulator: Callable[[], Any],
                  now: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """Simulated time that wraps every ``period`` s; each new round forgets what clients wrote,
    so linkage (a closed valve, a started pump) plays out again.  ``simulator()`` returns the
    ModbusSimulator (created after its clock)."""
    t0 = now()
    round_ = [0]

    def clock() -> float:
        rounds, t = divmod((now() - t0) * speed, period)
        if rounds != round_[0]:
            round_[0] = int(rounds)
            for device in simulator().devices.values():
                device.written.clear()
                device.write_log.clear()
        return t

    return clock


def run_modbus(args: argparse.Namespace) -> int:
    from .modbus import ModbusSimulator

    try:
        scen = _scenario(args)
        clock = looping_clock(args.loop, args.speed, lambda: sim) if args.loop > 0 else None
        sim = ModbusSimulator.from_scenario(scen, host=args.host, port=args.port, framer=args.framer,
                                            latency=args.latency, speed=args.speed, clock=clock)
    except (ValueError, OSError) as exc:
        print(f"firebus sim modbus: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        await sim.start()
        units = ", ".join(f"{u}={d.profile.name}" for u, d in sorted(sim.devices.items()))
        print(f"modbus simulator on {args.host}:{sim.port} ({args.framer}); units: {units}; seed {scen.seed}",
              flush=True)
        try:
            while True:
                await asyncio.sleep(args.status or 3600)
                if args.status:
                    t = sim.now()
                    for u, d in sorted(sim.devices.items()):
                        state = "silent" if d.silent(t) else json.dumps(d.readings(t), default=str)
                        print(f"t={t:7.1f} unit {u}: {state}", flush=True)
        finally:
            await sim.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def run_smoke(args: argparse.Namespace) -> int:
    from .smoke import FleetConfig, ScriptedEvent, SmokeFleetPublisher, timeline

    try:
        events = []
        for spec in args.alarm:
            parts = spec.split(":")
            events.append(ScriptedEvent(at=float(parts[0]), device=int(parts[1]),
                                        event=(parts[2] if len(parts) > 2 else "") or "alarm",
                                        duration=float(parts[3]) if len(parts) > 3 else None))
        cfg = FleetConfig(devices=args.devices, seed=args.seed, heartbeat_s=args.heartbeat, prefix=args.prefix,
                          alarm_rate=args.alarm_rate, tamper_rate=args.tamper_rate, fault_rate=args.fault_rate,
                          battery_drain_per_hour=args.battery_drain, events=events)
    except (ValueError, IndexError) as exc:
        print(f"firebus sim smoke: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for msg in timeline(cfg, args.duration):
            print(f"{msg.t:9.2f} {msg.topic} {msg.encode().decode()}")
        return 0
    pub = SmokeFleetPublisher(cfg, args.host, args.port, username=args.username, password=args.password,
                              tls=args.tls, ca_file=args.ca_file)
    print(f"smoke fleet: {args.devices} devices → {args.host}:{args.port} under {args.prefix}/<imei>/up",
          flush=True)
    try:
        sent = pub.run(args.duration, speed=args.speed,
                       progress=lambda m: print(f"{m.t:9.2f} {m.topic} seq={m.payload['seq']} {m.payload['event']}",
                                                flush=True) if m.payload["event"] != "heartbeat" else None)
    except (OSError, RuntimeError) as exc:
        print(f"firebus sim smoke: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"sent {len(sent)} messages, all confirmed by the broker", flush=True)
    return 0


def plugin_modbus_profiles() -> tuple[dict[str, Any], list[str]]:
    """Register maps the built-in plugins ship (``<plugin>:<name>``, what site files and
    scenarios name) and their scenario files.  JSON payload maps are not Modbus: skipped."""
    import pkgutil

    import firebus.plugins

    from .modbus import resolve_profile

    profiles: dict[str, Any] = {}
    scenarios: list[str] = []
    for info in sorted(pkgutil.iter_modules(firebus.plugins.__path__), key=lambda m: m.name):
        try:
            folder = resources.files(f"firebus.plugins.{info.name}.profiles")
        except ModuleNotFoundError:
            continue
        for f in sorted(folder.iterdir(), key=lambda f: f.name):
            if f.name.endswith(".scenario.yaml"):
                scenarios.append(str(f))
            elif f.name.endswith(".yaml"):
                try:
                    profiles[f"{info.name}:{f.name.removesuffix('.yaml')}"] = resolve_profile(
                        f"{info.name}:{f.name.removesuffix('.yaml')}")
                except ValueError:
                    continue  # not a register map (an MQTT payload map)
    return profiles, scenarios


def run_list(args: argparse.Namespace) -> int:
    from .modbus import builtin_profiles, resolve_profile

    profiles = {n: resolve_profile(n) for n in builtin_profiles()}
    scenarios = sorted(f.name for f in resources.files("firebus.core.sim.profiles").iterdir()
                       if f.name.endswith(".scenario.yaml"))
    shipped, plugin_scenarios = plugin_modbus_profiles()
    profiles.update(shipped)
    scenarios += plugin_scenarios
    if args.json:
        print(json.dumps({
            "profiles": {n: {"description": p.description, "points": [
                {"point_key": q.point_key, "point_class": q.point_class, "unit": q.unit, "table": str(q.table),
                 "address": q.address, "dtype": str(q.dtype), "writable": q.writable} for q in p.points]}
                for n, p in profiles.items()},
            "scenarios": scenarios,
        }, indent=2, ensure_ascii=False))
        return 0
    print("Modbus profiles (firebus sim modbus --device UNIT:NAME):")
    for n, p in profiles.items():
        print(f"  {n:<28} {p.description}")
        for q in p.points:
            w = " writable" if q.writable else ""
            print(f"      {q.point_key:<28} {q.table:<8} {q.address:#06x} {q.dtype:<7} {q.unit}{w}")
    print("Scenarios (firebus sim modbus --scenario NAME|FILE):")
    for s in scenarios:
        print(f"  {s if '/' in s else s.removesuffix('.scenario.yaml')}")
    others = sorted(n for n in getattr(args, "sim_names", []) if n not in ("modbus", "smoke", "list"))
    print("MQTT: firebus sim smoke (NB-IoT smoke detector fleet)"
          + "".join(f", firebus sim {n}" for n in others))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firebus.core.sim")
    sub = parser.add_subparsers(dest="command", required=True)
    add_sim_commands(sub)
    args = parser.parse_args(["sim", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)
