"""Pure logic of register-map profiles: decoding every dtype, orders, scale, sentinels, planning."""

from __future__ import annotations

import math
import struct

import pytest
from firebus.core.sim.modbus import builtin_profiles, resolve_profile
from firebus.sdk.modbus import (
    DType,
    Order,
    PointMap,
    ProfileError,
    Table,
    decode_block,
    decode_point,
    encode_point,
    parse_profile,
    plan_blocks,
    profile_from_data,
    raw_to_words,
    words_to_raw,
)
from hypothesis import given
from hypothesis import strategies as st


def pm(**kw) -> PointMap:
    kw.setdefault("point_key", "p")
    kw.setdefault("point_class", "x")
    kw.setdefault("table", Table.HOLDING)
    kw.setdefault("address", 0)
    return PointMap(**kw)


@pytest.mark.parametrize(
    "dtype, words, expected",
    [
        (DType.UINT16, [0xFFFE], 65534),
        (DType.INT16, [0xFFFE], -2),
        (DType.UINT32, [0x0001, 0x0002], 0x00010002),
        (DType.INT32, [0xFFFF, 0xFFFF], -1),
        (DType.FLOAT32, list(struct.unpack(">HH", struct.pack(">f", 12.5))), 12.5),
        (DType.INT64, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], -2),
        (DType.UINT64, [0, 0, 1, 0], 65536),
        (DType.FLOAT64, list(struct.unpack(">HHHH", struct.pack(">d", -0.25))), -0.25),
    ],
)
def test_each_dtype_decodes_big_endian(dtype, words, expected):
    assert words_to_raw(words, dtype) == expected
    assert decode_point(pm(dtype=dtype), words).value == expected


def test_word_order_little_is_word_swapped_float():
    # Acrel-style "需高低位转换": low word first on the wire.
    hi, lo = struct.unpack(">HH", struct.pack(">f", 305.5))
    p = pm(dtype=DType.FLOAT32, word_order=Order.LITTLE)
    assert decode_point(p, [lo, hi]).value == 305.5
    assert decode_point(pm(dtype=DType.FLOAT32), [lo, hi]).value != 305.5


def test_byte_order_little_swaps_bytes_in_each_word():
    assert words_to_raw([0x3412], DType.UINT16, byte_order=Order.LITTLE) == 0x1234
    assert words_to_raw([0x3412, 0x7856], DType.UINT32, Order.BIG, Order.LITTLE) == 0x12345678
    assert words_to_raw([0x7856, 0x3412], DType.UINT32, Order.LITTLE, Order.LITTLE) == 0x12345678


@given(
    st.sampled_from([DType.INT16, DType.UINT16, DType.INT32, DType.UINT32, DType.INT64, DType.UINT64]),
    st.sampled_from(list(Order)),
    st.sampled_from(list(Order)),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
)
def test_raw_words_roundtrip(dtype, wo, bo, raw):
    bits = {DType.INT16: 16, DType.UINT16: 16, DType.INT32: 32, DType.UINT32: 32, DType.INT64: 64, DType.UINT64: 64}[dtype]
    signed = dtype.value.startswith("int")
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not lo <= raw <= hi:
        with pytest.raises(ValueError):
            raw_to_words(raw, dtype, wo, bo)
        return
    words = raw_to_words(raw, dtype, wo, bo)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert words_to_raw(words, dtype, wo, bo) == raw


def test_scale_offset_precision():
    p = pm(dtype=DType.INT16, scale=0.1, offset=-40, precision=1)
    assert decode_point(p, [0x0190]).value == 0.0  # 400 * 0.1 - 40
    assert decode_point(p, [raw_to_words(-5, DType.INT16)[0]]).value == -40.5


def test_sentinels_become_faults_never_values():
    p = pm(dtype=DType.UINT16, scale=0.1, sentinels={0xFFFF: "sensor_fault", 0xFFFE: "open_circuit"})
    r = decode_point(p, [0xFFFF])
    assert r.value is None and r.fault == "sensor_fault"
    assert decode_point(p, [0xFFFE]).fault == "open_circuit"
    assert decode_point(p, [123]).value == pytest.approx(12.3) and decode_point(p, [123]).fault is None
    signed = pm(dtype=DType.INT16, sentinels={-32768: "sensor_fault"})
    assert decode_point(signed, [0x8000]).fault == "sensor_fault"


def test_nan_float_is_a_fault():
    words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    assert decode_point(pm(dtype=DType.FLOAT32), words).fault == "not_a_number"


def test_status_bits_and_enum():
    word = 0b1_0000_0101
    assert decode_point(pm(dtype=DType.BIT, bit=0), [word]).value is True
    assert decode_point(pm(dtype=DType.BIT, bit=1), [word]).value is False
    assert decode_point(pm(dtype=DType.BIT, bit=8), [word]).value is True
    assert decode_point(pm(dtype=DType.BIT, bit=8, invert=True), [word]).value is False
    mode = pm(enum={0: "auto", 1: "manual"})
    assert decode_point(mode, [1]).value == "manual"
    assert decode_point(mode, [7]).fault == "unknown_state_7"
    assert decode_point(pm(table=Table.COIL, dtype=DType.BOOL), [True]).value is True


def test_decimals_from_register_in_same_block():
    prof = resolve_profile("water_transmitter")
    [block] = plan_blocks(prof.points, max_gap=prof.max_gap, max_count=prof.max_count)
    data = [0] * block.count
    data[3] = 3  # decimals
    data[4] = 350  # 0.350 MPa
    got = {r.point_key: r for r in decode_block(prof, block, data)}
    assert got["pressure"].value == pytest.approx(0.35)
    data[3] = 12
    assert {r.point_key: r for r in decode_block(prof, block, data)}["pressure"].fault == "bad_decimals_12"


def test_encode_respects_writability_limits_and_scale():
    p = pm(dtype=DType.UINT16, scale=0.1, writable=True, min=1, max=50)
    assert encode_point(p, 25.0) == [250]
    with pytest.raises(ValueError, match="outside"):
        encode_point(p, 60)
    with pytest.raises(ValueError, match="not writable"):
        encode_point(pm(), 1)
    coil = pm(table=Table.COIL, dtype=DType.BOOL, writable=True)
    assert encode_point(coil, True) is True and encode_point(coil, "off") is False
    with pytest.raises(ValueError):
        encode_point(coil, 5)
    f = pm(dtype=DType.FLOAT32, word_order=Order.LITTLE, writable=True)
    assert decode_point(f, encode_point(f, 1.5)).value == 1.5
    mode = pm(enum={0: "auto", 1: "manual"}, writable=True)
    assert encode_point(mode, "manual") == [1]
    with pytest.raises(ValueError, match="unknown state"):
        encode_point(mode, "turbo")


def test_plan_merges_contiguous_and_respects_gap_and_count():
    pts = [pm(point_key=f"r{a}", address=a) for a in (0, 1, 2, 3)] + [
        pm(point_key="far", address=20),
        pm(point_key="f32", address=5, dtype=DType.FLOAT32),
        pm(point_key="in", table=Table.INPUT, address=0),
        pm(point_key="c0", table=Table.COIL, address=0, dtype=DType.BOOL),
        pm(point_key="c9", table=Table.COIL, address=9, dtype=DType.BOOL),
    ]
    blocks = plan_blocks(pts, max_gap=2, max_count=100)
    spans = [(b.table, b.address, b.count) for b in blocks]
    assert (Table.HOLDING, 0, 7) in spans  # r0..r3 + gap 1 + f32 (2 regs)
    assert (Table.HOLDING, 20, 1) in spans  # gap 13 > 2
    assert (Table.INPUT, 0, 1) in spans
    assert (Table.COIL, 0, 1) in spans and (Table.COIL, 9, 1) in spans
    # max_count splits a long contiguous run
    run = [pm(point_key=f"k{a}", address=a) for a in range(250)]
    split = plan_blocks(run, max_gap=0, max_count=100)
    assert [b.count for b in split] == [100, 100, 50]
    # a 32-bit value is never split across two reads
    edge = [pm(point_key="a", address=0), pm(point_key="b", address=1, dtype=DType.UINT32)]
    assert [(b.address, b.count) for b in plan_blocks(edge, max_count=2)] == [(0, 1), (1, 2)]


def test_profile_errors_name_the_file_and_field():
    with pytest.raises(ProfileError, match=r"dev.yaml: .*points\[0\]\.dtype"):
        parse_profile("name: x\npoints:\n  - {point_key: a, point_class: b, table: holding, address: 1, dtype: int17}\n", "dev.yaml")
    with pytest.raises(ProfileError, match="bit: 0..15"):
        profile_from_data({"name": "x", "points": [{"point_key": "a", "point_class": "b", "table": "holding", "address": 1, "dtype": "bit"}]})
    with pytest.raises(ProfileError, match="coil or discrete"):
        profile_from_data({"name": "x", "points": [{"point_key": "a", "point_class": "b", "table": "holding", "address": 1, "dtype": "bool"}]})
    with pytest.raises(ProfileError, match="duplicate"):
        profile_from_data({"name": "x", "points": [{"point_key": "a", "point_class": "b", "table": "input", "address": i} for i in (1, 2)]})
    with pytest.raises(ProfileError, match="read-only"):
        profile_from_data({"name": "x", "points": [{"point_key": "a", "point_class": "b", "table": "input", "address": 1, "writable": True}]})


def test_toml_profile_with_string_sentinel_keys():
    prof = parse_profile(
        'name = "t"\n[[points]]\npoint_key = "i"\npoint_class = "residual_current"\ntable = "input"\n'
        'address = 4097\nsentinels = { "65535" = "fault" }\n',
        "dev.toml",
    )
    assert prof.points[0].sentinels == {65535: "fault"}


def test_builtin_profiles_load():
    names = builtin_profiles()
    assert {"rcd_temp4", "gas_detector", "water_transmitter", "pump_controller"} <= set(names)
    for n in names:
        prof = resolve_profile(n)
        assert prof.points and plan_blocks(prof.points)


@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from([DType.UINT16, DType.INT32, DType.FLOAT64])),
        min_size=1, max_size=40, unique_by=lambda t: t[0],
    ),
    st.integers(0, 20),
    st.integers(4, 125),
)
def test_plan_covers_every_point_once_within_limits(spec, max_gap, max_count):
    pts = [pm(point_key=f"p{a}", address=a, dtype=d) for a, d in spec]
    blocks = plan_blocks(pts, max_gap=max_gap, max_count=max_count)
    seen = [k for b in blocks for k in b.points]
    assert sorted(seen) == sorted(p.point_key for p in pts)
    by_key = {p.point_key: p for p in pts}
    for b in blocks:
        assert b.count <= max_count
        for k in b.points:
            p = by_key[k]
            assert b.address <= p.address and p.address + p.width <= b.end
