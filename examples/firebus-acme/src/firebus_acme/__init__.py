"""firebus-acme: the ACME RCM-200 residual-current detector as a firebus plugin.

Everything model-specific is the register map in ``profiles/acme_rcm200.yaml``;
the driver is ``ModbusProfileDriver`` with that profile.  Imports only ``firebus.sdk``.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

from .driver import POINT_CLASSES, AcmeRcmDriver

FIREBUS_MANIFEST = Manifest(
    name="acme",
    description="ACME RCM-200 residual-current detector (Modbus)",
    requires_sdk=">=1.0,<2",
    point_classes=("residual_current", "temperature", "fault", *POINT_CLASSES),
    transports=("modbus_tcp", "modbus_rtu"),
    documentation="https://example.com/firebus-acme",
)


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    return [AcmeRcmDriver]


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    return list(POINT_CLASSES)


__all__ = ["FIREBUS_MANIFEST", "AcmeRcmDriver"]
