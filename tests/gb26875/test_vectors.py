"""Checklist item 1: all 16 reference frames decode to what their captions say and re-encode
byte for byte (Structs and the JSON format both ways); the replies the codec builds for
A1, I1 and F1 are exactly A2, A3, L1 and F2."""

from __future__ import annotations

import json

import pytest

from firebus.plugins.gb26875 import codec, jsonfmt
from firebus.plugins.gb26875.errors import HeaderError, Problem
from firebus.plugins.gb26875.model import (
    Adu,
    ComponentState,
    DutyCheck,
    InitUitd,
    ReadUitdSoftwareVersion,
    ReadUitdState,
    ReadUitdTime,
    SyncClock,
    TimeTag,
    UitdOperation,
    UitdSoftwareVersion,
    UitdState,
    UitdTime,
    address,
    address_int,
)
from firebus.plugins.gb26875.vectors import load_vectors, parse_vectors

from .conftest import SHARED_VECTORS

NAMES = [v.name for v in load_vectors()]
UITD, CENTRE = address(889), address(88888)
T32 = TimeTag.parse("2012-09-26 09:58:32")
T35 = TimeTag.parse("2012-09-26 09:58:35")
T02 = TimeTag.parse("2012-09-26 09:58:02")


def test_sixteen_vectors_shipped() -> None:
    assert len(NAMES) == 16 and len(set(NAMES)) == 16


def test_shipped_copy_is_the_shared_reference() -> None:
    if not SHARED_VECTORS.exists():
        pytest.skip("shared reference folder not present on this machine")
    shared = parse_vectors(SHARED_VECTORS.read_text(encoding="utf-8"))
    assert [(v.name, v.hex) for v in shared] == [(v.name, v.hex) for v in load_vectors()]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_tolerant(vectors, name: str) -> None:
    data = vectors[name].data
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    assert codec.encode(decoded.frame, codec.Mode.TOLERANT) == data
    as_json = json.loads(json.dumps(jsonfmt.decoded_to_json(decoded), ensure_ascii=False))
    assert jsonfmt.encode_json(as_json, codec.Mode.TOLERANT) == data
    assert as_json["hex"] == data.hex().upper()
    assert as_json["length"] == len(data) - 30 and as_json["checksum"] == data[-3]


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("M1")])
def test_worked_examples_are_strictly_valid(vectors, name: str) -> None:
    data = vectors[name].data
    decoded = codec.decode(data)  # strict is the default
    assert decoded.warnings == ()
    assert codec.encode(decoded.frame) == data


def test_real_capture_needs_tolerance(vectors) -> None:
    data = vectors["M1_real_capture_photoelectric_fire"].data
    with pytest.raises(HeaderError) as exc:
        codec.decode(data)
    assert exc.value.code == Problem.VERSION and exc.value.field == "version_main" and exc.value.offset == 4
    decoded = codec.decode(data, codec.Mode.TOLERANT)
    codes = [(w.code, w.field, w.offset) for w in decoded.warnings]
    # version bytes 10 00, stale bytes after the description's NUL (byte 38 + 17 + 1), device clock 9 years off
    assert codes == [(Problem.VERSION, "version_main", 4), (Problem.TEXT_PADDING, "adu.objects[0].description", 56),
                     (Problem.CLOCK_SKEW, "adu.objects[0].time", 69)]
    h = decoded.frame.header
    assert (h.serial, h.version_main, h.version_user) == (20, 0x10, 0x00)
    assert str(h.time) == "2021-07-27 09:09:05"
    assert h.source == bytes.fromhex("2C312C320000") and h.destination == bytes.fromhex("784D07918E23")
    obj = decoded.frame.adu.objects[0]
    assert isinstance(obj, ComponentState)
    assert (obj.system_type, obj.system_address, obj.component_type) == (1, 1, 42)
    assert obj.component_address.to_bytes(4, "little") == bytes.fromhex("01000100")
    assert obj.state == 0x0002 and decoded.fire
    assert obj.description_text == "1号接口板1回路1号"
    assert obj.description[17:18] == b"\x00" and obj.description[18:20] == bytes.fromhex("BAC5")  # stale kept
    assert str(obj.time) == "2012-06-01 03:17:37"


def _frame(vectors, name: str):
    return codec.decode(vectors[name].data, codec.Mode.TOLERANT).frame


def test_a1_component_fire(vectors) -> None:
    f = _frame(vectors, "A1_upload_component_fire")
    h = f.header
    assert (h.serial, h.version_main, h.version_user, h.command) == (1, 1, 1, 2)
    assert h.time == T32 and h.source == UITD and h.destination == CENTRE
    assert address_int(h.source) == 889 and address_int(h.destination) == 88888
    assert isinstance(f.adu, Adu) and f.adu.type == 2 and len(f.adu.objects) == 1
    obj = f.adu.objects[0]
    assert isinstance(obj, ComponentState)
    assert (obj.system_type, obj.system_address, obj.component_type) == (1, 1, 40)
    assert obj.component_address.to_bytes(4, "little") == bytes.fromhex("0A000200")
    assert obj.state == 2 and obj.time == T02
    assert obj.description == b" " * 30 + b"\x00" and obj.description_text == ""
    j = jsonfmt.object_to_json(obj)
    assert j["flags"] == ["fire_alarm"] and j["fire"] and j["test"]  # bit 0 clear: a test-state fire
    assert j["component_type_en"] == "smoke detector" and j["component_type_zh"] == "感烟火灾探测器"


@pytest.mark.parametrize("name, adu", [
    ("B1_upload_uitd_mains_fault", Adu(21, (UitdState(state=0x08, time=T02),))),
    ("C1_upload_uitd_duty_check_answer", Adu(24, (UitdOperation(operation=0x20, operator=1, time=T02),))),
    ("D1_upload_uitd_sw_version", Adu(25, (UitdSoftwareVersion(major=1, minor=1),))),
    ("E1_upload_uitd_time", Adu(28, (UitdTime(time=T02),))),
    ("F1_request_read_uitd_state", Adu(81, (ReadUitdState(reserved=0),))),
    ("F2_response_uitd_state", Adu(21, (UitdState(state=0x08, time=T02),))),
    ("G1_request_read_uitd_sw_version", Adu(85, (ReadUitdSoftwareVersion(),))),
    ("H1_request_read_uitd_time", Adu(88, (ReadUitdTime(),))),
    ("I1_control_init_uitd", Adu(89, (InitUitd(),))),
    ("J1_control_sync_uitd_clock", Adu(90, (SyncClock(time=T02),))),
    ("K1_control_duty_check", Adu(91, (DutyCheck(parameter=0x0A),))),
])
def test_vector_contents(vectors, name: str, adu: Adu) -> None:
    assert _frame(vectors, name).adu == adu


@pytest.mark.parametrize("name, command, source", [
    ("B1_upload_uitd_mains_fault", 2, UITD), ("F1_request_read_uitd_state", 4, CENTRE),
    ("F2_response_uitd_state", 5, UITD), ("I1_control_init_uitd", 1, CENTRE), ("A2_centre_ack", 3, CENTRE),
    ("A3_centre_nak", 6, CENTRE), ("L1_uitd_ack", 3, UITD),
])
def test_vector_headers(vectors, name: str, command: int, source: bytes) -> None:
    h = _frame(vectors, name).header
    assert h.command == command and h.source == source and h.serial == 1


def test_encoding_from_structs_reproduces_a1(vectors) -> None:
    from firebus.plugins.gb26875.model import Frame, Header

    frame = Frame(Header(serial=1, time=T32, source=UITD, destination=CENTRE, command=2),
                  Adu(2, (ComponentState(system_type=1, system_address=1, component_type=40,
                                         component_address=int.from_bytes(bytes.fromhex("0A000200"), "little"),
                                         state=2, description=b" " * 30 + b"\x00", time=T02),)))
    assert codec.encode(frame) == vectors["A1_upload_component_fire"].data


def test_confirm_of_a1_is_a2(vectors) -> None:
    request = _frame(vectors, "A1_upload_component_fire").header
    reply = codec.reply_frame(request, 3, time=T35)
    assert codec.encode(reply) == vectors["A2_centre_ack"].data
    assert codec.check_reply(request, reply.header) == ()


def test_deny_of_a1_is_a3(vectors) -> None:
    a1 = bytearray(vectors["A1_upload_component_fire"].data)
    a1[40] ^= 0xFF  # one ADU byte flipped: the checksum fails (checklist item 2)
    with pytest.raises(codec.CodecError) as exc:
        codec.decode(bytes(a1))
    assert exc.value.code == Problem.CHECKSUM and exc.value.deny
    assert codec.deny_for(bytes(a1), time=T35) == vectors["A3_centre_nak"].data


def test_uitd_confirm_of_a_control_is_l1(vectors) -> None:
    for name in ("I1_control_init_uitd", "J1_control_sync_uitd_clock", "K1_control_duty_check"):
        reply = codec.reply_frame(_frame(vectors, name).header, 3, time=T35)
        assert codec.encode(reply) == vectors["L1_uitd_ack"].data


def test_response_to_f1_is_f2(vectors) -> None:
    request = _frame(vectors, "F1_request_read_uitd_state")
    response = codec.reply_frame(request.header, 5, time=T32, adu=Adu(21, (UitdState(state=0x08, time=T02),)))
    assert codec.encode(response) == vectors["F2_response_uitd_state"].data
