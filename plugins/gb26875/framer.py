"""Incremental stream framer for GB/T 26875.3 over TCP (pitfall 4: 粘包 and splits).

``Framer.feed(chunk)`` returns, in stream order, whole frames (``bytes`` that passed
the envelope checks: start ``@@``, L ≤ 1024, end ``##``, checksum) and ``Rejected``
items carrying the raw bytes and the ``CodecError`` for quarantine (and a deny, when
the header was complete).  It never raises on input.

Resynchronisation: frame on ``@@``, read L at offset 24 and refuse L > 1024 before
waiting for more bytes; a candidate whose end bytes are wrong is reported and the scan
resumes one byte after its ``@@`` (dgiot falls through the same way), so a real frame
hidden behind a false start is still found.  A checksum failure with correct end bytes
consumes the whole candidate: start, length and end agree that it was one frame.

The buffer is bounded: at most ``max_buffer`` bytes are held (≥ one maximum frame);
bytes that cannot start a frame are dropped at once and counted in ``garbage_bytes``.
"""

from __future__ import annotations

import msgspec

from .codec import checksum
from .errors import CodecError, Problem, error
from .model import END, HEADER_SIZE, MAX_ADU, MAX_FRAME, MIN_FRAME, START

#: most garbage bytes kept in one ``Rejected`` item (the rest are only counted)
GARBAGE_SAMPLE = 256


class Rejected(msgspec.Struct, frozen=True):
    """Bytes that are not a valid frame, with the reason.  ``header`` is True when the
    27 header bytes are present (so a deny can echo serial and addresses)."""

    raw: bytes
    error: CodecError
    header: bool

    @property
    def garbage(self) -> bool:
        return self.error.code == Problem.GARBAGE


class FramerStats(msgspec.Struct):
    frames: int = 0
    rejected: int = 0
    garbage_bytes: int = 0
    bytes_in: int = 0


class Framer:
    def __init__(self, max_buffer: int = 8 * MAX_FRAME) -> None:
        if max_buffer < MAX_FRAME:
            raise ValueError(f"max_buffer must hold one maximum frame ({MAX_FRAME} bytes)")
        self.max_buffer = max_buffer
        self.stats = FramerStats()
        self._buf = bytearray()
        self._garbage = bytearray()  # sample of the current garbage run
        self._garbage_run = 0
        self._shadow = 0  # _buf[:_shadow] lies inside a candidate already rejected

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | Rejected]:
        out: list[bytes | Rejected] = []
        view = memoryview(bytes(data))
        self.stats.bytes_in += len(view)
        while view:
            room = self.max_buffer - len(self._buf)
            self._buf += view[:room]
            view = view[room:]
            self._scan(out)
        self._flush_garbage(out)
        return out

    def close(self) -> list[bytes | Rejected]:
        """End of stream: whatever is buffered is a truncated frame or garbage."""
        out: list[bytes | Rejected] = []
        if self._buf:
            if self._buf.startswith(START) and self._shadow == 0:
                raw = bytes(self._buf)
                self._reject(out, raw, error(Problem.SHORT, "frame", len(raw),
                                             f"stream ended after {len(raw)} bytes of a frame",
                                             f"数据流在帧的第 {len(raw)} 字节处结束"))
            else:
                self._garbage_bytes(self._buf)
            self._buf.clear()
        self._shadow = 0
        self._flush_garbage(out)
        return out

    # -------------------------------------------------------------- internals

    def _scan(self, out: list[bytes | Rejected]) -> None:
        buf = self._buf
        pos = 0
        while True:
            i = buf.find(START, pos)
            if i < 0:
                keep = 1 if buf.endswith(b"@") else 0  # a start split across reads
                self._skip(buf, pos, len(buf) - keep)
                pos = len(buf) - keep
                break
            self._skip(buf, pos, i)
            pos = i
            if len(buf) - pos < HEADER_SIZE:
                break
            length = buf[pos + 24] | buf[pos + 25] << 8
            if length > MAX_ADU:
                self._candidate_failed(out, pos, bytes(buf[pos:pos + HEADER_SIZE]), error(
                    Problem.ADU_TOO_LONG, "length", 24, f"ADU length {length} exceeds {MAX_ADU}",
                    f"应用数据单元长度 {length} 超过 {MAX_ADU}"))
                self._skip(buf, pos, pos + 1)
                pos += 1
                continue
            total = MIN_FRAME + length
            if len(buf) - pos < total:
                later = self._complete_frame_after(buf, pos)
                if later is None:
                    break
                # a whole valid frame starts inside this unfinished candidate: the candidate was a
                # false start (or a truncated frame), so do not hold the real one back
                self._skip(buf, pos, later)
                pos = later
                continue
            candidate = bytes(buf[pos:pos + total])
            if candidate[-2:] != END:
                self._candidate_failed(out, pos, candidate, error(
                    Problem.END, "end", total - 2, "no 23 23 ('##') where the length field puts the end",
                    "长度字段所指位置没有结束符 23 23（##）"))
                self._skip(buf, pos, pos + 1)
                pos += 1
                continue
            expected = checksum(candidate[:-3])
            if candidate[-3] != expected:
                later = self._complete_frame_after(buf, pos)
                if later is not None and later < pos + total:
                    # a whole valid frame inside: this "frame" was a false start ending on its end bytes
                    self._skip(buf, pos, pos + 1)
                    pos += 1
                    continue
                self._flush_garbage(out)
                self._reject(out, candidate, error(
                    Problem.CHECKSUM, "checksum", total - 3,
                    f"checksum is 0x{candidate[-3]:02X}, the bytes sum to 0x{expected:02X}",
                    f"校验和为 0x{candidate[-3]:02X}，计算值为 0x{expected:02X}"))
            else:
                self._flush_garbage(out)
                self.stats.frames += 1
                out.append(candidate)
            pos += total
        del buf[:pos]
        self._shadow = max(0, self._shadow - pos)

    @staticmethod
    def _complete_frame_after(buf: bytearray, pos: int) -> int | None:
        """Offset of the first complete, valid frame starting after ``pos``, if any."""
        j = buf.find(START, pos + 1)
        while j >= 0 and len(buf) - j >= MIN_FRAME:
            length = buf[j + 24] | buf[j + 25] << 8
            end = j + MIN_FRAME + length
            if length <= MAX_ADU and end <= len(buf) and buf[end - 2:end] == END \
                    and buf[end - 3] == checksum(buf[j:end - 3]):
                return j
            j = buf.find(START, j + 1)
        return None

    def _skip(self, buf: bytearray, start: int, stop: int) -> None:
        """Bytes [start, stop) are not the start of a frame."""
        if stop <= start:
            return
        # bytes inside a candidate already reported are not garbage a second time
        shadowed = max(0, min(stop, self._shadow) - start)
        if stop - start > shadowed:
            self._garbage_bytes(buf[start + shadowed:stop])

    def _garbage_bytes(self, chunk: bytes | bytearray) -> None:
        self.stats.garbage_bytes += len(chunk)
        self._garbage_run += len(chunk)
        room = GARBAGE_SAMPLE - len(self._garbage)
        if room > 0:
            self._garbage += chunk[:room]

    def _candidate_failed(self, out: list[bytes | Rejected], pos: int, raw: bytes, exc: CodecError) -> None:
        # A false start inside a candidate already rejected is part of that one's bytes; a
        # candidate with a whole valid frame inside it was a false start: plain garbage.
        if pos < self._shadow:
            return
        later = self._complete_frame_after(self._buf, pos)
        if later is not None and later < pos + len(raw):
            return
        self._flush_garbage(out)
        self._reject(out, raw, exc)
        self._shadow = pos + len(raw)

    def _reject(self, out: list[bytes | Rejected], raw: bytes, exc: CodecError) -> None:
        self.stats.rejected += 1
        out.append(Rejected(raw, exc, len(raw) >= HEADER_SIZE))

    def _flush_garbage(self, out: list[bytes | Rejected]) -> None:
        if self._garbage_run:
            n = self._garbage_run
            out.append(Rejected(bytes(self._garbage), error(
                Problem.GARBAGE, "stream", None, f"{n} bytes outside any frame", f"{n} 字节不属于任何帧"), False))
            self._garbage.clear()
            self._garbage_run = 0
