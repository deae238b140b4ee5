"""The JSON shape of a frame (``firebus gb26875 decode --json`` / ``encode``).

``frame_to_json`` writes wire values plus *derived* keys (names in zh and en, flag
names, engineering values, hex); ``frame_from_json`` reads the wire values back and
accepts the derived keys where they are alternatives (``flags`` for ``state``,
``value`` for ``raw``, ``*_hex`` for addresses and texts), checking that both agree
when both are given.  Other derived keys are ignored; unknown keys are an error, so a
misspelt key is never silently dropped.  docs/plugins/gb26875.md describes every key.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

from . import tables
from .codec import Decoded, Mode, checksum, encode
from .errors import EncodeError, Problem
from .model import (
    ADDRESS_SIZE,
    CST,
    DESCRIPTION_SIZE,
    OBJECT_CLASSES,
    Adu,
    AduObject,
    AnyAdu,
    ComponentState,
    Frame,
    Header,
    OpaqueAdu,
    RawAdu,
    SystemOperation,
    SystemState,
    TimeTag,
    UitdOperation,
    UitdState,
    address_int,
    text_of,
)

JSON = dict[str, Any]

_FLAG_BITS: dict[type[AduObject], tuple[tables.Bit, ...]] = {
    SystemState: tables.SYSTEM_STATE_BITS,
    ComponentState: tables.COMPONENT_STATE_BITS,
    UitdState: tables.UITD_STATE_BITS,
    SystemOperation: tables.SYSTEM_OPERATION_BITS,
    UitdOperation: tables.UITD_OPERATION_BITS,
}

#: keys decode writes that encode ignores
_DERIVED_OBJECT = frozenset({
    "system_type_zh", "system_type_en", "component_type_zh", "component_type_en", "state_zh", "state_en",
    "operation_zh", "operation_en", "analog_type_zh", "analog_type_en", "unit", "resolution", "fire", "test",
    "version",
})
_ALTERNATIVES = frozenset({"component_address_hex", "flags", "value", "description_hex", "text_hex"})
_DERIVED_FRAME = frozenset({
    "command_name", "command_zh", "command_en", "length", "checksum", "hex", "warnings", "heartbeat", "fire",
})
_FRAME_KEYS = frozenset({"serial", "version_main", "version_user", "time", "source", "destination", "command",
                         "adu", "source_hex", "destination_hex"}) | _DERIVED_FRAME
_ADU_DERIVED = frozenset({"type_name", "type_zh", "type_en"})


def _hex(b: bytes) -> str:
    return b.hex().upper()


def _decimals(resolution: float) -> int:
    return max(0, -int(math.floor(math.log10(resolution)))) if resolution < 1 else 0


def engineering_value(analog_type: int, raw: int) -> float | None:
    spec = tables.analog_spec(analog_type)
    if spec is None or analog_type == 0:
        return None
    return round(raw * spec.resolution, _decimals(spec.resolution))


# ------------------------------------------------------------------- to JSON

def object_to_json(obj: AduObject) -> JSON:
    d: JSON = {}
    for name, kind in obj.LAYOUT:
        v = getattr(obj, name)
        if name == "system_type":
            label = tables.system_type_label(v)
            d.update(system_type=v, system_type_zh=label.zh, system_type_en=label.en)
        elif name == "component_type":
            label = tables.component_type_label(v)
            d.update(component_type=v, component_type_zh=label.zh, component_type_en=label.en)
        elif name == "component_address":
            d.update(component_address=v, component_address_hex=_hex(v.to_bytes(4, "little")))
        elif name in ("state", "operation"):
            bits = _FLAG_BITS[type(obj)]
            label = tables.describe_flags(v, bits)
            d[name] = v
            d["flags"] = tables.flag_names(v, bits)
            d[f"{name}_zh"], d[f"{name}_en"] = label.zh, label.en
            if name == "state":
                d["fire"] = bool(v & 0b10)
                d["test"] = not v & 0b1
        elif name == "analog_type":
            spec = tables.analog_spec(v)
            label = tables.analog_label(v)
            d.update(analog_type=v, analog_type_zh=label.zh, analog_type_en=label.en)
            d["unit"] = spec.unit if spec else None
            d["resolution"] = spec.resolution if spec else None
        elif name == "raw":
            d["raw"] = v
            d["value"] = engineering_value(obj.analog_type, v)
        elif kind in ("time", "tag"):
            d[name] = None if v is None else str(v)
        elif kind == "text31":
            d.update(description=text_of(v), description_hex=_hex(v))
        elif kind == "ltext":
            d.update(text=text_of(v), text_hex=_hex(v))
        else:
            d[name] = v
    if "major" in d:
        d["version"] = f"{d['major']}.{d['minor']}"
    return d


def adu_to_json(adu: AnyAdu | None) -> JSON | None:
    if adu is None:
        return None
    if isinstance(adu, OpaqueAdu):
        return {"raw": _hex(adu.data)}
    label = tables.type_label(adu.type)
    d: JSON = {"type": adu.type, "type_name": tables.TYPE_NAMES.get(adu.type), "type_zh": label.zh,
               "type_en": label.en}
    if isinstance(adu, RawAdu):
        d.update(count=adu.count, raw=_hex(adu.data))
    else:
        d["count"] = len(adu.objects)
        d["objects"] = [object_to_json(o) for o in adu.objects]
    return d


def frame_to_json(frame: Frame, *, raw: bytes | None = None, warnings: tuple[Any, ...] = ()) -> JSON:
    h = frame.header
    label = tables.command_label(h.command)
    data = raw if raw is not None else None
    d: JSON = {
        "serial": h.serial,
        "version_main": h.version_main,
        "version_user": h.version_user,
        "time": str(h.time),
        "source": address_int(h.source),
        "source_hex": _hex(h.source),
        "destination": address_int(h.destination),
        "destination_hex": _hex(h.destination),
        "command": h.command,
        "command_name": tables.COMMAND_NAMES.get(h.command),
        "command_zh": label.zh,
        "command_en": label.en,
        "adu": adu_to_json(frame.adu),
        "heartbeat": frame.is_heartbeat,
        "fire": bool(frame.adu is not None and _fire(frame.adu)),
    }
    if data is not None:
        d["length"] = len(data) - 30
        d["checksum"] = data[-3]
        d["hex"] = _hex(data)
    d["warnings"] = [{"code": str(w.code), "field": w.field, "offset": w.offset, "en": w.en, "zh": w.zh}
                     for w in warnings]
    return d


def decoded_to_json(decoded: Decoded) -> JSON:
    return frame_to_json(decoded.frame, raw=decoded.raw, warnings=decoded.warnings)


def _fire(adu: AnyAdu) -> bool:
    from .model import fire_in

    return fire_in(adu)


# ----------------------------------------------------------------- from JSON

def _bad(field: str, en: str, zh: str) -> EncodeError:
    return EncodeError(Problem.VALUE, field, None, en, zh)


def _int(d: JSON, key: str, field: str, lo: int, hi: int, default: int | None = None) -> int:
    if key not in d or d[key] is None:
        if default is None:
            raise _bad(field, "missing (required)", "缺少必填字段")
        return default
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _bad(field, f"{v!r} is not an integer in {lo} … {hi}", f"{v!r} 不是 {lo} … {hi} 之间的整数")
    return v


def _hexbytes(v: Any, field: str, size: int | None = None) -> bytes:
    if not isinstance(v, str):
        raise _bad(field, "expected a hex string", "应为十六进制字符串")
    try:
        b = bytes.fromhex(v.replace(" ", ""))
    except ValueError:
        raise _bad(field, f"{v!r} is not hex", f"{v!r} 不是十六进制") from None
    if size is not None and len(b) != size:
        raise _bad(field, f"{len(b)} bytes, expected {size}", f"{len(b)} 字节，应为 {size} 字节")
    return b


def _time(v: Any, field: str) -> TimeTag:
    if not isinstance(v, str):
        raise _bad(field, "expected a time 'YYYY-MM-DD HH:MM:SS'", "应为时间 'YYYY-MM-DD HH:MM:SS'")
    try:
        return TimeTag.parse(v)
    except ValueError as exc:
        raise _bad(field, str(exc), f"时间格式错误：{v!r}") from None


def _text(d: JSON, field: str, size: int | None) -> bytes:
    key = "description" if size is not None else "text"
    hexkey = f"{key}_hex"
    if hexkey in d and d[hexkey] is not None:
        raw = _hexbytes(d[hexkey], f"{field}.{hexkey}", size)
        if size is None and len(raw) > 255:
            raise _bad(f"{field}.{hexkey}", "at most 255 bytes", "最多 255 字节")
        if key in d and d[key] is not None and d[key] != text_of(raw):
            raise _bad(f"{field}.{key}", f"{key} and {hexkey} disagree", f"{key} 与 {hexkey} 不一致")
        return raw
    text = d.get(key, "")
    if not isinstance(text, str):
        raise _bad(f"{field}.{key}", "expected a string", "应为字符串")
    try:
        raw = text.encode("gb18030")
    except UnicodeEncodeError:
        raise _bad(f"{field}.{key}", "text cannot be encoded in GB 18030", "文本无法用 GB 18030 编码") from None
    limit = size if size is not None else 255
    if len(raw) > limit:
        raise _bad(f"{field}.{key}", f"{len(raw)} bytes in GB 18030, at most {limit}",
                   f"GB 18030 编码后 {len(raw)} 字节，最多 {limit} 字节")
    return raw.ljust(size, b"\x00") if size is not None else raw


def _flags(d: JSON, key: str, field: str, bits: tuple[tables.Bit, ...], hi: int) -> int:
    value = d.get(key)
    names = d.get("flags")
    from_names: int | None = None
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad(f"{field}.flags", "expected a list of flag names", "应为标志名称列表")
        try:
            from_names = tables.flags_value(names, bits)
        except KeyError as exc:
            known = ", ".join(b.name for b in bits)
            raise _bad(f"{field}.flags", f"unknown flag {exc.args[0]!r} (known: {known})",
                       f"未知标志 {exc.args[0]!r}（可用：{known}）") from None
    if value is None:
        if from_names is None:
            raise _bad(f"{field}.{key}", f"missing: give {key} (integer) or flags (names)",
                       f"缺少 {key}（整数）或 flags（名称列表）")
        return from_names
    v = _int(d, key, f"{field}.{key}", 0, hi)
    if from_names is not None and from_names != v & tables.bits_mask(bits):
        raise _bad(f"{field}.flags", f"flags {names} disagree with {key} {v}", f"flags 与 {key} 不一致")
    return v


def object_from_json(cls: type[AduObject], d: Any, field: str, default_time: TimeTag) -> AduObject:
    if not isinstance(d, dict):
        raise _bad(field, "an object must be a JSON object", "信息对象应为 JSON 对象")
    names = {name for name, _ in cls.LAYOUT}
    for key in d:
        if key not in names and key not in _ALTERNATIVES and key not in _DERIVED_OBJECT:
            raise _bad(f"{field}.{key}", f"unknown key for type {cls.TYPE}", f"类型 {cls.TYPE} 没有此字段")
    values: dict[str, Any] = {}
    for name, kind in cls.LAYOUT:
        path = f"{field}.{name}"
        if name in ("state", "operation"):
            values[name] = _flags(d, name, field, _FLAG_BITS[cls], 0xFF if kind == "u8" else 0xFFFF)
        elif name == "component_address":
            if d.get(name) is None and d.get("component_address_hex") is not None:
                values[name] = int.from_bytes(_hexbytes(d["component_address_hex"], f"{path}_hex", 4), "little")
            else:
                values[name] = _int(d, name, path, 0, 0xFFFFFFFF)
                if d.get("component_address_hex") is not None:
                    alt = int.from_bytes(_hexbytes(d["component_address_hex"], f"{path}_hex", 4), "little")
                    if alt != values[name]:
                        raise _bad(f"{path}_hex", "component_address and component_address_hex disagree",
                                   "component_address 与 component_address_hex 不一致")
        elif name == "raw":
            values[name] = _analog_raw(d, values["analog_type"], path)
        elif kind == "u8":
            default = {"reserved": 0, "parameter": 10}.get(name)
            values[name] = _int(d, name, path, 0, 0xFF, default)
        elif kind in ("u16", "u32"):
            values[name] = _int(d, name, path, 0, 0xFFFF if kind == "u16" else 0xFFFFFFFF)
        elif kind == "tag":
            if name not in d:
                values[name] = default_time
            else:
                values[name] = None if d[name] is None else _time(d[name], path)
        elif kind == "time":
            if d.get(name) is None:
                if name == "time":  # a clock or system time: the header time unless given
                    values[name] = default_time
                else:
                    raise _bad(path, "missing (required)", "缺少必填字段")
            else:
                values[name] = _time(d[name], path)
        elif kind == "text31":
            values[name] = _text(d, field, DESCRIPTION_SIZE)
        elif kind == "ltext":
            values[name] = _text(d, field, None)
    return cls(**values)


def _analog_raw(d: JSON, analog_type: int, path: str) -> int:
    spec = tables.analog_spec(analog_type)
    value = d.get("value")
    if d.get("raw") is not None:
        raw = _int(d, "raw", path, -0x8000, 0x7FFF)
        if value is not None and (spec is None or analog_type == 0 or round(value / spec.resolution) != raw):
            raise _bad(path, f"raw {raw} and value {value} disagree", f"raw {raw} 与 value {value} 不一致")
        return raw
    if value is None:
        raise _bad(path, "missing: give raw (int16) or value (engineering units)", "缺少 raw（int16）或 value（工程值）")
    if spec is None or analog_type == 0:
        raise _bad(path, f"analog type {analog_type} has no resolution: give raw", f"模拟量类型 {analog_type} 无分辨率：请给出 raw")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"{path[:-3]}value", f"{value!r} is not a number", f"{value!r} 不是数值")
    raw = round(value / spec.resolution)
    if not -0x8000 <= raw <= 0x7FFF:
        raise _bad(f"{path[:-3]}value", f"{value} {spec.unit} is outside the int16 range at resolution "
                   f"{spec.resolution}", f"{value} {spec.unit} 超出 int16 范围（分辨率 {spec.resolution}）")
    return raw


def _type_code(v: Any, field: str) -> int:
    if isinstance(v, str):
        by_name = {name: code for code, name in tables.TYPE_NAMES.items()}
        if v not in by_name:
            raise _bad(field, f"unknown type name {v!r}", f"未知类型名称 {v!r}")
        return by_name[v]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
        raise _bad(field, f"{v!r} is not a type flag 0 … 255 or a type name", f"{v!r} 不是类型标志或类型名称")
    return v


def adu_from_json(d: Any, default_time: TimeTag) -> AnyAdu | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise _bad("adu", "the ADU must be a JSON object or null", "应用数据单元应为 JSON 对象或 null")
    for key in d:
        if key not in {"type", "count", "objects", "raw"} | _ADU_DERIVED:
            raise _bad(f"adu.{key}", "unknown key", "未知字段")
    if "type" not in d:
        if "raw" not in d:
            raise _bad("adu.type", "missing (required)", "缺少必填字段")
        return OpaqueAdu(_hexbytes(d["raw"], "adu.raw"))
    type_flag = _type_code(d["type"], "adu.type")
    cls = OBJECT_CLASSES.get(type_flag)
    if "raw" in d:
        if cls is not None:
            raise _bad("adu.raw", f"type {type_flag} is a standard type: give its objects",
                       f"类型 {type_flag} 为标准类型：请给出信息对象")
        return RawAdu(type_flag, _int(d, "count", "adu.count", 0, 255), _hexbytes(d["raw"], "adu.raw"))
    if cls is None:
        raise _bad("adu.raw", f"type {type_flag} has no object layout: give count and raw (hex)",
                   f"类型 {type_flag} 没有信息对象格式：请给出 count 和 raw（十六进制）")
    objects = d.get("objects")
    if not isinstance(objects, list):
        raise _bad("adu.objects", "expected a list of objects", "应为信息对象列表")
    if d.get("count") is not None and d["count"] != len(objects):
        raise _bad("adu.count", f"count {d['count']} but {len(objects)} objects", f"count 为 {d['count']}，实际 {len(objects)} 个对象")
    return Adu(type_flag, tuple(object_from_json(cls, o, f"adu.objects[{i}]", default_time)
                                for i, o in enumerate(objects)))


def _address(d: JSON, key: str) -> bytes:
    hexkey = f"{key}_hex"
    v = d.get(key)
    alt = _hexbytes(d[hexkey], hexkey, ADDRESS_SIZE) if d.get(hexkey) is not None else None
    if v is None:
        if alt is None:
            raise _bad(key, f"missing: give {key} (integer) or {hexkey} (12 hex digits, wire order)",
                       f"缺少 {key}（整数）或 {hexkey}（12 位十六进制，传输顺序）")
        return alt
    if isinstance(v, str):  # a hex string in the integer key: wire order
        raw = _hexbytes(v, key, ADDRESS_SIZE)
    else:
        raw = _int(d, key, key, 0, (1 << 48) - 1).to_bytes(ADDRESS_SIZE, "little")
    if alt is not None and alt != raw:
        raise _bad(hexkey, f"{key} and {hexkey} disagree", f"{key} 与 {hexkey} 不一致")
    return raw


def _command(v: Any) -> int:
    if isinstance(v, str):
        by_name = {name: code for code, name in tables.COMMAND_NAMES.items()}
        if v not in by_name:
            raise _bad("command", f"unknown command name {v!r} (one of {', '.join(by_name)})",
                       f"未知命令名称 {v!r}")
        return by_name[v]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
        raise _bad("command", f"{v!r} is not a command 0 … 255 or a command name", f"{v!r} 不是命令")
    return v


def frame_from_json(d: Any, *, now: datetime | None = None, tz: tzinfo = CST) -> Frame:
    """The ``Frame`` a JSON object describes (``EncodeError`` naming the key if not)."""
    if not isinstance(d, dict):
        raise _bad("frame", "expected a JSON object", "应为 JSON 对象")
    for key in d:
        if key not in _FRAME_KEYS:
            raise _bad(key, "unknown key", "未知字段")
    if d.get("time") is not None:
        time = _time(d["time"], "time")
    else:
        time = TimeTag.from_datetime(now or datetime.now(tz), tz)
    if "command" not in d:
        raise _bad("command", "missing (required)", "缺少必填字段")
    header = Header(
        serial=_int(d, "serial", "serial", 0, 0xFFFF, 0),
        version_main=_int(d, "version_main", "version_main", 0, 255, 1),
        version_user=_int(d, "version_user", "version_user", 0, 255, 1),
        time=time,
        source=_address(d, "source"),
        destination=_address(d, "destination"),
        command=_command(d["command"]),
    )
    return Frame(header, adu_from_json(d.get("adu"), time))


def encode_json(d: Any, mode: Mode | str = Mode.STRICT, *, now: datetime | None = None, tz: tzinfo = CST) -> bytes:
    return encode(frame_from_json(d, now=now, tz=tz), mode)


__all__ = ["adu_to_json", "decoded_to_json", "encode_json", "frame_from_json", "frame_to_json", "object_to_json",
           "object_from_json", "checksum"]
