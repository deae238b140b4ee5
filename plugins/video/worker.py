"""The detector worker process: ``python -m firebus.plugins.video.worker --sock FD --shm FD``.

It imports the detector class named in the ``Start`` message (so a vendor's torch or
onnxruntime is only ever imported here, never in the core), makes one instance per
stream, and answers each ``Frame`` with a ``Result`` or a ``Failed``.  Every result is
checked against the contract (``check_detections``) before it leaves: a violating one
is reported as ``invalid_output`` and its detections are withheld.

The worker exits when the host closes the socket (the host died or stopped it).
"""

from __future__ import annotations

import argparse
import importlib
import mmap
import os
import socket
import sys
import time
import traceback

import msgspec
import numpy as np

from firebus.sdk.detector import DetectionError, VideoDetector, check_detections

from . import ipc


def load_class(path: str) -> type[VideoDetector]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"detector {path!r} is not 'package.module:ClassName'")
    obj: object = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type) or not callable(getattr(obj, "detect", None)):
        raise TypeError(f"{path} is not a detector class")
    return obj  # type: ignore[return-value]


def _short(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"[:500]


def serve(sock: socket.socket, shm: mmap.mmap | None) -> int:
    reader = ipc.Reader(from_worker=False)
    send = lambda msg: sock.sendall(ipc.encode(msg))  # noqa: E731
    msgs = ipc.recv_blocking(sock, reader)
    if not msgs or not isinstance(msgs[0], ipc.Start):
        return 2
    start: ipc.Start = msgs[0]  # type: ignore[assignment]
    try:
        cls = load_class(start.detector)
        options = msgspec.convert(start.options, cls.Options)
    except Exception as exc:  # noqa: BLE001 — reported to the host, which raises a fault
        send(ipc.StartFailed(error=_short(exc)))
        return 3
    send(ipc.Ready(pid=os.getpid(), type_key=str(getattr(cls, "type_key", cls.__name__))))
    detectors: dict[int, VideoDetector] = {}
    pending = msgs[1:]
    while True:
        if not pending:
            pending = ipc.recv_blocking(sock, reader)
            if not pending:
                break  # host closed the socket
        msg = pending.pop(0)
        if isinstance(msg, ipc.Stop):
            break
        if isinstance(msg, ipc.Open):
            try:
                detectors[msg.stream] = cls(options, msg.setup)
            except Exception as exc:  # noqa: BLE001
                send(ipc.Failed(seq=-1, stream=msg.stream, ts=0.0, kind="exception",
                                detail=f"cannot create the detector: {_short(exc)}"))
            continue
        if isinstance(msg, ipc.Close):
            det = detectors.pop(msg.stream, None)
            if det is not None:
                try:
                    det.close()
                except Exception:  # noqa: BLE001 — closing must not take the worker down
                    pass
            continue
        if isinstance(msg, ipc.Frame):
            det = detectors.get(msg.stream)
            if det is None or shm is None:
                send(ipc.Failed(seq=msg.seq, stream=msg.stream, ts=msg.ts, kind="exception",
                                detail="no detector for this stream"))
                continue
            n = msg.height * msg.width * 3
            image = np.frombuffer(shm, np.uint8, count=n, offset=msg.offset).reshape(msg.height, msg.width, 3).copy()
            t0 = time.perf_counter()
            try:
                out = det.detect(image, msg.ts)
            except Exception as exc:  # noqa: BLE001
                send(ipc.Failed(seq=msg.seq, stream=msg.stream, ts=msg.ts, kind="exception", detail=_short(exc),
                                ms=(time.perf_counter() - t0) * 1000))
                continue
            ms = (time.perf_counter() - t0) * 1000
            try:
                dets = check_detections(out)
                send(ipc.Result(seq=msg.seq, stream=msg.stream, ts=msg.ts, detections=dets, ms=ms))
            except (DetectionError, TypeError, msgspec.EncodeError) as exc:
                send(ipc.Failed(seq=msg.seq, stream=msg.stream, ts=msg.ts, kind="invalid_output",
                                detail=str(exc)[:500], ms=ms))
    for det in detectors.values():
        try:
            det.close()
        except Exception:  # noqa: BLE001
            pass
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="firebus video detector worker (started by the host)")
    ap.add_argument("--sock", type=int, required=True)
    ap.add_argument("--shm", type=int, default=-1)
    ap.add_argument("--shm-bytes", type=int, default=0)
    args = ap.parse_args(argv)
    sock = socket.socket(fileno=args.sock)
    shm = mmap.mmap(args.shm, args.shm_bytes) if args.shm >= 0 and args.shm_bytes > 0 else None
    try:
        return serve(sock, shm)
    except (BrokenPipeError, ConnectionResetError, ipc.ProtocolError):
        return 1
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
