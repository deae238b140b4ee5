"""The leakage driver: an electrical-fire detector read through a register-map profile."""

from __future__ import annotations

from typing import ClassVar

from firebus.sdk.channels import ChannelDeviceOptions, ChannelProfileDriver

PROFILE_PACKAGE = "firebus.plugins.leakage.profiles"


class LeakageOptions(ChannelDeviceOptions, forbid_unknown_fields=True, omit_defaults=True):
    """``unit`` on the line, ``profile`` (shipped name or file), ``circuits`` per channel."""

    profile: str = "generic_rcd4t"
    profile_package: ClassVar[str] = PROFILE_PACKAGE


class LeakageModbusDriver(ChannelProfileDriver):
    """Residual-current / cable-temperature detectors on Modbus RTU or TCP (GB 14287.2/.3).

    Everything model-specific is in the profile; remote setting writes go through
    ``write`` (range-checked, then read back: a device that silently clamps or
    ignores the write raises ``ModbusWriteVerifyError``).
    """

    type_key = "leakage.modbus"
    Options = LeakageOptions
    poll_interval = 5.0
