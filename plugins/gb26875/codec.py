"""GB/T 26875.3-2011 frame codec: pure functions, no I/O.

``decode(data)`` turns exactly one frame's bytes into a ``Decoded`` (the typed
``Frame``, its raw bytes, and warnings); ``encode(frame)`` turns a ``Frame`` back into
bytes.  ``encode(decode(b).frame) == b`` for every frame either mode accepts, byte for
byte: the model keeps wire values (raw padding, invalid time tags, reserved codes).

Modes (``Mode``): *strict* raises a ``CodecError`` for the first problem, pitfalls
included (version bytes, text padding, count over the maximum, missing time tags,
clock skew, reserved bits …); *tolerant* raises only for check errors (start/end,
length, checksum, command, unparseable ADU) and lists pitfalls as warnings.

The only exceptions that leave this module are ``CodecError`` and its subclasses.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

import msgspec

from . import tables
from .errors import CodecError, CodecWarning, EncodeError, Problem, error
from .model import (
    ADDRESS_SIZE,
    CST,
    DESCRIPTION_SIZE,
    END,
    HEADER_SIZE,
    MAX_ADU,
    MAX_COUNT,
    MAX_RECORDS,
    MIN_FRAME,
    OBJECT_CLASSES,
    START,
    TIME_SIZE,
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
    fire_in,
)

__all__ = [
    "Decoded",
    "DecodeOptions",
    "Mode",
    "checksum",
    "check_reply",
    "decode",
    "deny_for",
    "encode",
    "reply_frame",
]


class Mode(StrEnum):
    STRICT = "strict"
    TOLERANT = "tolerant"


class DecodeOptions(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode = Mode.STRICT
    tz: tzinfo = CST  # zone of the time tags (the standard names none; pitfall 10)
    #: when given, the header time is compared with it (device clock skew, pitfall 3)
    received_at: datetime | None = None
    #: seconds a time may run ahead of the reference (object vs header, header vs receipt)
    max_clock_skew: float = 300.0
    #: seconds an object's time tag may lie before the frame's header time (buffered events)
    max_event_age: float = 7 * 86400.0


class Decoded(msgspec.Struct, frozen=True):
    frame: Frame
    raw: bytes
    warnings: tuple[CodecWarning, ...] = ()

    @property
    def fire(self) -> bool:
        return fire_in(self.frame.adu)


def checksum(frame_without_tail: bytes | bytearray | memoryview) -> int:
    """Sum of the control unit and ADU bytes (bytes 3 … 27+L, 1-based), modulo 256."""
    return sum(frame_without_tail[2:]) & 0xFF


class _Issues:
    """Collects pitfalls: raises in strict mode, records warnings in tolerant mode."""

    def __init__(self, mode: Mode, *, encoding: bool = False) -> None:
        self.strict = mode == Mode.STRICT
        self.encoding = encoding
        self.warnings: list[CodecWarning] = []
        self.offsets: dict[str, int] = {}  # field → frame offset, for problems found after parsing

    def fail(self, code: Problem, field: str, offset: int | None, en: str, zh: str) -> CodecError:
        if self.encoding:
            return EncodeError(code, field, offset, en, zh)
        return error(code, field, offset, en, zh)

    def pitfall(self, code: Problem, field: str, offset: int | None, en: str, zh: str) -> None:
        if self.strict:
            raise self.fail(code, field, offset, en, zh)
        self.warnings.append(CodecWarning(code, field, offset, en, zh))


# --------------------------------------------------------------------------- decode

def decode(data: bytes | bytearray | memoryview, mode: Mode | str | None = None, *,
           options: DecodeOptions | None = None) -> Decoded:
    """Decode exactly one frame.  Raises ``CodecError`` (never anything else).

    ``mode`` (default strict) overrides ``options.mode`` when both are given."""
    opts = options or DecodeOptions()
    if mode is not None and Mode(mode) != opts.mode:
        opts = msgspec.structs.replace(opts, mode=Mode(mode))
    raw = bytes(data)
    issues = _Issues(opts.mode)
    _check_envelope(raw)
    header = _decode_header(raw, issues)
    adu_bytes = raw[HEADER_SIZE:-3]
    adu = _decode_adu(adu_bytes, header.command, issues)
    frame = Frame(header, adu)
    _check_clocks(frame, opts, issues)
    return Decoded(frame, raw, tuple(issues.warnings))


def _check_envelope(raw: bytes) -> None:
    n = len(raw)
    if n >= 2 and raw[:2] != START:
        raise error(Problem.START, "start", 0, f"frame starts {raw[:2].hex(' ')}, not 40 40 ('@@')",
                    f"起始符为 {raw[:2].hex(' ')}，应为 40 40（@@）")
    if n < MIN_FRAME:
        raise error(Problem.SHORT, "frame", n, f"{n} bytes, the shortest frame is {MIN_FRAME}",
                    f"只有 {n} 字节，最短的帧为 {MIN_FRAME} 字节")
    length = raw[24] | raw[25] << 8
    if length > MAX_ADU:
        raise error(Problem.ADU_TOO_LONG, "length", 24, f"ADU length {length} exceeds {MAX_ADU}",
                    f"应用数据单元长度 {length} 超过 {MAX_ADU}")
    if n != MIN_FRAME + length:
        raise error(Problem.LENGTH, "length", 24,
                    f"frame has {n} bytes but its length field says 30 + {length} = {MIN_FRAME + length}",
                    f"帧长 {n} 字节，长度字段为 30 + {length} = {MIN_FRAME + length}")
    if raw[-2:] != END:
        raise error(Problem.END, "end", n - 2, f"frame ends {raw[-2:].hex(' ')}, not 23 23 ('##')",
                    f"结束符为 {raw[-2:].hex(' ')}，应为 23 23（##）")
    expected = checksum(raw[:-3])
    if raw[-3] != expected:
        raise error(Problem.CHECKSUM, "checksum", n - 3,
                    f"checksum is 0x{raw[-3]:02X}, the bytes sum to 0x{expected:02X}",
                    f"校验和为 0x{raw[-3]:02X}，计算值为 0x{expected:02X}")
    command = raw[26]
    if not tables.command_is_valid(command):
        raise error(Problem.COMMAND, "command", 26, f"unrecognised command byte {command}",
                    f"无法识别的命令字节 {command}")


def _decode_header(raw: bytes, issues: _Issues) -> Header:
    if raw[4] != 1:
        issues.pitfall(Problem.VERSION, "version_main", 4,
                       f"main protocol version is {raw[4]} (user version {raw[5]}); the standard fixes it at 1",
                       f"主版本号为 {raw[4]}（用户版本号 {raw[5]}），标准规定为 1")
    time = TimeTag.from_bytes(raw[6:12])
    _check_time(time, "time", 6, issues)
    return Header(
        serial=raw[2] | raw[3] << 8,
        version_main=raw[4],
        version_user=raw[5],
        time=time,
        source=raw[12:18],
        destination=raw[18:24],
        command=raw[26],
    )


def _check_time(time: TimeTag, field: str, offset: int | None, issues: _Issues) -> None:
    bad = time.invalid_field()
    if bad is not None:
        index, name = bad
        value = getattr(time, name)
        issues.pitfall(Problem.TIME_TAG_INVALID, f"{field}.{name}", None if offset is None else offset + index,
                       f"time tag {time} is not a valid time ({name} = {value})",
                       f"时间标签 {time} 不是有效时间（{name} = {value}）")


def _decode_adu(adu: bytes, command: int, issues: _Issues) -> AnyAdu | None:
    base = HEADER_SIZE
    if not adu:
        return None
    if command >= 128:
        return OpaqueAdu(adu)
    if len(adu) < 2:
        raise error(Problem.ADU_STRUCTURE, "adu", base,
                    "a 1-byte ADU: an ADU holds a type flag and an object count",
                    "应用数据单元只有 1 字节：应包含类型标志和信息对象数目")
    type_flag, count = adu[0], adu[1]
    cls = OBJECT_CLASSES.get(type_flag)
    if cls is None:
        if type_flag < 128:
            issues.pitfall(Problem.RESERVED_TYPE, "adu.type", base, f"type flag {type_flag} is reserved",
                           f"类型标志 {type_flag} 为预留值")
        return RawAdu(type_flag, count, adu[2:])
    if not tables.type_allowed(command, type_flag):
        issues.pitfall(Problem.TYPE_COMMAND, "adu.type", base,
                       f"type {type_flag} ({tables.type_label(type_flag).en}) does not belong in command "
                       f"{command} ({tables.command_label(command).en})",
                       f"类型 {type_flag}（{tables.type_label(type_flag).zh}）不应出现在命令 {command}"
                       f"（{tables.command_label(command).zh}）中")
    if count == 0:
        issues.pitfall(Problem.COUNT_ZERO, "adu.count", base + 1, "object count is 0", "信息对象数目为 0")
    if count > MAX_COUNT[type_flag]:
        issues.pitfall(Problem.COUNT_OVER_MAX, "adu.count", base + 1,
                       f"{count} objects, type {type_flag} allows at most {MAX_COUNT[type_flag]}",
                       f"信息对象数目 {count}，类型 {type_flag} 最多 {MAX_COUNT[type_flag]} 个")
    size = cls.fixed_size()
    with_tag = True
    if size is not None:
        if len(adu) != 2 + count * size:
            short = size - TIME_SIZE
            if cls.has_time_tag() and count and len(adu) == 2 + count * short:
                # dgiot decides the same way whether time tags are present (pitfall 8)
                issues.pitfall(Problem.TIME_TAG_MISSING, "adu", base,
                               f"ADU length {len(adu)} = 2 + {count} × {short}: objects without their time tags",
                               f"应用数据单元长度 {len(adu)} = 2 + {count} × {short}：信息对象缺少时间标签")
                with_tag = False
            else:
                raise error(Problem.ADU_STRUCTURE, "adu.count", base + 1,
                            f"ADU length {len(adu)} ≠ 2 + {count} objects × {size} bytes = {2 + count * size}",
                            f"应用数据单元长度 {len(adu)} ≠ 2 + {count} × {size} = {2 + count * size}")
    objects: list[AduObject] = []
    pos = 2
    for i in range(count):
        obj, pos = _decode_object(cls, adu, pos, base, i, with_tag, issues)
        objects.append(obj)
    if pos != len(adu):
        raise error(Problem.ADU_STRUCTURE, "adu", base + pos,
                    f"{len(adu) - pos} bytes after the last of {count} objects",
                    f"{count} 个信息对象之后多出 {len(adu) - pos} 字节")
    return Adu(type_flag, tuple(objects))


def _need(adu: bytes, pos: int, size: int, base: int, field: str) -> None:
    if pos + size > len(adu):
        raise error(Problem.ADU_STRUCTURE, field, base + pos,
                    f"object runs past the end of the ADU ({size} bytes needed, {len(adu) - pos} left)",
                    f"信息对象超出应用数据单元末尾（需要 {size} 字节，剩余 {len(adu) - pos} 字节）")


def _decode_object(cls: type[AduObject], adu: bytes, pos: int, base: int, index: int, with_tag: bool,
                   issues: _Issues) -> tuple[AduObject, int]:
    values: dict[str, Any] = {}
    prefix = f"adu.objects[{index}]"
    for name, kind in cls.LAYOUT:
        field = f"{prefix}.{name}"
        issues.offsets[field] = base + pos
        if kind == "tag" and not with_tag:
            values[name] = None
            continue
        if kind == "u8":
            _need(adu, pos, 1, base, field)
            values[name] = adu[pos]
            pos += 1
        elif kind in ("u16", "i16"):
            _need(adu, pos, 2, base, field)
            values[name] = int.from_bytes(adu[pos:pos + 2], "little", signed=kind == "i16")
            pos += 2
        elif kind == "u32":
            _need(adu, pos, 4, base, field)
            values[name] = int.from_bytes(adu[pos:pos + 4], "little")
            pos += 4
        elif kind in ("time", "tag"):
            _need(adu, pos, TIME_SIZE, base, field)
            tag = TimeTag.from_bytes(adu[pos:pos + TIME_SIZE])
            _check_time(tag, field, base + pos, issues)
            values[name] = tag
            pos += TIME_SIZE
        elif kind == "text31":
            _need(adu, pos, DESCRIPTION_SIZE, base, field)
            raw = adu[pos:pos + DESCRIPTION_SIZE]
            _check_text(raw, field, base + pos, issues)
            values[name] = raw
            pos += DESCRIPTION_SIZE
        else:  # ltext: one length byte, then the text
            _need(adu, pos, 1, base, field)
            length = adu[pos]
            _need(adu, pos + 1, length, base, field)
            raw = adu[pos + 1:pos + 1 + length]
            _check_text(raw, field, base + pos + 1, issues)
            values[name] = raw
            pos += 1 + length
    obj = cls(**values)
    _check_object(obj, prefix, issues)
    return obj, pos


def _check_text(raw: bytes, field: str, offset: int, issues: _Issues) -> None:
    text, nul, rest = raw.partition(b"\x00")
    try:
        text.decode("gb18030")
    except UnicodeDecodeError as exc:
        issues.pitfall(Problem.TEXT_ENCODING, field, offset + exc.start, "text is not valid GB 18030",
                       "文本不是有效的 GB 18030 编码")
    if nul:
        stale = next((i for i, b in enumerate(rest) if b not in (0x00, 0x20)), None)
        if stale is not None:
            at = offset + len(text) + 1 + stale
            issues.pitfall(Problem.TEXT_PADDING, field, at,
                           f"bytes other than NUL/space after the text's terminating NUL ({len(rest) - stale} stale)",
                           f"文本结束符 NUL 之后有非填充字节（{len(rest) - stale} 字节）")


_STATE_MASKS: dict[type[AduObject], tuple[str, int]] = {
    SystemState: ("state", tables.bits_mask(tables.SYSTEM_STATE_BITS)),
    ComponentState: ("state", tables.bits_mask(tables.COMPONENT_STATE_BITS)),
    UitdState: ("state", tables.bits_mask(tables.UITD_STATE_BITS)),
    SystemOperation: ("operation", tables.bits_mask(tables.SYSTEM_OPERATION_BITS)),
    UitdOperation: ("operation", tables.bits_mask(tables.UITD_OPERATION_BITS)),
}


def _check_object(obj: AduObject, prefix: str, issues: _Issues) -> None:
    entry = _STATE_MASKS.get(type(obj))
    if entry is not None:
        name, mask = entry
        value = getattr(obj, name)
        if value & ~mask:
            issues.pitfall(Problem.RESERVED_BITS, f"{prefix}.{name}", issues.offsets.get(f"{prefix}.{name}"),
                           f"reserved bits set: 0x{value & ~mask:X}", f"预留位被置位：0x{value & ~mask:X}")
    if hasattr(obj, "reserved") and obj.reserved != 0:
        issues.pitfall(Problem.RESERVED_BYTE, f"{prefix}.reserved", issues.offsets.get(f"{prefix}.reserved"),
                       f"reserved byte is {obj.reserved}, the standard says 0",
                       f"预留字节为 {obj.reserved}，标准规定为 0")
    if hasattr(obj, "record_count") and obj.record_count > MAX_RECORDS:
        issues.pitfall(Problem.COUNT_OVER_MAX, f"{prefix}.record_count", issues.offsets.get(f"{prefix}.record_count"),
                       f"asks for {obj.record_count} records, at most {MAX_RECORDS}",
                       f"请求记录数 {obj.record_count}，最多 {MAX_RECORDS}")


def _check_clocks(frame: Frame, opts: DecodeOptions, issues: _Issues) -> None:
    header_time = frame.header.time.to_datetime(opts.tz)
    if header_time is None:
        return
    if opts.received_at is not None:
        received = opts.received_at if opts.received_at.tzinfo else opts.received_at.replace(tzinfo=opts.tz)
        skew = (header_time - received).total_seconds()
        if abs(skew) > opts.max_clock_skew:
            issues.pitfall(Problem.CLOCK_SKEW, "time", 6,
                           f"header time {frame.header.time} is {skew:+.0f} s from the receive time",
                           f"帧时间 {frame.header.time} 与接收时间相差 {skew:+.0f} 秒")
    if not isinstance(frame.adu, Adu):
        return
    for i, obj in enumerate(frame.adu.objects):
        if not obj.has_time_tag():
            continue
        tag = obj.time
        when = tag.to_datetime(opts.tz) if tag is not None else None
        if when is None:
            continue
        ahead = (when - header_time).total_seconds()
        if ahead > opts.max_clock_skew or -ahead > opts.max_event_age:
            issues.pitfall(Problem.CLOCK_SKEW, f"adu.objects[{i}].time", issues.offsets.get(f"adu.objects[{i}].time"),
                           f"event time {tag} is {ahead:+.0f} s from the frame time {frame.header.time}",
                           f"事件时间 {tag} 与帧时间 {frame.header.time} 相差 {ahead:+.0f} 秒")


# --------------------------------------------------------------------------- encode

def encode(frame: Frame, mode: Mode | str = Mode.STRICT) -> bytes:
    """Encode a frame.  Raises ``EncodeError`` for values that cannot be encoded, and in
    strict mode for pitfalls too (version ≠ 1, invalid time tags, counts over the maximum,
    missing time tags, reserved types, types that do not belong in the command)."""
    issues = _Issues(Mode(mode), encoding=True)
    h = frame.header
    _range(h.serial, 0, 0xFFFF, "serial")
    _range(h.version_main, 0, 255, "version_main")
    _range(h.version_user, 0, 255, "version_user")
    _range(h.command, 0, 255, "command")
    if h.version_main != 1:
        issues.pitfall(Problem.VERSION, "version_main", None, f"main version {h.version_main}, the standard says 1",
                       f"主版本号 {h.version_main}，标准规定为 1")
    if not tables.command_is_valid(h.command):
        issues.pitfall(Problem.COMMAND, "command", None, f"command {h.command} is not defined",
                       f"命令 {h.command} 未定义")
    _time_fields(h.time, "time")
    _check_time(h.time, "time", None, issues)
    for name in ("source", "destination"):
        value = getattr(h, name)
        if not isinstance(value, bytes) or len(value) != ADDRESS_SIZE:
            raise EncodeError(Problem.VALUE, name, None, "an address is 6 bytes", "地址应为 6 字节")
    adu = _encode_adu(frame.adu, h.command, issues)
    if len(adu) > MAX_ADU:
        raise EncodeError(Problem.ADU_TOO_LONG, "adu", None, f"ADU of {len(adu)} bytes exceeds {MAX_ADU}",
                          f"应用数据单元 {len(adu)} 字节，超过 {MAX_ADU}")
    body = bytearray(START)
    body += h.serial.to_bytes(2, "little")
    body += bytes((h.version_main, h.version_user))
    body += h.time.to_bytes()
    body += h.source + h.destination
    body += len(adu).to_bytes(2, "little")
    body.append(h.command)
    body += adu
    body.append(checksum(body))
    body += END
    return bytes(body)


def _range(value: object, lo: int, hi: int, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise EncodeError(Problem.VALUE, field, None, f"{value!r} is not an integer in {lo} … {hi}",
                          f"{value!r} 不是 {lo} … {hi} 之间的整数")


def _time_fields(tag: object, field: str) -> None:
    if not isinstance(tag, TimeTag):
        raise EncodeError(Problem.VALUE, field, None, "a time tag is required", "需要时间标签")
    for name in TimeTag.FIELDS:
        _range(getattr(tag, name), 0, 255, f"{field}.{name}")


def _encode_adu(adu: AnyAdu | None, command: int, issues: _Issues) -> bytes:
    if adu is None:
        return b""
    if isinstance(adu, OpaqueAdu):
        if command < 128:
            issues.pitfall(Problem.TYPE_COMMAND, "adu", None, "an opaque ADU is for user-defined commands (128–255)",
                           "无结构的应用数据单元只用于用户自定义命令（128–255）")
        return bytes(adu.data)
    if isinstance(adu, RawAdu):
        _range(adu.type, 0, 255, "adu.type")
        _range(adu.count, 0, 255, "adu.count")
        if adu.type < 128:
            if adu.type in OBJECT_CLASSES:
                raise EncodeError(Problem.VALUE, "adu.type", None,
                                  f"type {adu.type} is a standard type: give its objects",
                                  f"类型 {adu.type} 为标准类型：请给出信息对象")
            issues.pitfall(Problem.RESERVED_TYPE, "adu.type", None, f"type flag {adu.type} is reserved",
                           f"类型标志 {adu.type} 为预留值")
        return bytes((adu.type, adu.count)) + bytes(adu.data)
    if not isinstance(adu, Adu):
        raise EncodeError(Problem.VALUE, "adu", None, "not an ADU", "不是应用数据单元")
    cls = OBJECT_CLASSES.get(adu.type)
    if cls is None:
        raise EncodeError(Problem.VALUE, "adu.type", None,
                          f"type {adu.type} has no object layout: use a raw ADU (type, count, raw bytes)",
                          f"类型 {adu.type} 没有信息对象格式：请用原始数据（类型、数目、字节）")
    if not tables.type_allowed(command, adu.type):
        issues.pitfall(Problem.TYPE_COMMAND, "adu.type", None,
                       f"type {adu.type} does not belong in command {command}",
                       f"类型 {adu.type} 不应出现在命令 {command} 中")
    count = len(adu.objects)
    if count > 255:
        raise EncodeError(Problem.VALUE, "adu.objects", None, f"{count} objects, one byte counts at most 255",
                          f"信息对象 {count} 个，数目字节最多 255")
    if count == 0:
        issues.pitfall(Problem.COUNT_ZERO, "adu.objects", None, "no objects", "没有信息对象")
    if count > MAX_COUNT[adu.type]:
        issues.pitfall(Problem.COUNT_OVER_MAX, "adu.objects", None,
                       f"{count} objects, type {adu.type} allows at most {MAX_COUNT[adu.type]}",
                       f"信息对象 {count} 个，类型 {adu.type} 最多 {MAX_COUNT[adu.type]} 个")
    out = bytearray((adu.type, count))
    tags: set[bool] = set()
    for i, obj in enumerate(adu.objects):
        prefix = f"adu.objects[{i}]"
        if type(obj) is not cls:
            raise EncodeError(Problem.VALUE, prefix, None,
                              f"{type(obj).__name__} in an ADU of type {adu.type} ({cls.__name__})",
                              f"类型 {adu.type} 的应用数据单元中出现 {type(obj).__name__}")
        out += _encode_object(obj, prefix, issues, tags)
    if len(tags) > 1:
        raise EncodeError(Problem.VALUE, "adu.objects", None,
                          "some objects have time tags and some do not: no receiver could split them",
                          "部分信息对象有时间标签、部分没有：接收方无法拆分")
    return bytes(out)


def _encode_object(obj: AduObject, prefix: str, issues: _Issues, tags: set[bool]) -> bytes:
    out = bytearray()
    for name, kind in obj.LAYOUT:
        value = getattr(obj, name)
        field = f"{prefix}.{name}"
        if kind == "u8":
            _range(value, 0, 0xFF, field)
            out.append(value)
        elif kind == "u16":
            _range(value, 0, 0xFFFF, field)
            out += value.to_bytes(2, "little")
        elif kind == "i16":
            _range(value, -0x8000, 0x7FFF, field)
            out += value.to_bytes(2, "little", signed=True)
        elif kind == "u32":
            _range(value, 0, 0xFFFFFFFF, field)
            out += value.to_bytes(4, "little")
        elif kind in ("time", "tag"):
            if kind == "tag":
                tags.add(value is not None)
                if value is None:
                    issues.pitfall(Problem.TIME_TAG_MISSING, field, None, "object without its time tag",
                                   "信息对象缺少时间标签")
                    continue
            _time_fields(value, field)
            _check_time(value, field, None, issues)
            out += value.to_bytes()
        elif kind == "text31":
            if not isinstance(value, bytes) or len(value) != DESCRIPTION_SIZE:
                raise EncodeError(Problem.VALUE, field, None, f"a description is {DESCRIPTION_SIZE} bytes",
                                  f"描述字段应为 {DESCRIPTION_SIZE} 字节")
            out += value
        else:
            if not isinstance(value, bytes) or len(value) > 255:
                raise EncodeError(Problem.VALUE, field, None, "configuration text is at most 255 bytes",
                                  "配置文本最多 255 字节")
            out.append(len(value))
            out += value
    _check_object(obj, prefix, issues)
    return bytes(out)


# ------------------------------------------------------------------- replies

def reply_frame(request: Header, command: int, *, time: TimeTag, adu: AnyAdu | None = None,
                version: tuple[int, int] | None = None, source: bytes | None = None) -> Frame:
    """The answer to ``request``: serial echoed, source and destination swapped (vector A2).

    ``version``: the replier's own version bytes; None echoes the request's (pitfall 1).
    ``source``: the replier's own address; None takes the request's destination.
    """
    main, user = version if version is not None else (request.version_main, request.version_user)
    return Frame(Header(serial=request.serial, version_main=main, version_user=user, time=time,
                        source=request.destination if source is None else source, destination=request.source,
                        command=command), adu)


def deny_for(raw: bytes | bytearray, *, time: TimeTag, version: tuple[int, int] | None = None,
             source: bytes | None = None) -> bytes | None:
    """A deny (cmd 6, empty ADU) for a frame that failed its checks, built from its raw
    bytes: the two serial bytes echoed verbatim, addresses swapped (checklist item 2;
    ``source`` overrides the request's destination as the deny's source).
    None when fewer than the 27 header bytes arrived (nothing to answer)."""
    if len(raw) < HEADER_SIZE:
        return None
    main, user = version if version is not None else (raw[4], raw[5])
    body = bytearray(START)
    body += raw[2:4]
    body += bytes((main, user))
    body += time.to_bytes()
    body += (raw[18:24] if source is None else source) + raw[12:18]
    body += b"\x00\x00\x06"
    body.append(checksum(body))
    body += END
    return bytes(body)


def check_reply(request: Header, reply: Header, mode: Mode | str = Mode.STRICT) -> tuple[CodecWarning, ...]:
    """Does ``reply`` answer ``request``: serial echoed and addresses swapped (pitfall 2)?"""
    issues = _Issues(Mode(mode))
    if reply.serial != request.serial:
        issues.pitfall(Problem.SERIAL_ECHO, "serial", 2,
                       f"reply serial {reply.serial} ≠ request serial {request.serial}",
                       f"应答流水号 {reply.serial} ≠ 请求流水号 {request.serial}")
    if reply.source != request.destination or reply.destination != request.source:
        issues.pitfall(Problem.ADDRESS_ECHO, "source", 12,
                       "reply addresses are not the request's swapped", "应答的源/目的地址不是请求的互换")
    return tuple(issues.warnings)
