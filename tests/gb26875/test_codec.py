"""Codec checks: frame envelope (checklist 2), tolerance (6), counts (7), every ADU type both
directions, strict errors naming field and offset, encode validation, code tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from firebus.plugins.gb26875 import codec, tables
from firebus.plugins.gb26875.errors import (
    AduError,
    CodecError,
    CommandError,
    EncodeError,
    FrameError,
    HeaderError,
    Problem,
)
from firebus.plugins.gb26875.model import (
    CST,
    MAX_COUNT,
    OBJECT_CLASSES,
    Adu,
    ComponentAnalog,
    ComponentConfiguration,
    ComponentState,
    DutyCheck,
    Frame,
    Header,
    OpaqueAdu,
    RawAdu,
    ReadComponentAnalog,
    ReadComponentConfiguration,
    ReadComponentState,
    ReadSystemConfiguration,
    ReadSystemOperations,
    ReadSystemSoftwareVersion,
    ReadSystemState,
    ReadSystemTime,
    ReadUitdConfiguration,
    ReadUitdOperations,
    ReadUitdSoftwareVersion,
    ReadUitdState,
    SystemConfiguration,
    SystemOperation,
    SystemSoftwareVersion,
    SystemState,
    SystemTime,
    TimeTag,
    UitdConfiguration,
    UitdOperation,
    UitdSoftwareVersion,
    UitdState,
    UitdTime,
    address,
)

T = TimeTag.parse("2012-09-26 09:58:02")
TH = TimeTag.parse("2012-09-26 09:58:32")
UITD, CENTRE = address(889), address(88888)


def frame(adu, command: int = 2, **header) -> bytes:
    h = dict(serial=7, time=TH, source=UITD, destination=CENTRE, command=command) | header
    return codec.encode(Frame(Header(**h), adu), codec.Mode.TOLERANT)


def refix(data: bytearray) -> bytes:
    """Recompute the checksum after editing a frame."""
    data[-3] = codec.checksum(data[:-3])
    return bytes(data)


DESC = "1号回路2号 光电感烟".encode("gb18030").ljust(31, b"\x00")

#: one valid ADU of every type, with the command it belongs in
EVERY_TYPE: list[tuple[int, Adu]] = [
    (2, Adu(1, (SystemState(system_type=1, system_address=1, state=0b11, time=T),))),
    (2, Adu(2, (ComponentState(system_type=1, system_address=1, component_type=42, component_address=0x00020001,
                               state=0b101, description=DESC, time=T),))),
    (2, Adu(3, (ComponentAnalog(system_type=0, system_address=1, component_type=18, component_address=5,
                                analog_type=3, raw=-125, time=T),))),
    (2, Adu(4, (SystemOperation(system_type=1, system_address=1, operation=0b10, operator=3, time=T),))),
    (5, Adu(5, (SystemSoftwareVersion(system_type=1, system_address=1, major=2, minor=3),))),
    (5, Adu(6, (SystemConfiguration(system_type=1, system_address=1, text="配置".encode("gb18030")),
                SystemConfiguration(system_type=11, system_address=2, text=b"")))),
    (5, Adu(7, (ComponentConfiguration(system_type=1, system_address=1, component_type=23, component_address=9,
                                       description=DESC),))),
    (5, Adu(8, (SystemTime(system_type=1, system_address=1, time=T),))),
    (2, Adu(21, (UitdState(state=0b1001, time=T),))),
    (2, Adu(24, (UitdOperation(operation=0b100000, operator=1, time=T),))),
    (5, Adu(26, (UitdConfiguration(text=b"uitd v1"),))),
    (4, Adu(61, (ReadSystemState(system_type=1, system_address=1), ReadSystemState(system_type=11, system_address=1)))),
    (4, Adu(62, (ReadComponentState(system_type=1, system_address=1, component_address=0x00020001),))),
    (4, Adu(63, (ReadComponentAnalog(system_type=0, system_address=1, component_address=5),))),
    (4, Adu(64, (ReadSystemOperations(system_type=1, system_address=1, record_count=10, start_time=T),))),
    (4, Adu(65, (ReadSystemSoftwareVersion(system_type=1, system_address=1),))),
    (4, Adu(66, (ReadSystemConfiguration(system_type=1, system_address=1),))),
    (4, Adu(67, (ReadComponentConfiguration(system_type=1, system_address=1, component_address=9),))),
    (4, Adu(68, (ReadSystemTime(system_type=1, system_address=1),))),
    (4, Adu(84, (ReadUitdOperations(record_count=5, start_time=T),))),
    (4, Adu(86, (ReadUitdConfiguration(),))),
    (1, Adu(91, (DutyCheck(parameter=0),))),
]


def test_every_type_has_a_case() -> None:
    covered = {adu.type for _, adu in EVERY_TYPE} | {25, 28, 81, 85, 88, 89, 90}  # the rest: test_vectors
    assert covered == set(OBJECT_CLASSES)


@pytest.mark.parametrize("command, adu", EVERY_TYPE, ids=[str(a.type) for _, a in EVERY_TYPE])
def test_every_type_round_trips_strictly(command: int, adu: Adu) -> None:
    data = frame(adu, command)
    cls = OBJECT_CLASSES[adu.type]
    size = cls.fixed_size()
    if size is not None:
        assert len(data) == 30 + 2 + len(adu.objects) * size
    decoded = codec.decode(data)
    assert decoded.frame.adu == adu and decoded.warnings == ()
    assert codec.encode(decoded.frame) == data


def test_object_sizes_match_the_standard() -> None:
    sizes = {t: c.fixed_size() for t, c in OBJECT_CLASSES.items()}
    assert sizes == {1: 10, 2: 46, 3: 16, 4: 10, 5: 4, 6: None, 7: 38, 8: 8, 21: 7, 24: 8, 25: 2, 26: None, 28: 6,
                     61: 2, 62: 6, 63: 6, 64: 9, 65: 2, 66: 2, 67: 6, 68: 2, 81: 1, 84: 7, 85: 1, 86: 1, 88: 1,
                     89: 1, 90: 6, 91: 1}
    for t, n in MAX_COUNT.items():  # every maximum fits in 1024 bytes
        if sizes[t] is not None:
            assert 2 + n * sizes[t] <= 1024


def test_analog_value_is_signed_little_endian() -> None:
    adu = Adu(3, (ComponentAnalog(system_type=0, system_address=1, component_type=18, component_address=1,
                                  analog_type=3, raw=0x0320, time=T),))
    data = frame(adu)
    assert data[27 + 2 + 8:27 + 2 + 10] == b"\x20\x03"  # 800 → 80.0 °C (shootingfans codec_test.go)
    from firebus.plugins.gb26875.jsonfmt import engineering_value

    assert engineering_value(3, 800) == 80.0 and engineering_value(3, -125) == -12.5
    assert engineering_value(5, 3500) == 350.0 and engineering_value(2, 360) == 3.6
    assert engineering_value(tables.ANALOG_RESIDUAL_CURRENT_MA, 300) == 300


# --------------------------------------------------------------- checklist item 2

BASE = frame(Adu(21, (UitdState(state=1, time=T),)))


@pytest.mark.parametrize("edit, code, field, offset", [
    (lambda b: b.__setitem__(0, 0x41), Problem.START, "start", 0),
    (lambda b: b.__setitem__(1, 0x00), Problem.START, "start", 0),
    (lambda b: b.__setitem__(-1, 0x24), Problem.END, "end", len(BASE) - 2),
    (lambda b: b.__setitem__(-2, 0x35), Problem.END, "end", len(BASE) - 2),  # the C# skeleton's 0x35 end
    (lambda b: b.__setitem__(-3, (b[-3] + 1) & 0xFF), Problem.CHECKSUM, "checksum", len(BASE) - 3),
    (lambda b: b.__setitem__(30, b[30] ^ 1), Problem.CHECKSUM, "checksum", len(BASE) - 3),
    (lambda b: b.__setitem__(24, b[24] + 1), Problem.LENGTH, "length", 24),
    (lambda b: b.__setitem__(25, 0x04), Problem.ADU_TOO_LONG, "length", 24),  # L = 1033
])
def test_envelope_errors(edit, code: Problem, field: str, offset: int) -> None:
    data = bytearray(BASE)
    edit(data)
    for mode in codec.Mode:
        with pytest.raises(FrameError) as exc:
            codec.decode(bytes(data), mode)
        assert (exc.value.code, exc.value.field, exc.value.offset) == (code, field, offset)
        assert exc.value.deny and exc.value.en and exc.value.zh


@pytest.mark.parametrize("command", [0, 7, 8, 127])
def test_unrecognised_command_is_denied(command: int) -> None:
    data = bytearray(BASE)
    data[26] = command
    with pytest.raises(CommandError) as exc:
        codec.decode(refix(data), codec.Mode.TOLERANT)
    assert exc.value.code == Problem.COMMAND and exc.value.offset == 26 and exc.value.deny


@pytest.mark.parametrize("command", [128, 200, 255])
def test_user_defined_commands_are_opaque(command: int) -> None:
    data = frame(OpaqueAdu(b"\x01\x02\x03"), command)
    decoded = codec.decode(data)
    assert decoded.frame.adu == OpaqueAdu(b"\x01\x02\x03")
    assert codec.encode(decoded.frame) == data


def test_short_input() -> None:
    for data in (b"", b"@", b"@@", BASE[:29]):
        with pytest.raises(FrameError):
            codec.decode(data)


def test_empty_adu_frames() -> None:
    hb = codec.decode(frame(None, 2))
    assert hb.frame.adu is None and hb.frame.is_heartbeat
    assert len(frame(None, 3)) == 30


def test_one_byte_adu_is_malformed() -> None:
    data = bytearray(frame(None, 2))
    data[24] = 1
    data[27:27] = b"\x15"
    with pytest.raises(AduError) as exc:
        codec.decode(refix(data), codec.Mode.TOLERANT)
    assert exc.value.code == Problem.ADU_STRUCTURE and exc.value.deny


# --------------------------------------------------------------- checklist item 6

def test_version_bytes_strict_and_tolerant() -> None:
    data = frame(Adu(21, (UitdState(state=1, time=T),)), version_main=2, version_user=7)
    with pytest.raises(HeaderError) as exc:
        codec.decode(data)
    assert (exc.value.code, exc.value.offset) == (Problem.VERSION, 4) and not exc.value.deny
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    assert [w.code for w in decoded.warnings] == [Problem.VERSION]
    assert decoded.frame.header.version_user == 7
    # the user version alone is user-defined: never a problem
    assert codec.decode(frame(None, version_user=0x42)).warnings == ()


@pytest.mark.parametrize("raw, text", [
    (b"ABC" + b"\x00" * 28, "ABC"),
    (b"ABC" + b" " * 28, "ABC"),
    (b" " * 30 + b"\x00", ""),
    ("火警 一层".encode("gb18030") + b"\x00" + b" " * 21, "火警 一层"),
])
def test_description_padding_accepted(raw: bytes, text: str) -> None:
    obj = ComponentState(system_type=1, system_address=1, component_type=40, component_address=1, state=1,
                         description=raw, time=T)
    decoded = codec.decode(frame(Adu(2, (obj,))))
    assert decoded.frame.adu.objects[0].description_text == text
    assert decoded.frame.adu.objects[0].description == raw


def test_stale_bytes_after_nul_and_bad_gb18030() -> None:
    stale = b"AB\x00CD" + b"\x00" * 26
    obj = ComponentState(system_type=1, system_address=1, component_type=40, component_address=1, state=1,
                         description=stale, time=T)
    data = frame(Adu(2, (obj,)))
    start = 27 + 2 + 1 + 1 + 1 + 4 + 2
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert (exc.value.code, exc.value.field, exc.value.offset) == (
        Problem.TEXT_PADDING, "adu.objects[0].description", start + 3)
    assert codec.decode(data, codec.Mode.TOLERANT).frame.adu.objects[0].description_text == "AB"
    bad = b"\xff\xfe" + b"\x00" * 29  # not GB 18030
    data = frame(Adu(2, (ComponentState(system_type=1, system_address=1, component_type=40, component_address=1,
                                        state=1, description=bad, time=T),)))
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.TEXT_ENCODING and exc.value.offset == start
    assert "\ufffd" in codec.decode(data, codec.Mode.TOLERANT).frame.adu.objects[0].description_text


def test_invalid_time_tags() -> None:
    bad = TimeTag(second=60, minute=0, hour=0, day=1, month=1, year=12)
    data = frame(Adu(21, (UitdState(state=1, time=bad),)))
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert (exc.value.code, exc.value.field, exc.value.offset) == (
        Problem.TIME_TAG_INVALID, "adu.objects[0].time.second", 27 + 2 + 1)
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    assert decoded.frame.adu.objects[0].time == bad and codec.encode(decoded.frame, "tolerant") == data
    feb30 = TimeTag(second=0, minute=0, hour=0, day=30, month=2, year=12)
    with pytest.raises(HeaderError) as exc:
        codec.decode(frame(None, time=feb30))
    assert exc.value.field == "time.day" and exc.value.offset == 9
    assert TimeTag.parse(str(bad)) == bad


def test_time_tags_are_binary_not_bcd() -> None:
    tag = TimeTag.from_bytes(bytes.fromhex("203A091A090C"))
    assert str(tag) == "2012-09-26 09:58:32"
    assert tag.to_datetime() == datetime(2012, 9, 26, 9, 58, 32, tzinfo=CST)
    utc = datetime(2012, 9, 26, 1, 58, 32, tzinfo=timezone.utc)
    assert TimeTag.from_datetime(utc) == tag  # tags are site time (UTC+8 by default)


def test_clock_skew_against_receipt_and_header() -> None:
    data = frame(Adu(21, (UitdState(state=1, time=T),)))
    received = TH.to_datetime() + timedelta(seconds=299)
    assert codec.decode(data, options=codec.DecodeOptions(received_at=received)).warnings == ()
    late = TH.to_datetime() + timedelta(seconds=301)
    with pytest.raises(HeaderError) as exc:
        codec.decode(data, options=codec.DecodeOptions(received_at=late))
    assert exc.value.code == Problem.CLOCK_SKEW and exc.value.field == "time"
    ahead = TimeTag.from_datetime(TH.to_datetime() + timedelta(seconds=301))
    with pytest.raises(AduError) as exc:
        codec.decode(frame(Adu(21, (UitdState(state=1, time=ahead),))))
    assert exc.value.code == Problem.CLOCK_SKEW and exc.value.field == "adu.objects[0].time"
    old = TimeTag.from_datetime(TH.to_datetime() - timedelta(days=7, seconds=1))
    assert codec.decode(frame(Adu(21, (UitdState(state=1, time=old),))), "tolerant").warnings[0].code == \
        Problem.CLOCK_SKEW
    ok = TimeTag.from_datetime(TH.to_datetime() - timedelta(days=6))  # a buffered event: fine
    assert codec.decode(frame(Adu(21, (UitdState(state=1, time=ok),)))).warnings == ()


# --------------------------------------------------------------- checklist item 7

@pytest.mark.parametrize("type_flag, command", [(1, 2), (2, 2), (3, 2), (4, 2), (5, 5), (7, 5), (8, 5), (21, 2),
                                                (24, 2), (25, 5), (28, 5)])
def test_count_over_the_maximum(type_flag: int, command: int) -> None:
    n = MAX_COUNT[type_flag] + 1
    body = bytes([type_flag, n]) + _object_bytes(type_flag) * n
    assert len(body) <= 1024 + OBJECT_CLASSES[type_flag].fixed_size()
    if len(body) > 1024:  # the maximum is all that fits (types 1, 4, 24 …): n > max cannot be framed
        return
    data = _with_adu(body, command)
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.COUNT_OVER_MAX and exc.value.offset == 28
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    assert len(decoded.frame.adu.objects) == n and codec.encode(decoded.frame, "tolerant") == data


def _object_bytes(type_flag: int) -> bytes:
    samples = {adu.type: adu for _, adu in EVERY_TYPE}
    samples |= {25: Adu(25, (UitdSoftwareVersion(major=1, minor=1),)), 28: Adu(28, (UitdTime(time=T),))}
    data = frame(samples[type_flag], 5 if type_flag in (5, 7, 8, 25, 28) else 2)
    return data[29:-3]


def _with_adu(adu: bytes, command: int) -> bytes:
    head = bytearray(frame(None, command)[:-3])
    head[24:26] = len(adu).to_bytes(2, "little")
    head += adu
    return refix(head + b"\x00##")


def test_count_type_25_and_26() -> None:
    for t, obj in ((25, b"\x01\x01"), (28, T.to_bytes())):
        with pytest.raises(AduError):
            codec.decode(_with_adu(bytes([t, 2]) + obj * 2, 5))
    two_texts = bytes([26, 2]) + b"\x01A" + b"\x01B"
    with pytest.raises(AduError) as exc:
        codec.decode(_with_adu(two_texts, 5))
    assert exc.value.code == Problem.COUNT_OVER_MAX


@pytest.mark.parametrize("extra", [-1, 1, 5, 45])
def test_length_not_two_plus_n_times_size(extra: int) -> None:
    good = frame(Adu(2, (EVERY_TYPE[1][1].objects[0],)))[27:-3]
    adu = good + b"\x00" * extra if extra > 0 else good[:extra]
    for mode in codec.Mode:
        with pytest.raises(AduError) as exc:
            codec.decode(_with_adu(adu, 2), mode)
        assert exc.value.code == Problem.ADU_STRUCTURE and exc.value.deny


def test_missing_time_tags_only_in_tolerant_mode() -> None:
    # dgiot decides by length whether the objects carry time tags (pitfall 8)
    data = _with_adu(bytes([24, 2]) + b"\x20\x01" + b"\x01\x02", 2)
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.TIME_TAG_MISSING
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    assert [o.time for o in decoded.frame.adu.objects] == [None, None]
    assert [o.operation for o in decoded.frame.adu.objects] == [0x20, 0x01]
    assert codec.encode(decoded.frame, "tolerant") == data
    with pytest.raises(EncodeError):
        codec.encode(decoded.frame)  # strict encode refuses objects without their time tag


def test_count_zero() -> None:
    data = _with_adu(bytes([2, 0]), 2)
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.COUNT_ZERO
    assert codec.decode(data, "tolerant").frame.adu == Adu(2, ())


def test_variable_length_objects_must_fill_the_adu() -> None:
    for adu in (bytes([6, 1, 1, 1, 5]) + b"abc",  # claims 5 text bytes, has 3
                bytes([6, 1, 1, 1, 1]) + b"ab",  # one byte left over
                bytes([26, 1])):  # no length byte
        with pytest.raises(AduError) as exc:
            codec.decode(_with_adu(adu, 5), "tolerant")
        assert exc.value.code == Problem.ADU_STRUCTURE


def test_reserved_and_user_defined_types() -> None:
    data = _with_adu(bytes([22, 1, 9, 9]), 2)
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.RESERVED_TYPE
    decoded = codec.decode(data, "tolerant")
    assert decoded.frame.adu == RawAdu(22, 1, b"\x09\x09") and codec.encode(decoded.frame, "tolerant") == data
    user = _with_adu(bytes([200, 3, 1, 2, 3, 4]), 2)
    decoded = codec.decode(user)  # user-defined types are legal
    assert decoded.frame.adu == RawAdu(200, 3, b"\x01\x02\x03\x04") and decoded.warnings == ()
    assert codec.encode(decoded.frame) == user


def test_type_must_belong_to_the_command() -> None:
    data = frame(Adu(81, (ReadUitdState(),)), 2)
    with pytest.raises(AduError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.TYPE_COMMAND and exc.value.offset == 27
    assert [w.code for w in codec.decode(data, "tolerant").warnings] == [Problem.TYPE_COMMAND]


def test_reserved_bits_and_bytes() -> None:
    with pytest.raises(AduError) as exc:
        codec.decode(frame(Adu(21, (UitdState(state=0x81, time=T),))))
    assert exc.value.code == Problem.RESERVED_BITS and exc.value.offset == 29
    with pytest.raises(AduError) as exc:
        codec.decode(frame(Adu(85, (ReadUitdSoftwareVersion(reserved=1),)), 4))
    assert exc.value.code == Problem.RESERVED_BYTE
    # the duty-check byte is not reserved: any value (K1 sends 0x0A)
    assert codec.decode(frame(Adu(91, (DutyCheck(parameter=0xFF),)), 1)).warnings == ()


# --------------------------------------------------------------------- encode

def test_encode_refuses_values_out_of_range() -> None:
    cases = [
        Frame(Header(serial=70000, time=T, source=UITD, destination=CENTRE, command=2)),
        Frame(Header(serial=1, time=T, source=b"\x01", destination=CENTRE, command=2)),
        Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=2),
              Adu(21, (UitdState(state=256, time=T),))),
        Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=2),
              Adu(3, (ComponentAnalog(system_type=0, system_address=1, component_type=18, component_address=1,
                                      analog_type=3, raw=40000, time=T),))),
        Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=2),
              Adu(2, (UitdState(state=1, time=T),))),  # object of the wrong type
        Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=5),
              Adu(26, (UitdConfiguration(text=b"x" * 256),))),
        Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=2),
              Adu(24, tuple(UitdOperation(operation=1, operator=1, time=T) for _ in range(128)))),  # > 1024
    ]
    for f in cases:
        for mode in codec.Mode:
            with pytest.raises(EncodeError):
                codec.encode(f, mode)


def test_encode_strict_pitfalls() -> None:
    f = Frame(Header(serial=1, version_main=0x10, time=T, source=UITD, destination=CENTRE, command=2))
    with pytest.raises(EncodeError) as exc:
        codec.encode(f)
    assert exc.value.code == Problem.VERSION
    assert len(codec.encode(f, "tolerant")) == 30
    over = Frame(Header(serial=1, time=T, source=UITD, destination=CENTRE, command=2),
                 Adu(21, (UitdState(state=1, time=T), UitdState(state=1, time=T))))
    with pytest.raises(EncodeError):
        codec.encode(over)
    codec.encode(over, "tolerant")


def test_only_codec_errors_escape() -> None:
    assert issubclass(FrameError, CodecError) and issubclass(EncodeError, CodecError)


# --------------------------------------------------------------------- tables

def test_code_tables() -> None:
    assert tables.system_type_label(23).en == "fire power supply"  # the digest says fire elevator: wrong
    assert tables.system_type_label(5).en == "reserved" and tables.system_type_label(130).en == "user-defined"
    for code in (10, 11, 12, 13, 16, 17, 18, 40, 41, 42, 43, 44, 74, 78, 91, 92, 95, 96, 97, 98, 99):
        label = tables.component_type_label(code)
        assert label.zh and label.en and label.en != "reserved"
    assert tables.component_type_label(2).en == "reserved"
    spec = tables.analog_spec(6)
    assert (spec.unit, spec.resolution) == ("%LEL", 0.1)
    assert tables.command_is_valid(6) and not tables.command_is_valid(7) and tables.command_is_valid(128)
    assert tables.response_type(81) == 21 and tables.response_type(61) == 1
    assert tables.describe_flags(0x02, tables.COMPONENT_STATE_BITS).en == "test, fire alarm"
    assert tables.flags_value(["normal", "fire_alarm"], tables.UITD_STATE_BITS) == 3
