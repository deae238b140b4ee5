"""MQTT JSON gas alarms: one push driver type per payload profile (``firebus.sdk.jsonmap``).

Every ``profiles/*.yaml`` with ``topics:`` is a payload profile; the plugin
registers ``gas.<profile name>`` for it, so a vendor adds a model by adding a
file.  On top of the SDK's mapping, the gas driver applies the channel
conventions of ``firebus.sdk.channels``: a ``gas_lel_sensor_fault`` set in a
message makes that message's concentration a fault, never a reading.
"""

from __future__ import annotations

from importlib import resources

from firebus.sdk import DeviceReport
from firebus.sdk.channels import link_wiring_faults
from firebus.sdk.jsonmap import JsonProfile, JsonProfileDriver, decode_message, load_profile_resource, make_driver

PROFILE_PACKAGE = "firebus.plugins.gas.profiles"


class GasJsonDriver(JsonProfileDriver):
    """Base of the ``gas.<profile>`` push drivers."""

    def decode(self, topic: str, payload: bytes) -> list[DeviceReport]:
        report = decode_message(self.profile, topic, payload)
        keys = frozenset(self.profile.points)
        return [DeviceReport(identifiers=report.identifiers, readings=link_wiring_faults(report.readings, keys),
                             info=report.info)]


def payload_profiles() -> dict[str, JsonProfile]:
    """Shipped payload profiles by name (files with ``topics:``; the others are register maps)."""
    import yaml

    out: dict[str, JsonProfile] = {}
    for entry in sorted(resources.files(PROFILE_PACKAGE).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "topics" in data:
            profile = load_profile_resource(PROFILE_PACKAGE, entry.name)
            out[profile.name] = profile
    return out


def driver_for(profile: JsonProfile) -> type[JsonProfileDriver]:
    return make_driver(profile, f"gas.{profile.name}", base=GasJsonDriver)


MQTT_DRIVERS: list[type[JsonProfileDriver]] = [driver_for(p) for p in payload_profiles().values()]
