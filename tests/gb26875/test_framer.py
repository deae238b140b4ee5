"""Checklist item 5: the stream framer survives coalesced, split and garbage-prefixed frames,
reports bad candidates with their bytes, and keeps its buffer bounded."""

from __future__ import annotations

import pytest

from firebus.plugins.gb26875 import codec
from firebus.plugins.gb26875.errors import Problem
from firebus.plugins.gb26875.framer import Framer, Rejected
from firebus.plugins.gb26875.model import MAX_FRAME
from firebus.plugins.gb26875.vectors import load_vectors

FRAMES = [v.data for v in load_vectors()]


def frames_of(items) -> list[bytes]:
    return [i for i in items if isinstance(i, bytes)]


def rejected_of(items) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


def test_coalesced_frames_in_one_read() -> None:
    f = Framer()
    out = f.feed(b"".join(FRAMES))
    assert out == FRAMES and f.buffered == 0 and f.stats.frames == 16 and f.stats.garbage_bytes == 0


def test_frames_split_byte_by_byte() -> None:
    f = Framer()
    out: list = []
    for b in b"".join(FRAMES):
        out += f.feed(bytes([b]))
    assert out == FRAMES


@pytest.mark.parametrize("cut", [1, 2, 26, 27, 28, 40, 75, 76, 77])
def test_frame_split_at_every_awkward_place(cut: int) -> None:
    a1 = FRAMES[0]
    f = Framer()
    assert f.feed(a1[:cut]) == []
    assert f.feed(a1[cut:] + FRAMES[1]) == [a1, FRAMES[1]]


def test_garbage_before_the_start() -> None:
    f = Framer()
    out = f.feed(b"\x00\x01garbage@#@" + FRAMES[0] + b"more junk" + FRAMES[3])
    assert frames_of(out) == [FRAMES[0], FRAMES[3]]
    garbage = rejected_of(out)
    assert [g.error.code for g in garbage] == [Problem.GARBAGE, Problem.GARBAGE]
    assert garbage[0].raw == b"\x00\x01garbage@#@" and not garbage[0].header
    assert f.stats.garbage_bytes == len(b"\x00\x01garbage@#@") + len(b"more junk")


def test_a_start_split_across_reads() -> None:
    f = Framer()
    out = f.feed(b"xx@")
    assert [r.raw for r in rejected_of(out)] == [b"xx"] and f.buffered == 1
    out = f.feed(FRAMES[0][1:])
    assert out == [FRAMES[0]]


def test_false_start_in_garbage_then_a_frame() -> None:
    # "@@" followed by a length that reaches into the next frame: the real frame inside it wins
    junk = b"@@" + bytes(22) + b"\x10\x00" + b"\x02" + bytes(5)
    f = Framer()
    out = f.feed(junk + FRAMES[0] + FRAMES[1])
    assert frames_of(out) == [FRAMES[0], FRAMES[1]]
    assert [(r.error.code, r.raw) for r in rejected_of(out)] == [(Problem.GARBAGE, junk)]


def test_false_start_does_not_hold_back_a_complete_frame() -> None:
    # the false candidate claims more bytes than have arrived; the frame after it is complete
    junk = b"@@" + bytes(22) + b"\x00\x02" + b"\x02"  # L = 512
    f = Framer()
    assert frames_of(f.feed(junk + FRAMES[3])) == [FRAMES[3]]


def test_wrong_end_bytes_reported_then_resync() -> None:
    bad = bytearray(FRAMES[0])
    bad[-1] = 0x35
    f = Framer()
    out = f.feed(bytes(bad) + FRAMES[3])
    assert frames_of(out) == [FRAMES[3]]
    rejected = rejected_of(out)
    assert rejected[0].error.code == Problem.END and rejected[0].raw == bytes(bad) and rejected[0].header


def test_checksum_error_consumes_the_frame() -> None:
    bad = bytearray(FRAMES[0])
    bad[40] ^= 0x40
    f = Framer()
    out = f.feed(bytes(bad) + FRAMES[1])
    assert out[1:] == [FRAMES[1]]
    assert isinstance(out[0], Rejected) and out[0].error.code == Problem.CHECKSUM and out[0].raw == bytes(bad)
    assert codec.deny_for(out[0].raw, time=codec.decode(FRAMES[1]).frame.header.time) == FRAMES[2]  # A3


def test_length_over_1024_refused_before_waiting() -> None:
    head = bytearray(FRAMES[1][:27])
    head[24:26] = (1025).to_bytes(2, "little")
    f = Framer()
    out = f.feed(bytes(head))
    assert [r.error.code for r in rejected_of(out)] == [Problem.ADU_TOO_LONG]
    assert f.feed(FRAMES[0]) == [FRAMES[0]]


def test_at_sign_pairs_inside_a_frame_are_not_starts() -> None:
    # addresses and text may contain 40 40; a whole valid frame is taken as one
    from firebus.plugins.gb26875.model import Frame, Header, TimeTag

    frame = codec.encode(Frame(Header(serial=0x4040, time=TimeTag(0, 0, 0, 1, 1, 20), source=b"@@@@@@",
                                      destination=b"@@##@@", command=2)))
    assert Framer().feed(frame + frame) == [frame, frame]
    out = Framer().feed(b"@" + frame + frame)  # a lone '@' before: garbage, then both frames
    assert frames_of(out) == [frame, frame] and rejected_of(out)[0].raw == b"@"


def test_buffer_is_bounded() -> None:
    f = Framer(max_buffer=MAX_FRAME)
    out = f.feed(b"x" * 100_000 + b"".join(FRAMES) * 3)
    assert frames_of(out) == FRAMES * 3
    assert f.buffered < MAX_FRAME and f.stats.garbage_bytes == 100_000
    with pytest.raises(ValueError):
        Framer(max_buffer=100)
    # a partial frame never holds more than one maximum frame
    g = Framer(max_buffer=MAX_FRAME)
    g.feed(FRAMES[0][:50])
    assert g.buffered == 50


def test_close_reports_a_truncated_frame() -> None:
    f = Framer()
    f.feed(FRAMES[0][:40])
    out = f.close()
    assert len(out) == 1 and out[0].error.code == Problem.SHORT and out[0].raw == FRAMES[0][:40]
    assert f.buffered == 0
