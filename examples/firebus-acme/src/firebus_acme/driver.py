"""The ACME RCM-200 driver: a register-map profile on the SDK's generic Modbus driver."""

from __future__ import annotations

from firebus.sdk.modbus import ModbusProfileDriver, load_profile_resource

#: The detector's own alarm output (its relay), kept apart from the core's threshold rules.
POINT_CLASSES = ("acme_alarm_output",)


class AcmeRcmDriver(ModbusProfileDriver):
    """ACME RCM-200 on an RS-485 line or behind a Modbus TCP gateway."""

    type_key = "acme.rcm200"
    profile = load_profile_resource("firebus_acme.profiles", "acme_rcm200.yaml")
    poll_interval = 5.0
