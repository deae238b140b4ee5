"""The built-in CPU detector (``video.cpu``): the cascade of reference video-fire.md §4.

Per analysed frame (320×240):

1. **Masks** — cells mostly inside the camera's ignore regions are never candidates, and
   masked pixels do not count as motion.
2. **Motion gate** — two running-average backgrounds: a fast one (flame flicker) and a
   slow one (smoke drifts).  When most of the picture moves (the camera pans or shakes,
   lights switch) the frame gives no evidence at all.
3. **Colour candidates + cell classifier** — ``classifier.py``: colour gate (Chen / HSV /
   flame core, or low chroma for smoke), then the shipped gradient-boosted trees on the
   cell's colour, texture, dark-channel and learned colour-table features.
4. **Tracking** — connected candidate cells form blobs, followed by IoU; per blob:
   motion share (fast background for flame, slow for smoke), flicker (sign changes of
   the blob's mean brightness), area changes, upward drift of the centroid for smoke.
5. **Persistence** — evidence is collected in windows of ``window_s`` seconds; a window
   is positive when the blob was a candidate in at least ``window_min_hits`` (30 %) of its
   frames *and* showed its temporal cue (flame: moving / flickering, smoke: slow motion); a
   blob is reported once ``k`` of the last ``n`` windows were positive (flame 3 of 4, smoke
   6 of 8).  A temporal route also makes flame candidates of cells with enough *moving*
   flame-coloured pixels that the classifier scores low; their blobs must move and flicker.

The temporal rules are hand-set (no labelled negative video exists to learn them from);
their defaults are conservative and live in :class:`CpuOptions` (``options.py``: the core
declares this detector through ``options.CpuDetectorDeclared`` without importing numpy or
OpenCV; the worker process imports this module).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from firebus.sdk.detector import Detection, DetectorSetup, Label, VideoDetector, iou

from .classifier import CellClassifier, CellScores, cell_boxes, shipped
from .features import ANALYSIS_SIZE, CELL, Image, PixelMaps, to_analysis
from .options import CpuOptions


@dataclass
class _Blob:
    id: int
    label: Label
    box: tuple[float, float, float, float]
    first: float
    last: float
    score: float = 0.0
    # the current window's counts
    win_start: float = 0.0
    win_frames: int = 0
    win_hits: int = 0
    win_motion: float = 0.0
    win_strong: int = 0  # candidate frames where the classifier alone passed the threshold
    brightness: deque = field(default_factory=lambda: deque(maxlen=32))
    centres: deque = field(default_factory=lambda: deque(maxlen=32))
    windows: deque = field(default_factory=lambda: deque(maxlen=16))
    confirmed: bool = False


class CpuDetector(VideoDetector):
    """Motion gate → colour candidates → cell classifier → blob tracking → K-of-N persistence."""

    type_key = "video.cpu"
    Options = CpuOptions
    confirms = True

    def __init__(self, options: CpuOptions | None = None, setup: DetectorSetup | None = None,
                 classifier: CellClassifier | None = None) -> None:
        super().__init__(options, setup)
        self.clf = classifier or shipped()
        o: CpuOptions = self.options
        self.thresholds = {
            Label.FIRE: o.fire_threshold if o.fire_threshold is not None else self.clf.video_thresholds[Label.FIRE],
            Label.SMOKE: o.smoke_threshold if o.smoke_threshold is not None else self.clf.video_thresholds[Label.SMOKE],
        }
        w, h = ANALYSIS_SIZE
        self._mask_px = self.setup.mask.raster(w, h)
        rows, cols = h // CELL, w // CELL
        share = self._mask_px[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
        self._mask_cells = share >= o.mask_cell_share
        self.reset()

    def reset(self) -> None:
        self._fast: NDArray[np.float32] | None = None
        self._slow: NDArray[np.float32] | None = None
        self._blobs: list[_Blob] = []
        self._next_id = 1
        self.last_scores: CellScores | None = None
        self.camera_moving = False

    # -- stages --------------------------------------------------------------------------

    def _motion(self, grey: NDArray[np.float32]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        o: CpuOptions = self.options
        if self._fast is None or self._slow is None:
            self._fast, self._slow = grey.copy(), grey.copy()
        fast = np.abs(grey - self._fast) > o.motion_delta
        slow = np.abs(grey - self._slow) > o.motion_delta
        cv2.accumulateWeighted(grey, self._fast, o.fast_rate)
        cv2.accumulateWeighted(grey, self._slow, o.slow_rate)
        if self._mask_px.any():
            fast &= ~self._mask_px
            slow &= ~self._mask_px
        return fast, slow

    def _candidates(self, scores: CellScores, fast: NDArray[np.bool_]
                    ) -> list[tuple[Label, tuple[float, float, float, float], float, bool]]:
        """(label, box, score, by the classifier?) of this frame's candidate blobs."""
        o: CpuOptions = self.options
        out = []
        moving_fire = _cell_mean(scores.maps.fire * fast)
        for label, grid in ((Label.FIRE, scores.fire), (Label.SMOKE, scores.smoke)):
            g = np.where(self._mask_cells, 0.0, grid).astype(np.float32)
            thr = self.thresholds[label]
            if label == Label.FIRE:
                temporal = (moving_fire >= o.fire_moving_colour_share) & (g >= o.fire_floor) & ~self._mask_cells
                g = np.where(temporal & (g < thr), np.float32(thr), g)  # joins the blob at the threshold
            for box, s in cell_boxes(g, thr):
                strong = bool((grid[_box_cells(box, grid.shape)] >= thr).any())
                out.append((label, box, s, strong))
        return out

    @staticmethod
    def _box_slice(box: tuple[float, float, float, float]) -> tuple[slice, slice]:
        w, h = ANALYSIS_SIZE
        return (slice(int(box[1] * h), max(int(box[1] * h) + 1, int(np.ceil(box[3] * h)))),
                slice(int(box[0] * w), max(int(box[0] * w) + 1, int(np.ceil(box[2] * w)))))

    def _window_positive(self, b: _Blob) -> bool:
        o: CpuOptions = self.options
        if b.win_frames == 0 or b.win_hits < o.window_min_hits * b.win_frames:
            return False
        motion = b.win_motion / max(b.win_hits, 1)
        if b.label == Label.FIRE:
            if b.win_strong * 2 >= b.win_hits:  # the classifier carries it: it must move or flicker
                return motion >= o.fire_min_motion or _flicker(b.brightness) >= 0.25
            # the temporal route: moving flame colours must also flicker
            return motion >= o.fire_min_motion and _flicker(b.brightness) >= o.fire_min_flicker
        return motion >= o.smoke_min_motion

    # -- the contract ----------------------------------------------------------------------

    def detect(self, image: Image, ts: float) -> list[Detection]:
        o: CpuOptions = self.options
        frame = to_analysis(np.ascontiguousarray(image))
        maps = PixelMaps(frame)
        fast, slow = self._motion(maps.grey)
        moving_share = float(fast.mean())
        self.camera_moving = moving_share > o.global_motion_max
        scores = self.clf.score_maps(maps)
        self.last_scores = scores
        cands = [] if self.camera_moving else self._candidates(scores, fast)
        matched: set[int] = set()
        for label, box, s, strong in cands:
            best, best_iou = None, 0.05
            for k, b in enumerate(self._blobs):
                if b.label != label or k in matched:
                    continue
                # flames and smoke change shape from frame to frame: compare boxes grown by ~1.5 cells
                v = iou(_grow(b.box), _grow(box))
                if v > best_iou:
                    best, best_iou = k, v
            if best is None:
                self._blobs.append(_Blob(self._next_id, label, box, first=ts, last=ts, win_start=ts))
                self._next_id += 1
                best = len(self._blobs) - 1
            b = self._blobs[best]
            matched.add(best)
            ys, xs = self._box_slice(box)
            motion_map = fast if label == Label.FIRE else slow
            b.box, b.last, b.score = box, ts, 0.7 * b.score + 0.3 * s if b.win_hits else s
            b.win_hits += 1
            b.win_strong += int(strong)
            b.win_motion += float(motion_map[ys, xs].mean())
            b.brightness.append(float(maps.v[ys, xs].mean()))
            b.centres.append(((box[1] + box[3]) / 2, ts))
        out: list[Detection] = []
        keep: list[_Blob] = []
        n_of = {Label.FIRE: (o.fire_k, o.fire_n), Label.SMOKE: (o.smoke_k, o.smoke_n)}
        for b in self._blobs:
            if not self.camera_moving:
                b.win_frames += 1
            if ts - b.win_start >= o.window_s:
                b.windows.append(self._window_positive(b))
                b.win_start, b.win_frames, b.win_hits, b.win_motion, b.win_strong = ts, 0, 0, 0.0, 0
                kk, nn = n_of[b.label]
                recent = list(b.windows)[-nn:]
                if sum(recent) >= kk:
                    b.confirmed = True
                elif b.confirmed and not any(recent[-kk:]):
                    b.confirmed = False
            if ts - b.last > max(o.hold_s, o.window_s * 2) and not b.confirmed:
                continue  # a candidate that went away
            if ts - b.last > o.hold_s * 5:
                continue  # a confirmed blob gone for long
            if b.confirmed and ts - b.last <= o.hold_s:
                out.append(Detection(label=b.label, score=float(min(1.0, max(0.0, b.score))), box=b.box,
                                     first_seen=b.first, track_id=b.id))
            keep.append(b)
        self._blobs = keep
        return out


def _grow(box: tuple[float, float, float, float], d: float = 0.1) -> tuple[float, float, float, float]:
    return (max(0.0, box[0] - d), max(0.0, box[1] - d), min(1.0, box[2] + d), min(1.0, box[3] + d))


def _cell_mean(m: NDArray[np.floating]) -> NDArray[np.float32]:
    h, w = m.shape
    rows, cols = h // CELL, w // CELL
    return cv2.resize(m[: rows * CELL, : cols * CELL].astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)


def _box_cells(box: tuple[float, float, float, float], shape: tuple[int, int]) -> tuple[slice, slice]:
    rows, cols = shape
    return (slice(int(round(box[1] * rows)), max(int(round(box[1] * rows)) + 1, int(round(box[3] * rows)))),
            slice(int(round(box[0] * cols)), max(int(round(box[0] * cols)) + 1, int(round(box[2] * cols)))))


def _flicker(values: deque) -> float:
    """Share of sign changes of the first difference of a blob's brightness (0 steady … 1 flickering)."""
    if len(values) < 5:
        return 0.0
    d = np.diff(np.asarray(values, np.float32))
    d = d[np.abs(d) > 1.0]
    if len(d) < 3:
        return 0.0
    return float((np.sign(d[1:]) != np.sign(d[:-1])).mean())


def still_scores(image: Image, classifier: CellClassifier | None = None) -> dict[Label, float]:
    """A still photograph has no temporal information: the per-frame classifier head alone."""
    clf = classifier or shipped()
    s = clf.score(image)
    return {Label.FIRE: s.frame_score(Label.FIRE), Label.SMOKE: s.frame_score(Label.SMOKE)}
