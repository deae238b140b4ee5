"""GB/T 26875.3-2011 code tables with Chinese and English names.

Sources (see /work/shared/reference/gb26875-3.md): Table 2 (commands), Table 3 (type
flags), Table 4 (system types), Table 5 (component types; complete list as in the
ActorLancer digest, which agrees with the standard wherever both were compared),
Table 6 (analog types), §8.2.1 (state and operation bits; bit names as in
shootingfans/codec_gb26875_3_2011 ``constant/type.go``).

Codes are plain ints on the wire and stay ints in the model: reserved and
user-defined values must survive a round trip.  These tables only *name* them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

import msgspec


class Label(msgspec.Struct, frozen=True):
    zh: str
    en: str

    def both(self) -> str:
        return f"{self.zh} {self.en}"


RESERVED = Label("预留", "reserved")
USER_DEFINED = Label("用户自定义", "user-defined")


class Command(IntEnum):
    """Command byte (Table 2)."""

    CONTROL = 1
    SEND_DATA = 2
    CONFIRM = 3
    REQUEST = 4
    RESPONSE = 5
    DENY = 6


COMMAND_LABELS: dict[int, Label] = {
    0: RESERVED,
    1: Label("控制命令", "control"),
    2: Label("发送数据", "send data"),
    3: Label("确认", "confirm"),
    4: Label("请求", "request"),
    5: Label("应答", "response"),
    6: Label("否认", "deny"),
}

#: JSON/CLI names of the commands (``"command": "send_data"``)
COMMAND_NAMES: dict[int, str] = {c.value: c.name.lower() for c in Command}


def command_is_valid(code: int) -> bool:
    """Commands a receiver accepts (§6.5.3): 1–6 and the user-defined 128–255."""
    return 1 <= code <= 6 or 128 <= code <= 255


def command_label(code: int) -> Label:
    if code in COMMAND_LABELS:
        return COMMAND_LABELS[code]
    return USER_DEFINED if code >= 128 else RESERVED


class TypeFlag(IntEnum):
    """ADU type flags defined by Table 3 (reserved values are not members)."""

    SYSTEM_STATE = 1
    COMPONENT_STATE = 2
    COMPONENT_ANALOG = 3
    SYSTEM_OPERATION = 4
    SYSTEM_SOFTWARE_VERSION = 5
    SYSTEM_CONFIGURATION = 6
    COMPONENT_CONFIGURATION = 7
    SYSTEM_TIME = 8
    UITD_STATE = 21
    UITD_OPERATION = 24
    UITD_SOFTWARE_VERSION = 25
    UITD_CONFIGURATION = 26
    UITD_TIME = 28
    READ_SYSTEM_STATE = 61
    READ_COMPONENT_STATE = 62
    READ_COMPONENT_ANALOG = 63
    READ_SYSTEM_OPERATIONS = 64
    READ_SYSTEM_SOFTWARE_VERSION = 65
    READ_SYSTEM_CONFIGURATION = 66
    READ_COMPONENT_CONFIGURATION = 67
    READ_SYSTEM_TIME = 68
    READ_UITD_STATE = 81
    READ_UITD_OPERATIONS = 84
    READ_UITD_SOFTWARE_VERSION = 85
    READ_UITD_CONFIGURATION = 86
    READ_UITD_TIME = 88
    INIT_UITD = 89
    SYNC_CLOCK = 90
    DUTY_CHECK = 91


TYPE_LABELS: dict[int, Label] = {
    1: Label("上传建筑消防设施系统状态", "facility system state"),
    2: Label("上传建筑消防设施部件运行状态", "facility component running state"),
    3: Label("上传建筑消防设施部件模拟量值", "facility component analog value"),
    4: Label("上传建筑消防设施操作信息", "facility operation record"),
    5: Label("上传建筑消防设施软件版本", "facility software version"),
    6: Label("上传建筑消防设施系统配置情况", "facility system configuration"),
    7: Label("上传建筑消防设施部件配置情况", "facility component configuration"),
    8: Label("上传建筑消防设施系统时间", "facility system time"),
    21: Label("上传用户信息传输装置运行状态", "UITD running state"),
    24: Label("上传用户信息传输装置操作信息", "UITD operation record"),
    25: Label("上传用户信息传输装置软件版本", "UITD software version"),
    26: Label("上传用户信息传输装置配置情况", "UITD configuration"),
    28: Label("上传用户信息传输装置系统时间", "UITD system time"),
    61: Label("读建筑消防设施系统状态", "read facility system state"),
    62: Label("读建筑消防设施部件运行状态", "read facility component state"),
    63: Label("读建筑消防设施部件模拟量值", "read facility component analog value"),
    64: Label("读建筑消防设施操作信息", "read facility operation records"),
    65: Label("读建筑消防设施软件版本", "read facility software version"),
    66: Label("读建筑消防设施系统配置情况", "read facility system configuration"),
    67: Label("读建筑消防设施部件配置情况", "read facility component configuration"),
    68: Label("读建筑消防设施系统时间", "read facility system time"),
    81: Label("读用户信息传输装置运行状态", "read UITD running state"),
    84: Label("读用户信息传输装置操作信息记录", "read UITD operation records"),
    85: Label("读用户信息传输装置软件版本", "read UITD software version"),
    86: Label("读用户信息传输装置配置情况", "read UITD configuration"),
    88: Label("读用户信息传输装置系统时间", "read UITD system time"),
    89: Label("初始化用户信息传输装置", "initialise UITD"),
    90: Label("同步用户信息传输装置时钟", "synchronise UITD clock"),
    91: Label("查岗命令", "duty-officer check"),
}

#: JSON/CLI names of the type flags (``"type": "component_state"``)
TYPE_NAMES: dict[int, str] = {t.value: t.name.lower() for t in TypeFlag}

UPSTREAM_TYPES = frozenset(t for t in TypeFlag if t < 61)
REQUEST_TYPES = frozenset(t for t in TypeFlag if 61 <= t <= 88)
CONTROL_TYPES = frozenset({TypeFlag.INIT_UITD, TypeFlag.SYNC_CLOCK, TypeFlag.DUTY_CHECK})


def type_label(code: int) -> Label:
    if code in TYPE_LABELS:
        return TYPE_LABELS[code]
    return USER_DEFINED if code >= 128 else RESERVED


def type_allowed(command: int, type_flag: int) -> bool:
    """Whether an ADU of ``type_flag`` belongs in ``command`` (§5, §8): uploads in 2 and 5,
    reads in 4, controls in 1.  User-defined types and commands are always allowed."""
    if type_flag >= 128 or command >= 128:
        return True
    if command in (Command.SEND_DATA, Command.RESPONSE):
        return type_flag in UPSTREAM_TYPES
    if command == Command.REQUEST:
        return type_flag in REQUEST_TYPES
    if command == Command.CONTROL:
        return type_flag in CONTROL_TYPES
    return False  # confirm and deny carry no ADU in the standard


def response_type(request_type: int) -> int:
    """The upload type answering a read request (81→21, 85→25, 61→1 …; vectors F1/F2)."""
    return request_type - 60


# ---------------------------------------------------------------- Table 4: system type

SYSTEM_TYPES: dict[int, Label] = {
    0: Label("通用", "general"),
    1: Label("火灾报警系统", "fire detection and alarm system"),
    10: Label("消防联动控制器", "fire linkage controller"),
    11: Label("消火栓系统", "hydrant system"),
    12: Label("自动喷水灭火系统", "automatic sprinkler system"),
    13: Label("气体灭火系统", "gas extinguishing system"),
    14: Label("水喷雾灭火系统（泵启动方式）", "water spray system (pump start)"),
    15: Label("水喷雾灭火系统（压力容器启动方式）", "water spray system (pressure-vessel start)"),
    16: Label("泡沫灭火系统", "foam extinguishing system"),
    17: Label("干粉灭火系统", "dry-powder extinguishing system"),
    18: Label("防烟排烟系统", "smoke control and exhaust system"),
    19: Label("防火门及卷帘系统", "fire doors and shutters"),
    20: Label("消防电梯", "fire elevator"),
    21: Label("消防应急广播", "emergency broadcast"),
    22: Label("消防应急照明和疏散指示系统", "emergency lighting and evacuation signs"),
    # The ActorLancer digest repeats "fire elevator" here; the standard says fire power supply.
    23: Label("消防电源", "fire power supply"),
    24: Label("消防电话", "fire telephone"),
}


def system_type_label(code: int) -> Label:
    if code in SYSTEM_TYPES:
        return SYSTEM_TYPES[code]
    return USER_DEFINED if code >= 128 else RESERVED


# ------------------------------------------------------------- Table 5: component type

COMPONENT_TYPES: dict[int, Label] = {
    0: Label("通用", "general"),
    1: Label("火灾报警控制器", "fire alarm controller"),
    10: Label("可燃气体探测器", "combustible gas detector"),
    11: Label("点型可燃气体探测器", "point combustible gas detector"),
    12: Label("独立式可燃气体探测器", "independent combustible gas detector"),
    13: Label("线型可燃气体探测器", "line combustible gas detector"),
    16: Label("电气火灾监控报警器", "electrical-fire monitoring alarm unit"),
    17: Label("剩余电流式电气火灾监控探测器", "residual-current electrical-fire detector"),
    18: Label("测温式电气火灾监控探测器", "temperature electrical-fire detector"),
    21: Label("探测回路", "detection loop"),
    22: Label("火灾显示盘", "fire display panel"),
    23: Label("手动火灾报警按钮", "manual call point"),
    24: Label("消火栓按钮", "hydrant button"),
    25: Label("火灾探测器", "fire detector"),
    30: Label("感温火灾探测器", "heat detector"),
    31: Label("点型感温火灾探测器", "point heat detector"),
    32: Label("点型感温火灾探测器（S型）", "point heat detector, S type"),
    33: Label("点型感温火灾探测器（R型）", "point heat detector, R type"),
    34: Label("线型感温火灾探测器", "line heat detector"),
    35: Label("线型感温火灾探测器（S型）", "line heat detector, S type"),
    36: Label("线型感温火灾探测器（R型）", "line heat detector, R type"),
    37: Label("光纤感温火灾探测器", "fibre-optic heat detector"),
    40: Label("感烟火灾探测器", "smoke detector"),
    41: Label("点型离子感烟火灾探测器", "point ionisation smoke detector"),
    42: Label("点型光电感烟火灾探测器", "point photoelectric smoke detector"),
    43: Label("线型光束感烟火灾探测器", "beam smoke detector"),
    44: Label("吸气式感烟火灾探测器", "aspirating smoke detector"),
    50: Label("复合式火灾探测器", "multi-criteria detector"),
    51: Label("复合式感烟感温火灾探测器", "multi-criteria smoke and heat detector"),
    52: Label("复合式感光感温火灾探测器", "multi-criteria flame and heat detector"),
    53: Label("复合式感光感烟火灾探测器", "multi-criteria flame and smoke detector"),
    61: Label("紫外火焰探测器", "UV flame detector"),
    62: Label("红外火焰探测器", "IR flame detector"),
    69: Label("感光火灾探测器", "optical fire detector"),
    74: Label("气体探测器", "gas detector"),
    78: Label("图像摄像方式火灾探测器", "image / video fire detector"),
    79: Label("感声火灾探测器", "acoustic fire detector"),
    81: Label("气体灭火控制器", "gas-extinguishing controller"),
    82: Label("消防电气控制装置", "fire electrical control device"),
    83: Label("消防控制室图形显示装置", "control-room graphic display"),
    84: Label("模块", "module"),
    85: Label("输入模块", "input module"),
    86: Label("输出模块", "output module"),
    87: Label("输入/输出模块", "input/output module"),
    88: Label("中继模块", "relay module"),
    91: Label("消防水泵", "fire pump"),
    92: Label("消防水箱", "fire water tank"),
    95: Label("喷淋泵", "sprinkler pump"),
    96: Label("水流指示器", "water-flow indicator"),
    97: Label("信号阀", "signal valve"),
    98: Label("报警阀", "alarm valve"),
    99: Label("压力开关", "pressure switch"),
    101: Label("阀驱动装置", "valve actuator"),
    102: Label("防火门", "fire door"),
    103: Label("防火阀", "fire damper"),
    104: Label("通风空调", "ventilation / air conditioning"),
    105: Label("泡沫液泵", "foam-concentrate pump"),
    106: Label("管网电磁阀", "pipe-network solenoid valve"),
    111: Label("防烟排烟风机", "smoke-control fan"),
    113: Label("排烟防火阀", "smoke-exhaust fire damper"),
    114: Label("常闭送风口", "normally-closed air-supply outlet"),
    115: Label("排烟口", "smoke-exhaust outlet"),
    116: Label("电控挡烟垂壁", "electrically controlled smoke curtain"),
    117: Label("防火卷帘控制器", "fire-shutter controller"),
    118: Label("防火门监控器", "fire-door monitor"),
    121: Label("警报装置", "alarm device"),
}


def component_type_label(code: int) -> Label:
    if code in COMPONENT_TYPES:
        return COMPONENT_TYPES[code]
    return USER_DEFINED if code >= 128 else RESERVED


# -------------------------------------------------------------- Table 6: analog type

class AnalogSpec(msgspec.Struct, frozen=True):
    label: Label
    unit: str
    resolution: float  # engineering value = raw × resolution


#: firebus' user-defined analog code for residual current in mA: Table 6 has only
#: current in 0.1 A (type 9), too coarse for a 300 mA alarm setting.  Document it per centre.
ANALOG_RESIDUAL_CURRENT_MA = 128

ANALOG_TYPES: dict[int, AnalogSpec] = {
    0: AnalogSpec(Label("未用", "unused"), "", 1.0),
    1: AnalogSpec(Label("事件计数", "event count"), "", 1.0),
    2: AnalogSpec(Label("高度", "height"), "m", 0.01),
    3: AnalogSpec(Label("温度", "temperature"), "°C", 0.1),
    4: AnalogSpec(Label("压力", "pressure"), "MPa", 0.1),
    5: AnalogSpec(Label("压力", "pressure"), "kPa", 0.1),
    6: AnalogSpec(Label("气体浓度", "gas concentration"), "%LEL", 0.1),
    7: AnalogSpec(Label("时间", "time"), "s", 1.0),
    8: AnalogSpec(Label("电压", "voltage"), "V", 0.1),
    9: AnalogSpec(Label("电流", "current"), "A", 0.1),
    10: AnalogSpec(Label("流量", "flow"), "L/s", 0.1),
    11: AnalogSpec(Label("风量", "air volume"), "m³/min", 0.1),
    12: AnalogSpec(Label("风速", "wind speed"), "m/s", 1.0),
    ANALOG_RESIDUAL_CURRENT_MA: AnalogSpec(
        Label("剩余电流（firebus 自定义）", "residual current (firebus user-defined)"), "mA", 1.0),
}


def analog_spec(code: int) -> AnalogSpec | None:
    return ANALOG_TYPES.get(code)


def analog_label(code: int) -> Label:
    spec = ANALOG_TYPES.get(code)
    if spec is not None:
        return spec.label
    return USER_DEFINED if code >= 128 else RESERVED


# ------------------------------------------------------------ §8.2.1: state and flags

class Bit(msgspec.Struct, frozen=True):
    index: int
    name: str  # stable JSON name of the set bit
    set: Label  # meaning when the bit is 1
    clear: Label | None = None  # meaning worth showing when it is 0 (bit 0: test)


class SystemStateBit(StrEnum):
    NORMAL = "normal"
    FIRE_ALARM = "fire_alarm"
    FAULT = "fault"
    SHIELDED = "shielded"
    SUPERVISORY = "supervisory"
    STARTED = "started"
    FEEDBACK = "feedback"
    DELAYED = "delayed"
    MAIN_POWER_FAULT = "main_power_fault"
    BACKUP_POWER_FAULT = "backup_power_fault"
    BUS_FAULT = "bus_fault"
    MANUAL_MODE = "manual_mode"
    CONFIG_CHANGED = "config_changed"
    RESET = "reset"


class ComponentStateBit(StrEnum):
    NORMAL = "normal"
    FIRE_ALARM = "fire_alarm"
    FAULT = "fault"
    SHIELDED = "shielded"
    SUPERVISORY = "supervisory"
    STARTED = "started"
    FEEDBACK = "feedback"
    DELAYED = "delayed"
    POWER_FAULT = "power_fault"


class UitdStateBit(StrEnum):
    NORMAL = "normal"
    FIRE_ALARM = "fire_alarm"
    FAULT = "fault"
    MAIN_POWER_FAULT = "main_power_fault"
    BACKUP_POWER_FAULT = "backup_power_fault"
    CHANNEL_FAULT = "channel_fault"
    LINE_FAULT = "line_fault"


class OperationBit(StrEnum):
    RESET = "reset"
    SILENCE = "silence"
    MANUAL_ALARM = "manual_alarm"
    ALARM_CLEARED = "alarm_cleared"
    SELF_TEST = "self_test"
    ACKNOWLEDGE = "acknowledge"  # type 4
    DUTY_CHECK_ANSWERED = "duty_check_answered"  # type 24
    TEST = "test"


_TEST = Label("测试", "test")

_COMMON_STATE = (
    Bit(0, "normal", Label("正常运行", "normal operation"), _TEST),
    Bit(1, "fire_alarm", Label("火警", "fire alarm")),
    Bit(2, "fault", Label("故障", "fault")),
    Bit(3, "shielded", Label("屏蔽", "disabled / shielded")),
    Bit(4, "supervisory", Label("监管", "supervisory")),
    Bit(5, "started", Label("启动（开启）", "started / open")),
    Bit(6, "feedback", Label("反馈", "feedback")),
    Bit(7, "delayed", Label("延时状态", "delay running")),
)

SYSTEM_STATE_BITS: tuple[Bit, ...] = _COMMON_STATE + (
    Bit(8, "main_power_fault", Label("主电故障", "main-power fault")),
    Bit(9, "backup_power_fault", Label("备电故障", "backup-power fault")),
    Bit(10, "bus_fault", Label("总线故障", "bus fault")),
    Bit(11, "manual_mode", Label("手动状态", "manual mode"), Label("自动状态", "automatic mode")),
    Bit(12, "config_changed", Label("配置改变", "configuration changed")),
    Bit(13, "reset", Label("复位", "reset")),
)

COMPONENT_STATE_BITS: tuple[Bit, ...] = _COMMON_STATE + (
    Bit(8, "power_fault", Label("电源故障", "power fault")),
)

UITD_STATE_BITS: tuple[Bit, ...] = (
    Bit(0, "normal", Label("正常监视", "normal monitoring"), _TEST),
    Bit(1, "fire_alarm", Label("火警", "fire alarm")),
    Bit(2, "fault", Label("故障", "fault")),
    Bit(3, "main_power_fault", Label("主电故障", "main-power fault")),
    Bit(4, "backup_power_fault", Label("备电故障", "backup-power fault")),
    Bit(5, "channel_fault", Label("与监控中心通信信道故障", "communication channel to the centre faulty")),
    Bit(6, "line_fault", Label("监测连接线路故障", "monitoring-line fault")),
)

_COMMON_OPS = (
    Bit(0, "reset", Label("复位", "reset")),
    Bit(1, "silence", Label("消音", "silence")),
    Bit(2, "manual_alarm", Label("手动报警", "manual alarm")),
    Bit(3, "alarm_cleared", Label("警情消除", "alarm cleared")),
    Bit(4, "self_test", Label("自检", "self-test")),
)

SYSTEM_OPERATION_BITS: tuple[Bit, ...] = _COMMON_OPS + (
    Bit(5, "acknowledge", Label("确认", "acknowledge")),
    Bit(6, "test", Label("测试", "test")),
)

UITD_OPERATION_BITS: tuple[Bit, ...] = _COMMON_OPS + (
    Bit(5, "duty_check_answered", Label("查岗应答", "duty check answered")),
    Bit(6, "test", Label("测试", "test")),
)


def bits_mask(bits: tuple[Bit, ...]) -> int:
    mask = 0
    for b in bits:
        mask |= 1 << b.index
    return mask


def flag_names(value: int, bits: tuple[Bit, ...]) -> list[str]:
    return [b.name for b in bits if value >> b.index & 1]


def flags_value(names: list[str], bits: tuple[Bit, ...]) -> int:
    """Inverse of ``flag_names``; raises ``KeyError`` naming the unknown flag."""
    by_name = {b.name: b for b in bits}
    value = 0
    for name in names:
        if name not in by_name:
            raise KeyError(name)
        value |= 1 << by_name[name].index
    return value


def describe_flags(value: int, bits: tuple[Bit, ...]) -> Label:
    """Readable summary: set bits, plus the meaningful 0 of bit 0 (test) and bit 11."""
    zh: list[str] = []
    en: list[str] = []
    for b in bits:
        if value >> b.index & 1:
            zh.append(b.set.zh)
            en.append(b.set.en)
        elif b.clear is not None and b.index == 0:
            zh.append(b.clear.zh)
            en.append(b.clear.en)
    unknown = value & ~bits_mask(bits)
    if unknown:
        zh.append(f"预留位 0x{unknown:X}")
        en.append(f"reserved bits 0x{unknown:X}")
    return Label("、".join(zh) or "无", ", ".join(en) or "none")
