"""Shared vocabularies: point classes, units, alarm categories, severities.

Plain ``StrEnum`` values so they serialise as their string and read well in
YAML, JSON and SQL.  Plugins may add point classes through
``firebus_register_point_classes``; the ones here are what the core knows.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class PointClass(StrEnum):
    """What a point measures or reports (one physical quantity or status)."""

    RESIDUAL_CURRENT = "residual_current"  # mA, electrical-fire monitoring (GB 14287.2)
    TEMPERATURE = "temperature"  # °C, cable / busbar temperature (GB 14287.3)
    CURRENT = "current"
    VOLTAGE = "voltage"
    SMOKE = "smoke"  # binary: detector in alarm
    HEAT = "heat"
    GAS_LEL = "gas_lel"  # %LEL combustible gas
    CO = "co"
    WATER_LEVEL = "water_level"  # m
    PRESSURE = "pressure"  # MPa
    PUMP_STATE = "pump_state"  # running / stopped
    PUMP_MODE = "pump_mode"  # auto / manual
    VALVE_STATE = "valve_state"  # open / closed
    FAN_STATE = "fan_state"
    FLAME = "flame"  # video or optical flame detection
    BATTERY = "battery"  # %
    SIGNAL = "signal"  # dBm
    FAULT = "fault"  # binary device-reported fault
    TAMPER = "tamper"
    STATUS = "status"  # device status word / enum
    SEQUENCE = "sequence"  # message counter, used to prove nothing is lost


#: Point classes whose changes are alarm-lane entries: device-side alarm, fault and status
#: bits, and the running states of fire equipment.  Analog quantities (residual current,
#: %LEL, temperature) are telemetry even though thresholds on them raise alarms: a
#: device's own alarm output for them is a point of its own (``electrical_device_alarm``,
#: ``gas_device_alarm_1`` …).  Any class named ``*_alarm``, ``*_alarm_*`` or ``*_fault``
#: counts too; a driver can say otherwise per point (``PointSpec.alarm``).
ALARM_POINT_CLASSES = frozenset({
    "smoke", "heat", "flame", "fire", "fault", "tamper", "status", "power_loss", "hydrant_open",
    "pump_state", "pump_mode", "valve_state", "fan_state", "gas_channel_status", "gas_over_range",
    "low_battery",
})


def is_alarm_class(point_class: str) -> bool:
    """Does a change of this point class travel on the alarm lane (see ``ALARM_POINT_CLASSES``)?"""
    return (
        point_class in ALARM_POINT_CLASSES
        or point_class.endswith(("_alarm", "_fault"))
        or "_alarm_" in point_class
    )


class Unit(StrEnum):
    """Units of measure, SI where the trade uses SI."""

    MILLIAMPERE = "mA"
    AMPERE = "A"
    VOLT = "V"
    CELSIUS = "°C"
    PERCENT_LEL = "%LEL"
    PPM = "ppm"
    METRE = "m"
    MEGAPASCAL = "MPa"
    PERCENT = "%"
    DBM = "dBm"
    NONE = ""


class Severity(IntEnum):
    """Ordered: a higher number is more urgent.  Sorting alarms uses this."""

    INFO = 10
    SUPERVISORY = 20
    FAULT = 30
    PRE_ALARM = 40
    ALARM = 50
    FIRE = 60


class AlarmCategory(StrEnum):
    """Categories are shown distinctly (GB 50116 keeps fire and gas alarms apart)."""

    FIRE = "fire"
    GAS = "gas"
    ELECTRICAL_PRE_ALARM = "electrical_pre_alarm"
    ELECTRICAL_ALARM = "electrical_alarm"
    SUPERVISORY = "supervisory"
    FAULT = "fault"
    OFFLINE = "offline"


#: (zh, en) names of the categories, as every page and message shows them (SDK 1.2)
CATEGORY_NAMES: dict[AlarmCategory, tuple[str, str]] = {
    AlarmCategory.FIRE: ("火警", "Fire"),
    AlarmCategory.GAS: ("可燃气体", "Gas"),
    AlarmCategory.ELECTRICAL_PRE_ALARM: ("电气火灾预警", "Electrical pre-alarm"),
    AlarmCategory.ELECTRICAL_ALARM: ("电气火灾报警", "Electrical alarm"),
    AlarmCategory.SUPERVISORY: ("监管", "Supervisory"),
    AlarmCategory.FAULT: ("故障", "Fault"),
    AlarmCategory.OFFLINE: ("离线", "Offline"),
}

#: (zh, en) names of an alarm's status (``AlarmEvent.status``: active/cleared × acknowledged or not)
ALARM_STATUS_NAMES: dict[str, tuple[str, str]] = {
    "active_unack": ("报警中·未确认", "Active, unacknowledged"),
    "active_ack": ("报警中·已确认", "Active, acknowledged"),
    "cleared_unack": ("已恢复·未确认", "Cleared, unacknowledged"),
    "cleared_ack": ("已处理", "Closed"),
}

#: (zh, en) names of the users' roles (``firebus.sdk.web.PanelUser.role``)
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "admin": ("管理员", "Administrator"),
    "integrator": ("集成商", "Integrator"),
    "unit_manager": ("单位消防管理人", "Unit manager"),
    "duty_officer": ("值班员", "Duty officer"),
    "supervisor": ("行业/属地监管人员", "Sector supervisor"),
    "maintenance_engineer": ("维保工程师", "Maintenance engineer"),
    "fire_inspector": ("消防监督员", "Fire inspector"),
}


def vocabulary_labels() -> dict[str, tuple[str, str]]:
    """The names above as page labels: ``cat_<category>``, ``st_<status>``, ``role_<role>``."""
    return {
        **{f"cat_{k.value}": v for k, v in CATEGORY_NAMES.items()},
        **{f"st_{k}": v for k, v in ALARM_STATUS_NAMES.items()},
        **{f"role_{k}": v for k, v in ROLE_NAMES.items()},
    }


class Availability(StrEnum):
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class PlaceKind(StrEnum):
    """Levels of the site hierarchy: unit (联网单位) → building → floor → location."""

    UNIT = "unit"
    BUILDING = "building"
    FLOOR = "floor"
    LOCATION = "location"


class ActorKind(StrEnum):
    """Who caused an event: lets an incident review tell people from machines."""

    DEVICE = "device"
    RULE = "rule"
    USER = "user"
    SYSTEM = "system"
    PLUGIN = "plugin"
