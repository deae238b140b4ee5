"""Hypothesis: no exception but the codec's own escapes decode, the JSON reader or the framer on
arbitrary input; encode ∘ decode round-trips generated valid frames of every ADU type; the
framer finds every frame however the stream is cut and whatever garbage sits between."""

from __future__ import annotations

import os
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firebus.plugins.gb26875 import codec, jsonfmt, tables
from firebus.plugins.gb26875.errors import CodecError
from firebus.plugins.gb26875.framer import Framer, Rejected
from firebus.plugins.gb26875.model import (
    MAX_ADU,
    MAX_COUNT,
    MAX_RECORDS,
    OBJECT_CLASSES,
    Adu,
    Frame,
    Header,
    TimeTag,
)
from firebus.plugins.gb26875.vectors import load_vectors

#: GB26875_FUZZ_EXAMPLES=5000 for a longer local run
FAST = settings(max_examples=int(os.environ.get("GB26875_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
VECTORS = [v.data for v in load_vectors()]
NO_CLOCK_CHECKS = codec.DecodeOptions(max_clock_skew=float("inf"), max_event_age=float("inf"))


@FAST
@given(st.binary(max_size=1200))
def test_decode_arbitrary_bytes_raises_only_codec_errors(data: bytes) -> None:
    for mode in codec.Mode:
        try:
            decoded = codec.decode(data, mode)
        except CodecError:
            continue
        assert codec.encode(decoded.frame, codec.Mode.TOLERANT) == data


def _envelope(body: bytes, command: int) -> bytes:
    """A frame around an arbitrary ADU, with length and checksum right (to reach the ADU parser)."""
    head = bytearray(VECTORS[0][:24]) + len(body).to_bytes(2, "little") + bytes([command])
    head += body
    head.append(codec.checksum(head))
    return bytes(head + b"##")


@FAST
@given(st.binary(max_size=MAX_ADU), st.sampled_from([1, 2, 3, 4, 5, 6, 128]))
def test_decode_arbitrary_adus_raises_only_codec_errors(body: bytes, command: int) -> None:
    data = _envelope(body, command)
    for mode in codec.Mode:
        try:
            decoded = codec.decode(data, mode)
        except CodecError:
            continue
        assert codec.encode(decoded.frame, codec.Mode.TOLERANT) == data
        jsonfmt.decoded_to_json(decoded)


@FAST
@given(st.sampled_from(VECTORS), st.lists(st.tuples(st.integers(0, 1100), st.integers(0, 255)), max_size=4),
       st.booleans())
def test_mutated_vectors(vector: bytes, edits: list[tuple[int, int]], fix_checksum: bool) -> None:
    data = bytearray(vector)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    if fix_checksum and len(data) >= 30:
        data[-3] = codec.checksum(data[:-3])
    try:
        decoded = codec.decode(bytes(data), codec.Mode.TOLERANT)
    except CodecError:
        return
    assert codec.encode(decoded.frame, codec.Mode.TOLERANT) == bytes(data)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                           max_leaves=12)


@FAST
@given(st.dictionaries(st.sampled_from(["serial", "time", "source", "destination", "command", "adu", "source_hex",
                                        "version_main"]), json_values))
def test_json_reader_raises_only_codec_errors(d: dict) -> None:
    try:
        jsonfmt.encode_json(d, "tolerant")
    except CodecError:
        pass


# ------------------------------------------------------------- valid frames

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(
    TimeTag.from_datetime)


def _text(size: int | None) -> st.SearchStrategy[bytes]:
    limit = 31 if size is not None else 255
    raw = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12).map(
        lambda t: t.encode("gb18030")).filter(lambda b: len(b) <= limit)
    return raw.map(lambda b: b.ljust(size, b"\x00")) if size is not None else raw


def _field(cls: type, name: str, kind: str) -> st.SearchStrategy:
    if name in ("state", "operation"):
        bits = {1: tables.SYSTEM_STATE_BITS, 2: tables.COMPONENT_STATE_BITS, 21: tables.UITD_STATE_BITS,
                4: tables.SYSTEM_OPERATION_BITS, 24: tables.UITD_OPERATION_BITS}[cls.TYPE]
        mask = tables.bits_mask(bits)
        return st.integers(0, 0xFFFF if kind == "u16" else 0xFF).map(lambda v: v & mask)
    if name == "reserved":
        return st.just(0)
    if name == "record_count":
        return st.integers(0, MAX_RECORDS)
    return {
        "u8": st.integers(0, 0xFF), "u16": st.integers(0, 0xFFFF), "u32": st.integers(0, 0xFFFFFFFF),
        "i16": st.integers(-0x8000, 0x7FFF), "time": times, "tag": times,
        "text31": _text(31), "ltext": _text(None),
    }[kind]


def _object(cls: type) -> st.SearchStrategy:
    return st.fixed_dictionaries({name: _field(cls, name, kind) for name, kind in cls.LAYOUT}).map(
        lambda kw: cls(**kw))


def _command_for(type_flag: int) -> st.SearchStrategy[int]:
    if type_flag < 61:
        return st.sampled_from([2, 5])
    return st.just(4 if type_flag <= 88 else 1)


@st.composite
def valid_frames(draw: st.DrawFn) -> Frame:
    type_flag = draw(st.sampled_from(sorted(OBJECT_CLASSES)))
    cls = OBJECT_CLASSES[type_flag]
    size = cls.fixed_size() or 3 + 255
    fits = max(1, (MAX_ADU - 2) // size)
    objects = draw(st.lists(_object(cls), min_size=1, max_size=min(MAX_COUNT[type_flag], fits, 6)))
    header = Header(serial=draw(st.integers(0, 0xFFFF)), version_main=1, version_user=draw(st.integers(0, 255)),
                    time=draw(times), source=draw(st.binary(min_size=6, max_size=6)),
                    destination=draw(st.binary(min_size=6, max_size=6)), command=draw(_command_for(type_flag)))
    return Frame(header, Adu(type_flag, tuple(objects)))


@FAST
@given(valid_frames())
def test_generated_frames_round_trip_strictly(frame: Frame) -> None:
    data = codec.encode(frame)
    decoded = codec.decode(data, options=NO_CLOCK_CHECKS)
    assert decoded.frame == frame and decoded.warnings == ()
    assert codec.encode(decoded.frame) == data
    assert jsonfmt.encode_json(jsonfmt.decoded_to_json(decoded)) == data


# ------------------------------------------------------------------- framer

garbage = st.binary(max_size=40).map(lambda b: b.replace(b"@", b"?"))


@FAST
@given(st.lists(st.tuples(garbage, st.sampled_from(VECTORS)), min_size=1, max_size=6), st.data())
def test_framer_finds_every_frame(parts: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    stream = b"".join(g + f for g, f in parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = Framer()
    out: list = []
    prev = 0
    for c in cuts + [len(stream)]:
        out += framer.feed(stream[prev:c])
        prev = c
    out += framer.close()
    assert [i for i in out if isinstance(i, bytes)] == [f for _, f in parts]
    assert framer.stats.garbage_bytes == sum(len(g) for g, _ in parts)


@FAST
@given(st.lists(st.binary(max_size=300) | st.sampled_from(VECTORS), max_size=12))
def test_framer_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    framer = Framer(max_buffer=2000)
    for chunk in chunks:
        for item in framer.feed(chunk):
            if isinstance(item, bytes):
                try:  # the envelope passed; the rest may still fail, with the codec's errors only
                    codec.decode(item, codec.Mode.TOLERANT)
                except CodecError:
                    pass
            else:
                assert isinstance(item, Rejected) and isinstance(item.error, CodecError)
        assert framer.buffered <= 2000
    framer.close()
    assert framer.buffered == 0
