"""A fleet of NB-IoT smoke detectors publishing over real MQTT, reproducible from a seed.

Real NB-IoT smoke alarms reach a platform through a carrier IoT platform that
forwards JSON (fire-domain.md §3.2: IMEI, RSRP, battery, heartbeat period,
smoke concentration, tamper flag, status categories).  This simulator speaks a
generic, documented JSON shape with the same facts, one topic per device:

Topic ``<prefix>/<imei>/up`` (default prefix ``firebus/smoke``), QoS 1::

    {"v": 1,                       # format version
     "imei": "861234567890123",
     "seq": 42,                    # per device, +1 for every message: gaps = loss
     "ts": 1700000000.25,          # device time, epoch seconds
     "event": "heartbeat",         # heartbeat | alarm | clear | low_battery | tamper |
                                   # tamper_clear | fault | fault_clear | test
     "state": {"smoke": false, "fault": false, "low_battery": false, "tamper": false},
     "battery": 87,                # %
     "rsrp": -95,                  # dBm
     "heartbeat_s": 3600,          # the device's reporting period (offline detection)
     "smoke_density": 0.0}         # %/m obscuration estimate

Every message carries the whole state, so a consumer that misses an event
message still converges on the next heartbeat.  ``timeline`` is pure (the same
seed and parameters give the same messages); ``SmokeFleetPublisher`` sends it
in simulated real time (or as fast as the broker takes it with ``speed=0``).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Iterator

import msgspec

EVENTS = ("heartbeat", "alarm", "clear", "low_battery", "tamper", "tamper_clear", "fault", "fault_clear", "test")


class ScriptedEvent(msgspec.Struct, forbid_unknown_fields=True):
    at: float  # simulated seconds from start
    device: int  # index in the fleet (0-based)
    event: str
    duration: float | None = None  # alarm/tamper/fault clear themselves after this

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; one of {EVENTS}")


class FleetConfig(msgspec.Struct, forbid_unknown_fields=True):
    devices: int = 10
    seed: int = 0
    heartbeat_s: float = 60.0
    prefix: str = "firebus/smoke"
    #: random events per device per hour (0 = only scripted ones)
    alarm_rate: float = 0.0
    tamper_rate: float = 0.0
    fault_rate: float = 0.0
    alarm_duration: float = 120.0
    battery_start: tuple[int, int] = (60, 100)  # uniform range of initial battery %
    battery_drain_per_hour: float = 0.0
    low_battery_pct: int = 20
    start_ts: float | None = None  # epoch of simulated t=0 (default: now)
    events: list[ScriptedEvent] = msgspec.field(default_factory=list)


class _Device:
    def __init__(self, index: int, rng: random.Random, cfg: FleetConfig) -> None:
        self.index = index
        self.imei = "86" + "".join(str(rng.randrange(10)) for _ in range(13))
        self.seq = 0
        self.battery = float(rng.randint(*cfg.battery_start))
        self.rsrp = rng.randint(-115, -75)
        self.phase = rng.uniform(0, cfg.heartbeat_s)
        self.state = {"smoke": False, "fault": False, "low_battery": False, "tamper": False}


class Message(msgspec.Struct, frozen=True):
    t: float  # simulated seconds
    topic: str
    payload: dict[str, Any]

    def encode(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()


def timeline(cfg: FleetConfig, duration: float) -> list[Message]:
    """Every message the fleet sends in ``[0, duration)``, in time order.  Pure and seeded."""
    rng = random.Random(cfg.seed)
    devs = [_Device(i, rng, cfg) for i in range(cfg.devices)]
    start_ts = time.time() if cfg.start_ts is None else cfg.start_ts
    # (t, order, device index, event)
    plan: list[tuple[float, int, int, str]] = []
    order = 0

    def add(t: float, dev: int, event: str) -> None:
        nonlocal order
        if 0 <= t < duration:
            plan.append((t, order, dev, event))
            order += 1

    for d in devs:
        t = d.phase
        while t < duration:
            add(t, d.index, "heartbeat")
            t += cfg.heartbeat_s
    for e in cfg.events:
        if not 0 <= e.device < cfg.devices:
            raise ValueError(f"scripted event for device {e.device}: fleet has {cfg.devices}")
        add(e.at, e.device, e.event)
        clear = {"alarm": "clear", "tamper": "tamper_clear", "fault": "fault_clear"}.get(e.event)
        if clear and e.duration is not None:
            add(e.at + e.duration, e.device, clear)
    for rate, event, clear in ((cfg.alarm_rate, "alarm", "clear"), (cfg.tamper_rate, "tamper", "tamper_clear"),
                               (cfg.fault_rate, "fault", "fault_clear")):
        if rate <= 0:
            continue
        for d in devs:
            t = rng.expovariate(rate / 3600)
            while t < duration:
                add(t, d.index, event)
                add(t + cfg.alarm_duration, d.index, clear)
                t += cfg.alarm_duration + rng.expovariate(rate / 3600)
    plan.sort()

    out: list[Message] = []
    for t, _, i, event in plan:
        d = devs[i]
        battery = max(0.0, d.battery - cfg.battery_drain_per_hour * t / 3600)
        st = d.state
        if event == "alarm":
            st["smoke"] = True
        elif event == "clear":
            st["smoke"] = False
        elif event == "tamper":
            st["tamper"] = True
        elif event == "tamper_clear":
            st["tamper"] = False
        elif event == "fault":
            st["fault"] = True
        elif event == "fault_clear":
            st["fault"] = False
        if battery < cfg.low_battery_pct and not st["low_battery"]:
            st["low_battery"] = True
            if event == "heartbeat":
                event = "low_battery"  # GB 20517-2025 5.11.1: a distinct low-battery signal
        elif event == "low_battery":
            st["low_battery"] = True
        d.seq += 1
        payload = {
            "v": 1,
            "imei": d.imei,
            "seq": d.seq,
            "ts": round(start_ts + t, 3),
            "event": event,
            "state": dict(st),
            "battery": int(battery),
            "rsrp": d.rsrp,
            # whole seconds as devices send them; a sub-second test period stays exact
            "heartbeat_s": int(cfg.heartbeat_s) if float(cfg.heartbeat_s).is_integer() else cfg.heartbeat_s,
            "smoke_density": round(rng.uniform(8, 20), 1) if st["smoke"] else round(rng.uniform(0, 0.3), 2),
        }
        out.append(Message(t, f"{cfg.prefix}/{d.imei}/up", payload))
    return out


class SmokeFleetPublisher:
    """Publish a fleet's timeline to a broker at QoS 1 and wait for every PUBACK."""

    def __init__(self, cfg: FleetConfig, host: str = "127.0.0.1", port: int = 1883, *,
                 client_id: str | None = None, username: str | None = None, password: str | None = None,
                 tls: bool = False, ca_file: str | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.cfg = cfg
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"firebus-sim-smoke-{cfg.seed}", protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(ca_certs=ca_file)
        self.client.max_inflight_messages_set(200)
        self.host, self.port = host, port
        self.sent: list[Message] = []
        self.confirm_timeout = 30.0

    def _confirm(self, infos: list[Any]) -> None:
        _confirm_all(infos, self.confirm_timeout)

    def run(self, duration: float, *, speed: float = 1.0, progress: Any = None) -> list[Message]:
        """Send ``duration`` simulated seconds; ``speed`` 0 = as fast as possible."""
        msgs = timeline(self.cfg, duration)
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        try:
            t0 = time.monotonic()
            infos = []
            for m in msgs:
                if speed > 0:
                    delay = m.t / speed - (time.monotonic() - t0)
                    if delay > 0:
                        time.sleep(delay)
                infos.append(self.client.publish(m.topic, m.encode(), qos=1))
                self.sent.append(m)
                if progress is not None:
                    progress(m)
                if len(infos) >= 1000:
                    self._confirm(infos)
            self._confirm(infos)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
        return msgs


def _confirm_all(infos: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout  # one deadline for the batch, not one per message
    for info in infos:
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        if not info.is_published():
            raise RuntimeError(f"broker did not confirm every message within {timeout}s")
    infos.clear()


def iter_imeis(cfg: FleetConfig) -> Iterator[str]:
    rng = random.Random(cfg.seed)
    for i in range(cfg.devices):
        yield _Device(i, rng, cfg).imei
