"""Per-camera ring buffer: the still image of an alarm's moment and its clip (pre + post seconds).

Frames are kept JPEG-compressed at ``clip_fps`` (10 s of 640×480 at 10 fps ≈ 4 MB instead
of 90 MB raw).  ``request_clip(ts)`` returns at once; the clip is written by a background
thread once ``post_s`` seconds after ``ts`` have been buffered (or the camera stopped),
as MP4/H.264 (libx264 in PyAV's FFmpeg), falling back to MPEG-4 part 2.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import msgspec
import numpy as np

from .options import RingOptions  # re-exported (defined where loading is cheap)

log = logging.getLogger(__name__)


class ClipInfo(msgspec.Struct, frozen=True):
    path: str
    codec: str
    frames: int
    start_ts: float
    end_ts: float
    width: int
    height: int
    bytes: int


@dataclass
class _Request:
    ts: float
    path: Path
    done: Callable[[ClipInfo | None, str], None]
    frames: list[tuple[float, bytes]]


class RingBuffer:
    def __init__(self, camera: str, options: RingOptions = RingOptions()) -> None:
        self.camera = camera
        self.options = options
        self._frames: deque[tuple[float, bytes]] = deque()
        self._last_ts = -1e18
        self._lock = threading.Lock()
        self._requests: list[_Request] = []
        self._writers: list[threading.Thread] = []

    def encode(self, image: np.ndarray) -> bytes:
        h, w = image.shape[:2]
        side = self.options.max_side
        if side and max(h, w) > side:
            f = side / max(h, w)
            image = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality])
        if not ok:
            raise ValueError("cannot encode the frame as JPEG")
        return buf.tobytes()

    def push(self, image: np.ndarray, ts: float) -> None:
        """Offer a frame; kept if it is at least 1/clip_fps after the last kept one."""
        if ts - self._last_ts < 1.0 / self.options.clip_fps - 1e-6:
            self._check_requests(ts)
            return
        jpeg = self.encode(image)
        with self._lock:
            self._last_ts = ts
            self._frames.append((ts, jpeg))
            horizon = ts - self.options.pre_s - 1.0
            while self._frames and self._frames[0][0] < horizon:
                self._frames.popleft()
            for r in self._requests:
                if r.ts - self.options.pre_s <= ts <= r.ts + self.options.post_s:
                    r.frames.append((ts, jpeg))
        self._check_requests(ts)

    def snapshot(self, ts: float | None = None) -> bytes | None:
        """JPEG of the buffered frame closest to ``ts`` (None: the newest)."""
        with self._lock:
            if not self._frames:
                return None
            if ts is None:
                return self._frames[-1][1]
            return min(self._frames, key=lambda f: abs(f[0] - ts))[1]

    def request_clip(self, ts: float, path: Path, done: Callable[[ClipInfo | None, str], None]) -> None:
        """Write the clip around ``ts`` to ``path`` once its post-roll is buffered; ``done(info, error)``."""
        with self._lock:
            pre = [f for f in self._frames if f[0] >= ts - self.options.pre_s]
            self._requests.append(_Request(ts, Path(path), done, pre))

    def flush(self) -> None:
        """Write every pending clip with what is buffered (the camera stopped)."""
        self._check_requests(float("inf"))
        for t in list(self._writers):
            t.join()

    def _check_requests(self, now: float) -> None:
        with self._lock:
            due = [r for r in self._requests if now >= r.ts + self.options.post_s]
            self._requests = [r for r in self._requests if r not in due]
        for r in due:
            t = threading.Thread(target=self._write, args=(r,), name=f"clip-{self.camera}", daemon=True)
            self._writers = [w for w in self._writers if w.is_alive()] + [t]
            t.start()

    def _write(self, r: _Request) -> None:
        try:
            info = write_clip(r.frames, r.path, self.options.clip_fps)
        except Exception as exc:  # noqa: BLE001 — reported to the requester
            log.warning("camera %s: clip %s failed: %s", self.camera, r.path, exc)
            r.done(None, str(exc))
            return
        r.done(info, "")


def write_clip(frames: list[tuple[float, bytes]], path: Path, fps: float) -> ClipInfo:
    """JPEG frames (ts, bytes) → MP4 at ``fps``; H.264 when available, else MPEG-4 part 2."""
    if not frames:
        raise ValueError("no frames buffered for the clip")
    first = cv2.imdecode(np.frombuffer(frames[0][1], np.uint8), cv2.IMREAD_COLOR)
    h, w = first.shape[:2]
    w2, h2 = w - w % 2, h - h % 2  # yuv420p needs even sizes
    path.parent.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for codec in ("libx264", "mpeg4"):
        try:
            with av.open(str(path), mode="w", format="mp4") as out:
                stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
                stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
                if codec == "libx264":
                    stream.options = {"preset": "veryfast", "crf": "26"}
                for k, (_, jpeg) in enumerate(frames):
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    if img is None:
                        continue
                    if img.shape[:2] != (h2, w2):
                        img = cv2.resize(img, (w2, h2))
                    vf = av.VideoFrame.from_ndarray(img, format="bgr24")
                    vf.pts = k
                    for packet in stream.encode(vf):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)
            return ClipInfo(path=str(path), codec=codec, frames=len(frames), start_ts=frames[0][0],
                            end_ts=frames[-1][0], width=w2, height=h2, bytes=path.stat().st_size)
        except (av.FFmpegError, ValueError) as exc:
            last_error = f"{codec}: {exc}"
            continue
    raise ValueError(f"cannot encode the clip ({last_error})")
