"""The video detector contract: what a flame/smoke recognition back-end implements.

A vendor writes one class::

    class AcmeFlame(VideoDetector):
        type_key = "acme.flame"
        Options = AcmeOptions            # a msgspec Struct, validated from the site file

        def __init__(self, options, setup):
            super().__init__(options, setup)
            import onnxruntime           # heavy stacks: import here, never at module level
            self.session = ...

        def detect(self, image, ts):     # uint8 H×W×3 BGR, seconds since the epoch
            return [Detection(label=Label.FIRE, score=0.91, box=(0.1, 0.2, 0.3, 0.5))]

and returns it from ``firebus_register_detectors``.  The host runs it **out of process**
(one worker process per detector, frames over shared memory, results as msgspec
messages): a crash, hang or slow frame is the worker's problem, never the core's.  One
instance serves one camera stream, and ``detect`` is called in timestamp order, so a
detector may keep temporal state; ``reset`` is called when the stream was interrupted.

The output shape is fixed (Frigate's lesson): a list of :class:`Detection` with a
:class:`Label`, a score in 0..1 and a box ``(x_min, y_min, x_max, y_max)`` normalised to
0..1.  ``first_seen`` and ``track_id`` are optional: a detector that tracks sets them, the
host's :class:`Tracker` fills them in otherwise.  The event lifecycle
``new | update | end`` comes from that tracker, the same for every vendor.

The camera's mask (regions to ignore: lamps, windows) is in ``setup.mask``; a detector
should honour it, and the host drops detections lying mostly inside it anyway.
``firebus.sdk.testing.detector_contract.VideoDetectorContract`` is the suite to pass.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Iterable

import msgspec

if TYPE_CHECKING:  # numpy only where frames are handled: a core without cameras never loads it (15 MB)
    import numpy as np
    from numpy.typing import NDArray

    Image = NDArray[np.uint8]

Box = tuple[float, float, float, float]


class Label(StrEnum):
    FIRE = "fire"
    SMOKE = "smoke"


class EventKind(StrEnum):
    NEW = "new"
    UPDATE = "update"
    END = "end"


class Detection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One recognised region in one frame."""

    label: Label
    #: confidence 0..1 (the detector's own calibration; the host compares it with its threshold)
    score: float
    #: (x_min, y_min, x_max, y_max), each 0..1 of the frame's width / height
    box: Box
    #: when the detector first saw this region (seconds since the epoch), if it tracks
    first_seen: float | None = None
    #: the detector's own id for the region, stable across frames, if it tracks
    track_id: int | None = None


class NoDetectorOptions(msgspec.Struct, forbid_unknown_fields=True):
    """For detectors that take no options."""


# --------------------------------------------------------------------------- masks


class MaskRegion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A region to ignore: a polygon of normalised (x, y) points, or a rectangle."""

    polygon: list[tuple[float, float]] = []
    rect: Box | None = None

    def points(self) -> list[tuple[float, float]]:
        if self.rect is not None:
            x0, y0, x1, y1 = self.rect
            return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return list(self.polygon)

    def problem(self) -> str | None:
        """Why this region is unusable (None: it is fine)."""
        pts = self.points()
        if self.rect is not None and self.polygon:
            return "give either polygon or rect, not both"
        if len(pts) < 3:
            return "a polygon needs at least 3 points"
        bad = [p for p in pts if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in p)]
        if bad:
            return f"points must be normalised to 0..1 (got {bad[0]})"
        if self.rect is not None and not (self.rect[0] < self.rect[2] and self.rect[1] < self.rect[3]):
            return "rect must be (x_min, y_min, x_max, y_max) with min < max"
        return None


class Mask(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The regions of a camera's picture that no detection may come from."""

    regions: list[MaskRegion] = []

    def raster(self, width: int, height: int) -> NDArray[np.bool_]:
        """Boolean (height, width) image, True where ignored (even-odd rule per polygon)."""
        import numpy as np

        out = np.zeros((height, width), bool)
        if not self.regions:
            return out
        ys = (np.arange(height) + 0.5) / height
        xs = (np.arange(width) + 0.5) / width
        for region in self.regions:
            pts = region.points()
            inside = np.zeros((height, width), bool)
            n = len(pts)
            for k in range(n):
                (x0, y0), (x1, y1) = pts[k], pts[(k + 1) % n]
                if y0 == y1:
                    continue
                # rows whose centre the edge crosses, and where along x it crosses them
                crosses = ((ys >= min(y0, y1)) & (ys < max(y0, y1)))
                if not crosses.any():
                    continue
                xc = x0 + (ys[crosses] - y0) * (x1 - x0) / (y1 - y0)
                inside[crosses] ^= xs[None, :] < xc[:, None]
            out |= inside
        return out

    def masked_share(self, box: Box, width: int = 160, height: int = 120) -> float:
        """Share of the box's area that lies in the mask (on a coarse raster)."""
        if not self.regions:
            return 0.0
        r = self.raster(width, height)
        x0, y0, x1, y1 = box
        a, b = int(x0 * width), int(y0 * height)
        c, d = max(a + 1, int(math.ceil(x1 * width))), max(b + 1, int(math.ceil(y1 * height)))
        patch = r[b:d, a:c]
        return float(patch.mean()) if patch.size else 0.0


class DetectorSetup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the host tells a detector about the stream it serves."""

    camera: str = ""
    mask: Mask = Mask()
    #: analysed frames per second the host aims for (frames may still be dropped)
    fps: float = 10.0


# --------------------------------------------------------------------------- the base class


class VideoDetector(ABC):
    """A flame/smoke recognition back-end: one instance per camera stream, run in a worker process."""

    type_key: ClassVar[str]
    Options: ClassVar[type[msgspec.Struct]] = NoDetectorOptions
    #: True when ``detect`` already requires persistence over time (K of N frames) before it
    #: reports; the host's tracker then confirms a region at its first detection.
    confirms: ClassVar[bool] = False
    #: ``"package.module:Class"`` that the worker process imports to detect, when this class
    #: only declares the detector (:class:`DetectorDeclaration`); None: this class detects
    worker_class: ClassVar[str | None] = None

    def __init__(self, options: msgspec.Struct | None = None, setup: DetectorSetup | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.setup = setup if setup is not None else DetectorSetup()

    @abstractmethod
    def detect(self, image: Image, ts: float) -> list[Detection]:
        """Detections in one frame (uint8 H×W×3 BGR) taken at ``ts`` (seconds since the epoch)."""

    def reset(self) -> None:
        """The stream was interrupted (reconnect, restart): forget temporal state."""

    def close(self) -> None:
        """Release what the detector holds (called once, when its stream closes)."""


class DetectorDeclaration(VideoDetector):
    """A detector declared without importing it (SDK 1.2).

    The core reads a declaration's ``type_key``, ``Options`` and ``confirms`` at start-up and
    never calls ``detect``: detection runs in the worker process, which imports
    ``worker_class``.  Declaring the detector class itself would import its numpy, OpenCV or
    model runtime into every core that has the plugin installed, cameras or not (the
    built-in detector: 21 MB of each 10,000-device start, bench/coldstart.py).  Keep the declaration, and the
    ``Options`` it names, in a module that imports nothing heavy::

        class AcmeFlameDeclared(DetectorDeclaration):
            type_key = "acme.flame"
            Options = AcmeOptions
            worker_class = "acme_firebus.flame:AcmeFlame"
    """

    worker_class: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        path = cls.worker_class
        module, _, name = (path or "").partition(":")
        if not module or not name:
            raise TypeError(f"{cls.__qualname__}.worker_class must be 'package.module:Class', not {path!r}")

    def detect(self, image: Image, ts: float) -> list[Detection]:
        raise TypeError(f"{type(self).__qualname__} only declares a detector; the worker runs {self.worker_class}")


def worker_path(cls: type[VideoDetector]) -> str:
    """What the worker process imports for the detector ``cls`` declares: ``module:Class``."""
    return cls.worker_class or f"{cls.__module__}:{cls.__qualname__}"


# --------------------------------------------------------------------------- output checks


class DetectionError(ValueError):
    """A detector's output does not have the fixed shape; the message says what is wrong."""


def check_detections(out: object) -> list[Detection]:
    """Return ``out`` if it is a valid detection list, else raise :class:`DetectionError`.

    The host runs this on every result in the worker: a violating result is counted and
    reported (``invalid_output``), never passed on or guessed at.
    """
    if not isinstance(out, list):
        raise DetectionError(f"detect() must return a list of Detection, got {type(out).__name__}")
    for i, d in enumerate(out):
        if not isinstance(d, Detection):
            raise DetectionError(f"item {i} is a {type(d).__name__}, not a firebus.sdk.detector.Detection")
        if not isinstance(d.label, Label):
            try:
                Label(d.label)
            except ValueError:
                raise DetectionError(f"item {i}: label {d.label!r} is not one of {[str(v) for v in Label]}") from None
        if not isinstance(d.score, (int, float)) or not math.isfinite(d.score) or not 0.0 <= d.score <= 1.0:
            raise DetectionError(f"item {i}: score {d.score!r} is not in 0..1")
        box = d.box
        if not isinstance(box, (tuple, list)) or len(box) != 4:
            raise DetectionError(f"item {i}: box {box!r} is not 4 numbers (x_min, y_min, x_max, y_max)")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            raise DetectionError(f"item {i}: box {box!r} has a value that is not a finite number")
        if not all(0.0 <= v <= 1.0 for v in box):
            raise DetectionError(f"item {i}: box {box!r} is not normalised to 0..1 (pixels?)")
        if box[0] > box[2] or box[1] > box[3]:
            raise DetectionError(f"item {i}: box {box!r} is not ordered (x_min, y_min, x_max, y_max)")
        if d.first_seen is not None and (not isinstance(d.first_seen, (int, float)) or not math.isfinite(d.first_seen)):
            raise DetectionError(f"item {i}: first_seen {d.first_seen!r} is not a timestamp")
        if d.track_id is not None and (not isinstance(d.track_id, int) or isinstance(d.track_id, bool)):
            raise DetectionError(f"item {i}: track_id {d.track_id!r} is not an integer")
    return out


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- host tracker


class Track(msgspec.Struct, frozen=True):
    """A region followed over time, as published in events."""

    id: str
    label: Label
    score: float
    top_score: float
    box: Box
    first_seen: float
    last_seen: float
    hits: int


class TrackEvent(msgspec.Struct, frozen=True):
    """Frigate-style lifecycle event: ``before`` is the last published state (None for ``new``)."""

    kind: EventKind
    camera: str
    after: Track
    before: Track | None = None
    end_time: float | None = None


class TrackerOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: a region becomes an event after ``min_hits`` detections in its last ``window`` frames (K of N)
    min_hits: int = 3
    window: int = 5
    #: seconds without a detection after which an event ends
    end_after: float = 5.0
    #: detections overlapping a track by at least this IoU continue it
    min_iou: float = 0.1
    #: an ``update`` goes out when the top score rose by this much or the box moved (IoU < 0.5) …
    update_score_step: float = 0.05
    #: … but not more often than this (seconds)
    update_interval: float = 1.0
    #: detections with at least this share of their box in the camera mask are dropped
    mask_share: float = 0.5


class _TrackState:
    __slots__ = ("id", "label", "vendor_id", "box", "score", "top", "first", "last", "hits", "recent",
                 "confirmed", "published", "published_at")

    def __init__(self, tid: str, det: Detection, ts: float) -> None:
        self.id, self.label, self.vendor_id = tid, det.label, det.track_id
        self.box, self.score, self.top = det.box, det.score, det.score
        self.first = det.first_seen if det.first_seen is not None else ts
        self.last, self.hits = ts, 0
        self.recent: deque[bool] = deque()
        self.confirmed = False
        self.published: Track | None = None
        self.published_at = 0.0

    def track(self) -> Track:
        return Track(id=self.id, label=self.label, score=round(self.score, 4), top_score=round(self.top, 4),
                     box=self.box, first_seen=self.first, last_seen=self.last, hits=self.hits)


class Tracker:
    """Turns per-frame detections of one camera into ``new | update | end`` events (runs in the host)."""

    def __init__(self, camera: str, options: TrackerOptions = TrackerOptions(), *, confirms: bool = False,
                 mask: Mask = Mask()) -> None:
        self.camera = camera
        self.options = options
        self.confirms = confirms
        self.mask = mask
        self._tracks: list[_TrackState] = []
        self._next = 1

    def active(self) -> list[Track]:
        return [t.track() for t in self._tracks if t.confirmed]

    def update(self, detections: Iterable[Detection], ts: float) -> list[TrackEvent]:
        o = self.options
        dets = [d for d in detections if not self.mask.regions or self.mask.masked_share(d.box) < o.mask_share]
        matched: set[int] = set()
        seen: set[int] = set()
        for d in sorted(dets, key=lambda d: -d.score):
            best, best_iou = None, o.min_iou
            for k, t in enumerate(self._tracks):
                if k in matched or t.label != d.label:
                    continue
                if d.track_id is not None and t.vendor_id == d.track_id:
                    best = k
                    break
                v = iou(t.box, d.box)
                if v >= best_iou:
                    best, best_iou = k, v
            if best is None:
                self._tracks.append(_TrackState(f"{self.camera}-{self._next}", d, ts))
                self._next += 1
                best = len(self._tracks) - 1
            t = self._tracks[best]
            matched.add(best)
            seen.add(best)
            t.box, t.score, t.top, t.last = d.box, d.score, max(t.top, d.score), ts
            t.vendor_id = d.track_id if d.track_id is not None else t.vendor_id
            t.hits += 1
        events: list[TrackEvent] = []
        keep: list[_TrackState] = []
        for k, t in enumerate(self._tracks):
            t.recent.append(k in seen)
            while len(t.recent) > o.window:
                t.recent.popleft()
            if not t.confirmed and (self.confirms or sum(t.recent) >= o.min_hits) and k in seen:
                t.confirmed = True
                after = t.track()
                events.append(TrackEvent(kind=EventKind.NEW, camera=self.camera, after=after))
                t.published, t.published_at = after, ts
            elif t.confirmed and k in seen and t.published is not None:
                moved = iou(t.published.box, t.box) < 0.5
                rose = t.top >= t.published.top_score + o.update_score_step
                if (moved or rose) and ts - t.published_at >= o.update_interval:
                    after = t.track()
                    events.append(TrackEvent(kind=EventKind.UPDATE, camera=self.camera, after=after,
                                             before=t.published))
                    t.published, t.published_at = after, ts
            if ts - t.last >= o.end_after or (not t.confirmed and not any(t.recent)):
                if t.confirmed:
                    events.append(TrackEvent(kind=EventKind.END, camera=self.camera, after=t.track(),
                                             before=t.published, end_time=t.last))
                continue
            keep.append(t)
        self._tracks = keep
        return events

    def end_all(self, ts: float) -> list[TrackEvent]:
        """End every open event (the stream stopped or the detector failed)."""
        events = [TrackEvent(kind=EventKind.END, camera=self.camera, after=t.track(), before=t.published,
                             end_time=t.last) for t in self._tracks if t.confirmed]
        self._tracks = []
        return events


__all__ = [
    "Box", "Detection", "DetectionError", "DetectorSetup", "EventKind", "Label", "Mask", "MaskRegion",
    "NoDetectorOptions", "Track", "TrackEvent", "Tracker", "TrackerOptions", "VideoDetector",
    "check_detections", "iou",
]
