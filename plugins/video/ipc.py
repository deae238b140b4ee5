"""Messages between the host and a detector worker process, and their framing.

Control and results go over a Unix stream socket as length-prefixed msgpack (msgspec
tagged unions); pixels go through a shared-memory file (memfd) cut into fixed slots, so a
frame costs one memcpy on each side and a ~60-byte message.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
import tempfile

import msgspec

from firebus.sdk.detector import Detection, DetectorSetup

#: largest message accepted (a result with thousands of detections is already a faulty detector)
MAX_MESSAGE = 1 << 20
_LEN = struct.Struct(">I")


class Start(msgspec.Struct, tag="start"):
    """First message to a worker: which detector class to load, with its options (site-file data)."""

    detector: str  # "package.module:ClassName"
    options: dict = {}
    shm_bytes: int = 0


class Ready(msgspec.Struct, tag="ready"):
    pid: int
    type_key: str


class StartFailed(msgspec.Struct, tag="start_failed"):
    error: str


class Open(msgspec.Struct, tag="open"):
    stream: int
    setup: DetectorSetup


class Close(msgspec.Struct, tag="close"):
    stream: int


class Frame(msgspec.Struct, tag="frame"):
    seq: int
    stream: int
    offset: int
    height: int
    width: int
    ts: float


class Result(msgspec.Struct, tag="result"):
    seq: int
    stream: int
    ts: float
    detections: list[Detection]
    ms: float


class Failed(msgspec.Struct, tag="failed"):
    """``detect`` raised (kind ``exception``) or returned something outside the contract (``invalid_output``)."""

    seq: int
    stream: int
    ts: float
    kind: str
    detail: str
    ms: float = 0.0


class Stop(msgspec.Struct, tag="stop"):
    pass


ToWorker = Start | Open | Close | Frame | Stop
FromWorker = Ready | StartFailed | Result | Failed

_enc = msgspec.msgpack.Encoder()
_dec_to_worker = msgspec.msgpack.Decoder(ToWorker)
_dec_from_worker = msgspec.msgpack.Decoder(FromWorker)


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol."""


def encode(msg: msgspec.Struct) -> bytes:
    body = _enc.encode(msg)
    return _LEN.pack(len(body)) + body


class Reader:
    """Incremental decoder of length-prefixed messages from a byte stream."""

    def __init__(self, from_worker: bool) -> None:
        self._buf = bytearray()
        self._dec = _dec_from_worker if from_worker else _dec_to_worker

    def feed(self, data: bytes) -> list[msgspec.Struct]:
        self._buf += data
        out = []
        while len(self._buf) >= 4:
            (n,) = _LEN.unpack_from(self._buf)
            if n > MAX_MESSAGE:
                raise ProtocolError(f"message of {n} bytes (limit {MAX_MESSAGE})")
            if len(self._buf) < 4 + n:
                break
            body = bytes(self._buf[4:4 + n])
            del self._buf[:4 + n]
            try:
                out.append(self._dec.decode(body))
            except msgspec.DecodeError as exc:
                raise ProtocolError(str(exc)) from exc
        return out


def recv_blocking(sock: socket.socket, reader: Reader) -> list[msgspec.Struct]:
    """Block until at least one message arrived; [] means the peer closed."""
    while True:
        data = sock.recv(65536)
        if not data:
            return []
        msgs = reader.feed(data)
        if msgs:
            return msgs


def shared_memory(size: int) -> tuple[int, mmap.mmap]:
    """An anonymous shared-memory file (memfd on Linux, an unlinked temp file elsewhere) and its map."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("firebus-video-frames", os.MFD_CLOEXEC)
    else:  # pragma: no cover — non-Linux
        fh = tempfile.TemporaryFile()
        fd = os.dup(fh.fileno())
        fh.close()
    os.ftruncate(fd, size)
    return fd, mmap.mmap(fd, size)
