"""Option structs of the video plugin, in a module that imports nothing heavy.

The camera driver's ``Options`` (validated by ``firebus check`` and at every start) are
made of these; defining them next to PyAV, OpenCV and numpy would load those into every
core that merely has the plugin installed.  ``sources``, ``ringbuf`` and ``supervisor``
re-export them under their old names.
"""

from __future__ import annotations

import enum

import msgspec

from firebus.sdk.detector import DetectorDeclaration


class SourceKind(enum.StrEnum):
    RTSP = "rtsp"
    MJPEG = "mjpeg"
    SNAPSHOT = "snapshot"
    FILE = "file"


class CameraOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    #: None: from the URL (rtsp:// → rtsp, http(s):// → mjpeg, else a file)
    kind: SourceKind | None = None
    analysis_fps: float = 10.0
    stall_timeout_s: float = 10.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 30.0
    #: seconds between GETs of a snapshot URL
    snapshot_interval_s: float = 0.5
    #: socket open / read timeout for network sources
    timeout_s: float = 10.0
    rtsp_transport: str = "tcp"
    #: files: play at the file's own frame rate (False: as fast as decoding goes)
    realtime: bool = True
    loop: bool = False

    def source_kind(self) -> SourceKind:
        if self.kind is not None:
            return self.kind
        u = self.url.lower()
        if u.startswith(("rtsp://", "rtsps://")):
            return SourceKind.RTSP
        if u.startswith(("http://", "https://")):
            return SourceKind.SNAPSHOT if u.split("?")[0].endswith((".jpg", ".jpeg")) else SourceKind.MJPEG
        return SourceKind.FILE


class RingOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pre_s: float = 10.0
    post_s: float = 20.0
    clip_fps: float = 10.0
    jpeg_quality: int = 80
    #: longest side of stored frames (0: as the camera sends them)
    max_side: int = 1280


class SupervisorOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    frame_timeout_s: float = 3.0
    start_timeout_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_after_s: float = 10.0
    error_limit: int = 3
    slow_window_s: float = 10.0
    slow_min_frames: int = 10
    slow_drop_ratio: float = 0.5
    #: largest frame accepted (bytes); frames are the analysis-size copy, not the camera's full frame
    max_frame_bytes: int = 640 * 480 * 3
    max_streams: int = 16
    #: interpreter for the worker (a vendor's own virtualenv with firebus installed); default: this one
    python: str = ""
    #: extra import paths for the worker (prepended to PYTHONPATH)
    pythonpath: list[str] = []


class CpuOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: candidate thresholds on the cell classifier; None: the video point shipped with the model
    #: (chosen on validation folds at a looser frame FPR, 10 % flame / 15 % smoke, since the
    #: temporal stage must confirm every candidate)
    fire_threshold: float | None = None
    smoke_threshold: float | None = None
    #: seconds per evidence window, and K of N windows for a report
    window_s: float = 1.0
    fire_k: int = 3
    fire_n: int = 4
    smoke_k: int = 6
    smoke_n: int = 8
    #: a window counts only if the blob was a candidate in at least this share of its frames
    window_min_hits: float = 0.3
    #: a flame blob must move: share of its pixels differing from the fast background
    fire_min_motion: float = 0.02
    #: a smoke blob must drift: share of its pixels differing from the slow background
    smoke_min_motion: float = 0.05
    #: share of moving pixels above which the camera itself is taken to move (frame ignored)
    global_motion_max: float = 0.6
    #: grey-level difference counted as motion
    motion_delta: float = 10.0
    #: background learning rates per analysed frame (fast: flame, slow: smoke)
    fast_rate: float = 0.2
    slow_rate: float = 0.02
    #: temporal route (Töreyin-style) for flames the still classifier scores low (small, far, unusual
    #: scenes): a cell with this share of *moving* flame-coloured pixels is a candidate when the
    #: classifier gives it at least ``fire_floor``; such a blob must also flicker to count
    fire_moving_colour_share: float = 0.04
    fire_floor: float = 0.05
    fire_min_flicker: float = 0.35
    #: seconds a confirmed blob keeps being reported after its last candidate frame
    hold_s: float = 1.0
    #: a cell with at least this share of masked pixels is never a candidate
    mask_cell_share: float = 0.5


class CpuDetectorDeclared(DetectorDeclaration):
    """The built-in detector as the core sees it: its key, options and persistence; the
    worker process imports ``cascade.CpuDetector`` (numpy, OpenCV, the model)."""

    type_key = "video.cpu"
    Options = CpuOptions
    confirms = True
    worker_class = "firebus.plugins.video.cascade:CpuDetector"
