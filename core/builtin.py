"""The core's own plugin: registers the built-in transports.

Registered like any plugin (by name ``core``) so its declarations take part
in the same duplicate-key checks as a vendor's.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="core", description="Built-in transports (MQTT, Modbus TCP/RTU) and the generic alarm rules"
)


@hookimpl
def firebus_register_transports(core: Any) -> list[type]:
    from .transports.modbus import ModbusRtuTransport, ModbusTcpTransport
    from .transports.mqtt import MqttTransport

    return [MqttTransport, ModbusTcpTransport, ModbusRtuTransport]


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    from firebus.sdk.rules import GENERIC_RULES

    return list(GENERIC_RULES)


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    # Any Modbus device can be added from a register-map profile file, no plugin needed.
    from firebus.sdk.modbus import ModbusProfileDriver

    return [ModbusProfileDriver]
