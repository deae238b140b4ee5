"""Bilingual (zh / en) human rendering of a decoded frame, for the CLI and simulators."""

from __future__ import annotations

from typing import Any

from .jsonfmt import JSON

_OBJECT_LABELS: dict[str, str] = {
    "system_type": "系统类型 system type",
    "system_address": "系统地址 system address",
    "component_type": "部件类型 component type",
    "component_address": "部件地址 component address",
    "state": "状态 state",
    "operation": "操作 operation",
    "operator": "操作员 operator",
    "analog_type": "模拟量类型 analog type",
    "raw": "模拟量值 analog value",
    "description": "说明 description",
    "text": "配置说明 configuration",
    "time": "时间 time",
    "start_time": "起始时间 start time",
    "record_count": "记录数目 record count",
    "major": "主版本号 major version",
    "minor": "次版本号 minor version",
    "reserved": "预留 reserved",
    "parameter": "参数 parameter",
}


def _object_lines(obj: JSON) -> list[str]:
    lines: list[str] = []
    for key, value in obj.items():
        if key not in _OBJECT_LABELS:
            continue
        label = _OBJECT_LABELS[key]
        if key in ("system_type", "component_type", "analog_type"):
            text = f"{value} {obj[key + '_zh']} {obj[key + '_en']}"
        elif key == "component_address":
            text = f"{value} (hex {obj['component_address_hex']})"
        elif key in ("state", "operation"):
            flags = ", ".join(obj["flags"]) or "-"
            text = f"0x{value:04X} {obj[key + '_zh']} / {obj[key + '_en']}  [{flags}]"
        elif key == "raw":
            if obj.get("value") is not None:
                text = f"{obj['value']} {obj.get('unit') or ''} (raw {value}, ×{obj.get('resolution')})".rstrip()
            else:
                text = f"raw {value}"
        elif key in ("description", "text"):
            text = f"{value!r} (hex {obj[key + '_hex']})"
        elif key in ("time", "start_time"):
            text = "— (无 none)" if value is None else str(value)
        else:
            text = str(value)
        lines.append(f"{label}: {text}")
    return lines


def render(j: JSON) -> str:
    out: list[str] = []
    out.append(f"帧 frame: {len(j['hex']) // 2} 字节 bytes, 校验和 checksum 0x{j['checksum']:02X}"
               if "hex" in j else "帧 frame")
    out.append(f"流水号 serial: {j['serial']}")
    out.append(f"协议版本 version: 主 main {j['version_main']}, 用户 user {j['version_user']}")
    out.append(f"时间标签 time: {j['time']}")
    out.append(f"源地址 source: {j['source']} (hex {j['source_hex']})")
    out.append(f"目的地址 destination: {j['destination']} (hex {j['destination_hex']})")
    if "length" in j:
        out.append(f"应用数据单元长度 ADU length: {j['length']}")
    out.append(f"命令 command: {j['command']} {j['command_zh']} {j['command_en']}")
    adu: Any = j["adu"]
    if adu is None:
        what = "心跳 heartbeat" if j.get("heartbeat") else "空 empty"
        out.append(f"应用数据单元 ADU: {what}")
    elif "type" not in adu:
        out.append(f"应用数据单元 ADU (自定义 user-defined): hex {adu['raw']}")
    else:
        out.append(f"应用数据单元 ADU: 类型 type {adu['type']} {adu['type_zh']} / {adu['type_en']}, "
                   f"{adu['count']} 个信息对象 object(s)")
        if "objects" in adu:
            for i, obj in enumerate(adu["objects"], 1):
                lines = _object_lines(obj)
                out.append(f"  [{i}] " + (lines[0] if lines else ""))
                out.extend(f"      {line}" for line in lines[1:])
        else:
            out.append(f"  原始数据 raw: {adu['raw']}")
    if j.get("fire"):
        out.append("!! 火警 FIRE ALARM")
    for w in j.get("warnings", []):
        where = f" @{w['offset']}" if w["offset"] is not None else ""
        out.append(f"警告 warning [{w['code']}] {w['field']}{where}: {w['zh']} / {w['en']}")
    return "\n".join(out)
