"""The codec's one exception family and its warnings.

Every problem has a ``Problem`` code, the dotted ``field`` it concerns (``checksum``,
``adu.objects[0].time.month``) and the byte ``offset`` in the frame where it starts,
with a message in Chinese and English.  ``Problem`` codes fall in two groups:

* **check errors** — the frame cannot be trusted (§6.5.3 start/end, length,
  checksum, unrecognised command, plus ADU structure that cannot be parsed):
  raised in every mode; a receiver discards the frame and replies deny.
* **pitfalls** — the interoperability problems of the reference's section 8
  (version bytes, text padding, count over the maximum, missing time tags, clock
  skew …): raised in strict mode, reported as ``CodecWarning`` in tolerant mode.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Problem(StrEnum):
    # check errors: always raised
    SHORT = "short"  # fewer bytes than the shortest frame / than the header says
    START = "start"
    END = "end"
    LENGTH = "length"  # total length ≠ 30 + L
    ADU_TOO_LONG = "adu_too_long"  # L > 1024
    CHECKSUM = "checksum"
    COMMAND = "command"  # unrecognised command byte
    ADU_STRUCTURE = "adu_structure"  # ADU too short, objects overrun, length ≠ 2 + n × size
    GARBAGE = "garbage"  # framer: bytes outside any frame
    # pitfalls: raised in strict mode, warnings in tolerant mode
    VERSION = "version"
    TEXT_PADDING = "text_padding"
    TEXT_ENCODING = "text_encoding"
    COUNT_OVER_MAX = "count_over_max"
    COUNT_ZERO = "count_zero"
    TIME_TAG_MISSING = "time_tag_missing"
    TIME_TAG_INVALID = "time_tag_invalid"
    CLOCK_SKEW = "clock_skew"
    RESERVED_TYPE = "reserved_type"
    TYPE_COMMAND = "type_command"  # ADU type not valid for this command
    RESERVED_BITS = "reserved_bits"
    RESERVED_BYTE = "reserved_byte"
    SERIAL_ECHO = "serial_echo"  # reply serial ≠ request serial
    ADDRESS_ECHO = "address_echo"  # reply addresses not the request's swapped
    # encode-side input problems (JSON or Struct values out of range)
    VALUE = "value"


CHECK_ERRORS = frozenset({
    Problem.SHORT, Problem.START, Problem.END, Problem.LENGTH, Problem.ADU_TOO_LONG,
    Problem.CHECKSUM, Problem.COMMAND, Problem.ADU_STRUCTURE, Problem.GARBAGE,
})


class CodecWarning(msgspec.Struct, frozen=True):
    """A pitfall found while decoding in tolerant mode (the frame was still decoded)."""

    code: Problem
    field: str
    offset: int | None
    en: str
    zh: str

    def text(self) -> str:
        where = f" @{self.offset}" if self.offset is not None else ""
        return f"{self.field}{where}: {self.zh} / {self.en}"


class CodecError(Exception):
    """Base of every exception the codec, the framer and the JSON format raise."""

    def __init__(self, code: Problem, field: str, offset: int | None, en: str, zh: str) -> None:
        self.code = code
        self.field = field
        self.offset = offset
        self.en = en
        self.zh = zh
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{field}{where}: {en} / {zh}")

    @property
    def deny(self) -> bool:
        """True for check errors, which a receiver answers with a deny (§6.5.3)."""
        return self.code in CHECK_ERRORS

    def as_warning(self) -> CodecWarning:
        return CodecWarning(self.code, self.field, self.offset, self.en, self.zh)

    def to_json(self) -> dict[str, object]:
        return {"code": str(self.code), "field": self.field, "offset": self.offset, "en": self.en, "zh": self.zh}


class FrameError(CodecError):
    """The frame's envelope is wrong: start, end, length, checksum (deny)."""


class CommandError(CodecError):
    """Unrecognised command byte (deny)."""


class AduError(CodecError):
    """The application data unit is malformed, or (strict mode) shows a pitfall."""


class HeaderError(CodecError):
    """A header field shows a pitfall (strict mode): version bytes, time tag, clock skew."""


class ReplyError(CodecError):
    """A reply does not match its request (serial or addresses not echoed; strict mode)."""


class EncodeError(CodecError):
    """A value cannot be encoded (out of range, too long, inconsistent JSON)."""


_CLASS_FOR: dict[Problem, type[CodecError]] = {
    Problem.SHORT: FrameError,
    Problem.START: FrameError,
    Problem.END: FrameError,
    Problem.LENGTH: FrameError,
    Problem.ADU_TOO_LONG: FrameError,
    Problem.CHECKSUM: FrameError,
    Problem.GARBAGE: FrameError,
    Problem.COMMAND: CommandError,
    Problem.VERSION: HeaderError,
    Problem.CLOCK_SKEW: HeaderError,
    Problem.SERIAL_ECHO: ReplyError,
    Problem.ADDRESS_ECHO: ReplyError,
    Problem.VALUE: EncodeError,
}


def error(code: Problem, field: str, offset: int | None, en: str, zh: str) -> CodecError:
    """The exception of the right subclass for ``code``."""
    cls = _CLASS_FOR.get(code, AduError)
    if code in (Problem.TIME_TAG_INVALID, Problem.CLOCK_SKEW):
        cls = AduError if field.startswith("adu") else HeaderError
    return cls(code, field, offset, en, zh)
