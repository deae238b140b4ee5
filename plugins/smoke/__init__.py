"""Smart smoke detectors over MQTT (NB-IoT / 4G / Zigbee gateways): payload profiles as data.

Each shipped payload profile (``profiles/*.yaml``, format of ``firebus.sdk.jsonmap``)
becomes one push driver type ``smoke.<profile>``; a vendor format is one more YAML
file (see docs/plugins/smoke.md).  Identity is the detector's IMEI / IEEE address
from the payload or topic: an unknown detector that publishes is registered as
*discovered* by the core (kept, shown, not trusted to raise alarms).

Alarms come from the engine: ``two_detector`` (single-detector fire alarm, and a
confirmed fire for two detectors in one location), ``device_status`` (fault,
tamper), and this plugin's ``smoke_status`` (low battery, isolation) and
``smoke_heartbeat`` (offline after a missed reported heartbeat).  Operators mute a
detector with ``core.write_point(device_id, "mute", True)`` when its profile has a
``mute`` command; silencing a smoke alarm on the panel sends it too.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from firebus.sdk import AlarmEvent, AlarmTransition, Context, ActorKind, Manifest, hookimpl
from firebus.sdk.jsonmap import JsonProfile, JsonProfileDriver, load_profile_resource, make_driver

from .rules import SmokeHeartbeatRule, SmokeStatusRule

FIREBUS_MANIFEST = Manifest(
    name="smoke",
    description="Smart smoke detectors over MQTT: vendor payload profiles, discovery, offline, battery, tamper, mute",
    point_classes=("smoke", "fault", "tamper", "low_battery", "battery", "signal", "mute", "self_test"),
    transports=("mqtt",),
    documentation="docs/plugins/smoke.md",
)

PROFILE_PACKAGE = "firebus.plugins.smoke.profiles"

#: point classes this plugin adds to firebus.sdk.PointClass
POINT_CLASSES = [
    "low_battery", "mute", "self_test", "shielded", "heartbeat_interval", "sinr", "smoke_density", "link_quality",
    "ambient_temperature",
]


def shipped_profiles() -> dict[str, JsonProfile]:
    """Every payload profile shipped with the plugin, by name."""
    out: dict[str, JsonProfile] = {}
    for entry in sorted(resources.files(PROFILE_PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".toml")):
            profile = load_profile_resource(PROFILE_PACKAGE, entry.name)
            out[profile.name] = profile
    return out


def driver_for(profile: JsonProfile) -> type[JsonProfileDriver]:
    """The push driver type for a payload profile (``smoke.<name>``)."""
    return make_driver(profile, f"smoke.{profile.name}")


DRIVERS: list[type[JsonProfileDriver]] = [driver_for(p) for p in shipped_profiles().values()]


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    return list(DRIVERS)


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    return [SmokeHeartbeatRule, SmokeStatusRule]


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    return list(POINT_CLASSES)


@hookimpl
def firebus_startup(core: Any) -> None:
    core.bus.subscribe("smoke:mute-on-silence", _MuteOnSilence(core), types=[AlarmEvent])


class _MuteOnSilence:
    """An operator silencing a detector's fire alarm also mutes the detector's sounder.

    Only for alarms on one smoke point of a device whose profile has a ``mute``
    command; the write goes through ``core.write_point`` so the command and its
    result are on the bus and in the log like any other.
    """

    def __init__(self, core: Any) -> None:
        self.core = core
        self.log = core.logger("smoke")

    async def __call__(self, event: Any) -> None:
        alarm: AlarmEvent = event.data
        if alarm.transition != AlarmTransition.SILENCED or not alarm.point_id or not alarm.device_id:
            return
        point = self.core.registry.point_info(alarm.point_id)
        if point is None or point.point_class != "smoke" or not point.driver.startswith("smoke."):
            return
        mutable = any(p.key == "mute" and p.writable for p in self.core.registry.points_of_device(alarm.device_id))
        if not mutable:
            return
        ctx = Context(parent_id=event.context.id, actor=ActorKind.PLUGIN, actor_id="smoke")
        try:
            await self.core.write_point(alarm.device_id, "mute", True, ctx)
        except Exception as exc:  # recorded as a failed CommandResult by the core
            self.log.warning("mute after silence of alarm %s failed: %s", alarm.alarm_id, exc)
