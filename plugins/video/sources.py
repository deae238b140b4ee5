"""Camera sources: RTSP, HTTP(S) MJPEG, HTTP(S) snapshot URLs and local files.

Each :class:`CameraSource` owns one thread that opens the source, decodes frames (PyAV /
FFmpeg for streams and files, OpenCV's JPEG decoder for snapshots), hands **every**
frame to ``on_frame`` (the ring buffer) and a **decimated** copy at ``analysis_fps`` to
``on_analysis`` (the detector), and reconnects with a doubling backoff when the source
fails.  A separate watchdog reports ``stalled`` when no frame arrived for
``stall_timeout_s`` — the camera fault of issue 15 — and ``streaming`` again once frames
flow.  Callbacks run on the camera's threads and must return quickly.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Callable

import av
import cv2
import msgspec
import numpy as np

from .options import CameraOptions, SourceKind  # re-exported (defined where loading is cheap)

log = logging.getLogger(__name__)


class CameraState(enum.StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"  # no frame for stall_timeout_s: a camera fault
    RECONNECTING = "reconnecting"
    ENDED = "ended"  # a file played to its end (loop off)
    STOPPED = "stopped"


class CameraFrame(msgspec.Struct, frozen=True):
    camera: str
    seq: int
    #: wall-clock seconds (files: start time + position in the file)
    ts: float
    image: np.ndarray  # full-resolution BGR


FrameCallback = Callable[[CameraFrame], None]
StateCallback = Callable[[str, CameraState, str], None]


class SourceError(Exception):
    pass


class CameraSource:
    def __init__(self, name: str, options: CameraOptions, *, on_frame: FrameCallback | None = None,
                 on_analysis: FrameCallback | None = None, on_state: StateCallback | None = None) -> None:
        self.name = name
        self.options = options
        self.kind = options.source_kind()
        self.on_frame = on_frame or (lambda f: None)
        self.on_analysis = on_analysis or (lambda f: None)
        self.on_state = on_state or (lambda n, s, d: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self._lock = threading.Lock()
        self._state = CameraState.STOPPED
        self._last_frame = 0.0
        self._last_analysis = -1e18
        self._seq = 0
        self.counters = {"frames": 0, "analysed": 0, "reconnects": 0, "errors": 0}
        self.last_error = ""

    # -- public ----------------------------------------------------------------------------

    @property
    def state(self) -> CameraState:
        return self._state

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._last_frame = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._watch = threading.Thread(target=self._watchdog, name=f"camera-{self.name}-watch", daemon=True)
        self._thread.start()
        self._watch.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in (self._thread, self._watch):
            if t is not None:
                t.join(timeout)
        self._thread = self._watch = None
        self._set_state(CameraState.STOPPED, "stopped")

    # -- internals -------------------------------------------------------------------------

    def _set_state(self, state: CameraState, detail: str = "") -> None:
        with self._lock:
            if state == self._state:
                return
            self._state = state
        try:
            self.on_state(self.name, state, detail)
        except Exception:  # noqa: BLE001
            log.exception("camera %s: state callback failed", self.name)

    def _deliver(self, image: np.ndarray, ts: float) -> None:
        self._seq += 1
        self._last_frame = time.monotonic()
        self.counters["frames"] += 1
        if self._state != CameraState.STREAMING:
            self._set_state(CameraState.STREAMING, "frames arriving")
        frame = CameraFrame(camera=self.name, seq=self._seq, ts=ts, image=image)
        try:
            self.on_frame(frame)
            if ts - self._last_analysis >= 1.0 / self.options.analysis_fps - 1e-6:
                self._last_analysis = ts
                self.counters["analysed"] += 1
                self.on_analysis(frame)
        except Exception:  # noqa: BLE001 — a consumer's bug must not stop the camera
            log.exception("camera %s: frame callback failed", self.name)

    def _watchdog(self) -> None:
        o = self.options
        while not self._stop.wait(min(0.2, o.stall_timeout_s / 4)):
            if self._state in (CameraState.ENDED, CameraState.STOPPED):
                continue
            idle = time.monotonic() - self._last_frame
            if idle >= o.stall_timeout_s and self._state != CameraState.STALLED:
                self._set_state(CameraState.STALLED, f"no frame for {idle:.1f} s")

    def _run(self) -> None:
        o = self.options
        backoff = o.reconnect_initial_s
        self._set_state(CameraState.CONNECTING, o.url)
        while not self._stop.is_set():
            got_frames = self.counters["frames"]
            try:
                if self.kind == SourceKind.SNAPSHOT:
                    self._run_snapshots()
                else:
                    ended = self._run_stream()
                    if ended:
                        if o.loop:
                            continue
                        self._set_state(CameraState.ENDED, "end of file")
                        return
            except SourceError as exc:
                self.last_error = str(exc)
                self.counters["errors"] += 1
                log.warning("camera %s: %s", self.name, exc)
            if self._stop.is_set():
                break
            if self.counters["frames"] > got_frames:
                backoff = o.reconnect_initial_s  # it worked for a while: start the backoff over
            if self._state != CameraState.STALLED:
                self._set_state(CameraState.RECONNECTING, self.last_error)
            self.counters["reconnects"] += 1
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, o.reconnect_max_s)

    def _run_stream(self) -> bool:
        """Decode until the source fails (raises SourceError) or a file ends (returns True)."""
        o = self.options
        opts: dict[str, str] = {}
        fmt = None
        if self.kind == SourceKind.RTSP:
            opts["rtsp_transport"] = o.rtsp_transport
        if self.kind == SourceKind.MJPEG:
            fmt = "mpjpeg"
        try:
            container = av.open(o.url, format=fmt, options=opts,
                                timeout=None if self.kind == SourceKind.FILE else (o.timeout_s, o.timeout_s))
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open {o.url}: {exc}") from exc
        try:
            stream = container.streams.video[0]
        except IndexError:
            container.close()
            raise SourceError(f"{o.url}: no video stream") from None
        stream.thread_type = "AUTO"
        t_start = time.time()
        mono_start = time.monotonic()
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return False
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:  # one bad packet: count it, go on
                    self.counters["errors"] += 1
                    self.last_error = f"decode: {exc}"
                    continue
                for frame in frames:
                    image = frame.to_ndarray(format="bgr24")
                    if self.kind == SourceKind.FILE:
                        pos = float(frame.time) if frame.time is not None else self._seq / 25.0
                        ts = t_start + pos
                        if o.realtime:
                            delay = mono_start + pos - time.monotonic()
                            if delay > 0 and self._stop.wait(delay):
                                return False
                    else:
                        ts = time.time()
                    self._deliver(image, ts)
            return self.kind == SourceKind.FILE
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{o.url}: {exc}") from exc
        finally:
            container.close()

    def _run_snapshots(self) -> None:
        o = self.options
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(o.url, timeout=o.timeout_s) as resp:  # noqa: S310 — configured URL
                    data = resp.read(20 * 1024 * 1024)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise SourceError(f"cannot fetch {o.url}: {exc}") from exc
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                self.counters["errors"] += 1
                self.last_error = f"{o.url}: not an image ({len(data)} bytes)"
            else:
                self._deliver(image, time.time())
            left = o.snapshot_interval_s - (time.monotonic() - t0)
            if left > 0 and self._stop.wait(left):
                return
