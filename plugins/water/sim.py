"""A wireless hydrant monitor simulator publishing the generic hydrant JSON over real MQTT.

Each ``HydrantMonitor`` keeps the state a field unit would (pressure, valve open,
tilt, impact, GNSS position, battery) and turns every change into one full-state
message on ``firebus/hydrant/<serial>/up`` (format: ``profiles/hydrant_generic.yaml``).
``HydrantFleet`` publishes at QoS 1 and waits for every PUBACK; ``run_scenario``
plays a scripted, seeded timeline with heartbeats in simulated real time
(``firebus sim hydrant`` on the command line).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Literal

import msgspec

EVENTS = ("heartbeat", "open", "close", "knock", "tilt", "pressure")


class HydrantMonitor:
    def __init__(self, serial: str, lat: float, lon: float, *, pressure: float = 0.30, heartbeat_s: int = 300,
                 battery: int = 95, rssi: int = -85, prefix: str = "firebus/hydrant") -> None:
        self.serial, self.lat, self.lon = serial, lat, lon
        self.pressure = pressure
        self.heartbeat_s = heartbeat_s
        self.battery, self.rssi = battery, rssi
        self.prefix = prefix
        self.open = False
        self.tilt_deg = 0.5
        self.knock = False
        self.water_l = 0.0
        self.seq = 0
        self._opened_at: float | None = None

    @property
    def topic(self) -> str:
        return f"{self.prefix}/{self.serial}/up"

    def apply(self, event: str, value: Any = None, ts: float | None = None) -> tuple[str, bytes]:
        """Change the state as ``event`` says and return the message the monitor sends."""
        now = time.time() if ts is None else ts
        if event not in EVENTS:
            raise ValueError(f"unknown hydrant event {event!r}; one of {EVENTS}")
        self.knock = False
        if event == "open":
            self.open, self._opened_at, self.water_l = True, now, 0.0
            self.pressure = float(value) if value is not None else max(0.05, self.pressure - 0.12)
        elif event == "close":
            self.open = False
            drawn = float(value) if value is not None else 15.0 * (now - (self._opened_at or now))  # 15 L/s
            self.water_l = round(drawn, 1)
            self.pressure = min(self.pressure + 0.12, 0.6)
        elif event == "knock":
            self.knock = True
        elif event == "tilt":
            self.tilt_deg = float(value if value is not None else 35.0)
        elif event == "pressure":
            self.pressure = float(value)
        self.seq += 1
        payload = {
            "v": 1, "serial": self.serial, "seq": self.seq, "ts": round(now, 3), "event": event,
            "pressure": round(self.pressure, 3), "open": self.open, "water_l": self.water_l,
            "tilt_deg": round(self.tilt_deg, 1), "knock": self.knock,
            "lat": self.lat, "lon": self.lon, "battery": self.battery, "rssi": self.rssi,
            "heartbeat_s": self.heartbeat_s,
        }
        return self.topic, json.dumps(payload, separators=(",", ":")).encode()


class HydrantFleet:
    """Monitors sharing one MQTT connection (a test, the demo, a vendor's bench)."""

    def __init__(self, monitors: list[HydrantMonitor], host: str = "127.0.0.1", port: int = 1883, *,
                 client_id: str | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.monitors = {m.serial: m for m in monitors}
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"firebus-sim-hydrant-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        self.host, self.port = host, port
        self.connected = False
        self.sent = 0

    def __enter__(self) -> "HydrantFleet":
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        self.connected = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False

    def send(self, serial: str, event: str = "heartbeat", value: Any = None, ts: float | None = None) -> None:
        """Apply ``event`` to one monitor and publish its message; returns once the broker has it."""
        topic, payload = self.monitors[serial].apply(event, value, ts)
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(30)
        if not info.is_published():
            raise RuntimeError(f"broker did not confirm {topic}")
        self.sent += 1


class ScriptedEvent(msgspec.Struct, forbid_unknown_fields=True):
    at: float
    hydrant: int
    event: Literal["open", "close", "knock", "tilt", "pressure"]
    value: float | None = None


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    hydrants: int = 3
    seed: int = 0
    heartbeat_s: int = 60
    #: centre of the simulated hydrants (WGS-84), spread over ~500 m
    lat: float = 31.2304
    lon: float = 121.4737
    events: list[ScriptedEvent] = msgspec.field(default_factory=list)

    def monitors(self) -> list[HydrantMonitor]:
        rng = random.Random(self.seed)
        return [
            HydrantMonitor(f"HY-{self.seed:02d}{i:04d}", round(self.lat + rng.uniform(-0.0025, 0.0025), 6),
                           round(self.lon + rng.uniform(-0.0025, 0.0025), 6),
                           pressure=round(rng.uniform(0.25, 0.40), 3), heartbeat_s=self.heartbeat_s,
                           battery=rng.randint(60, 100), rssi=rng.randint(-110, -70))
            for i in range(self.hydrants)
        ]


def run_scenario(scenario: Scenario, host: str, port: int, duration: float, speed: float = 1.0,
                 progress: Any = None) -> int:
    """Heartbeats for every monitor plus the scripted events; returns messages sent."""
    monitors = scenario.monitors()
    plan: list[tuple[float, int, int, str, Any]] = []
    for i, m in enumerate(monitors):
        t = 0.0
        while t < duration:
            plan.append((t, 1, i, "heartbeat", None))
            t += m.heartbeat_s
    for e in scenario.events:
        if not 0 <= e.hydrant < len(monitors):
            raise ValueError(f"scripted event for hydrant {e.hydrant}: the scenario has {len(monitors)}")
        if e.at < duration:
            plan.append((e.at, 0, e.hydrant, e.event, e.value))
    plan.sort(key=lambda p: (p[0], p[1]))
    start = time.time()
    with HydrantFleet(monitors, host, port) as fleet:
        t0 = time.monotonic()
        for at, _, i, event, value in plan:
            if speed > 0:
                delay = at / speed - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
            fleet.send(monitors[i].serial, event, value, ts=start + at)
            if progress is not None:
                progress(at, monitors[i], event)
        return fleet.sent


def add_command(subparsers: Any) -> None:
    p = subparsers.add_parser("hydrant", help="publish wireless hydrant monitors to an MQTT broker",
                              description="Hydrant monitors (pressure, open/close, knock, tilt, GNSS position) as "
                                          "JSON at QoS 1 on firebus/hydrant/<serial>/up (docs/plugins/water.md).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--hydrants", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heartbeat", type=int, default=60, help="heartbeat period in seconds (default 60)")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--speed", type=float, default=1.0, help="simulated s per wall s; 0 = as fast as possible")
    p.add_argument("--event", action="append", default=[], metavar="AT:HYDRANT:EVENT[:VALUE]",
                   help="scripted event, e.g. 30:0:open or 90:1:tilt:40 or 60:2:pressure:0.09; repeatable")
    p.set_defaults(func=_run_cli)


def _run_cli(args: Any) -> int:
    import sys

    try:
        events = []
        for spec in args.event:
            parts = spec.split(":")
            events.append(ScriptedEvent(at=float(parts[0]), hydrant=int(parts[1]), event=parts[2],  # type: ignore[arg-type]
                                        value=float(parts[3]) if len(parts) > 3 else None))
        scenario = Scenario(hydrants=args.hydrants, seed=args.seed, heartbeat_s=args.heartbeat, events=events)
    except (ValueError, IndexError, msgspec.ValidationError) as exc:
        print(f"firebus sim hydrant: {exc}", file=sys.stderr)
        return 2
    for m in scenario.monitors():
        print(f"hydrant {m.serial} at {m.lat:.6f},{m.lon:.6f} → {m.topic}", flush=True)
    try:
        sent = run_scenario(scenario, args.host, args.port, args.duration, args.speed,
                            progress=lambda t, m, e: e != "heartbeat" and print(f"{t:8.1f} {m.serial} {e}", flush=True))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"firebus sim hydrant: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"sent {sent} messages, all confirmed by the broker", flush=True)
    return 0
