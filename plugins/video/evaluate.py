"""Score labelled images and clips with the shipped detector at its frozen operating point.

Input (``load_items``): a folder with sub-folders ``fire/``, ``smoke/``, ``none/`` (any
depth below them), or a ``manifest.csv`` with columns ``path,label,group`` (and an
optional ``onset_s``: seconds into a clip where fire becomes visible; default 0).

* **Frame level** — every image, and every analysed frame of every clip, is scored by the
  per-frame classifier head (a still has no temporal information); ``fire`` is
  fire-labelled items against ``none`` items, ``smoke`` likewise, ``any`` is
  fire ∪ smoke against ``none`` with "fire or smoke detected".
* **Clip level (MIVIA protocol)** — the full temporal detector runs over each clip; a fire
  (smoke) clip is a true positive when an event of that label starts at or after its onset,
  a ``none`` clip is a false positive when any event starts at all.  Latency is event
  start minus onset.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from firebus.sdk.detector import EventKind, Label, Tracker, TrackerOptions

from .classifier import CellClassifier, shipped
from .metrics import binary_metrics, percentile, roc_auc

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".ts"}
LABELS = ("fire", "smoke", "none")
ALIASES = {"negative": "none", "normal": "none", "nofire": "none", "non_fire": "none", "non-fire": "none",
           "neutral": "none", "flame": "fire"}


class EvalError(Exception):
    """Bad input: the message (en, zh) says what is wrong."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.en, self.zh = en, zh


@dataclass
class Item:
    path: Path
    label: str
    group: str
    onset_s: float = 0.0

    @property
    def is_clip(self) -> bool:
        return self.path.suffix.lower() in VIDEO_EXT


def load_items(root: Path) -> list[Item]:
    if not root.exists():
        raise EvalError(f"{root}: no such file or folder", f"{root}：文件或文件夹不存在")
    manifest = root / "manifest.csv" if root.is_dir() else root
    if manifest.name == "manifest.csv" and manifest.is_file():
        return _from_manifest(manifest)
    if not root.is_dir():
        raise EvalError(f"{root}: give a folder with fire/ smoke/ none/ sub-folders or a manifest.csv",
                        f"{root}：请给出含 fire/ smoke/ none/ 子文件夹或 manifest.csv 的文件夹")
    items = []
    # fire/ smoke/ none/ (also negative/, normal/, non_fire/ … for none, flame/ for fire)
    found = sorted((d.name, ALIASES.get(d.name.lower(), d.name.lower())) for d in root.iterdir()
                   if d.is_dir() and ALIASES.get(d.name.lower(), d.name.lower()) in LABELS)
    if not found:
        raise EvalError(f"{root}: no fire/, smoke/ or none/ sub-folder and no manifest.csv",
                        f"{root}：没有 fire/、smoke/、none/ 子文件夹，也没有 manifest.csv")
    for folder, label in found:
        for p in sorted((root / folder).rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXT | VIDEO_EXT:
                items.append(Item(p, label, f"{folder}/{p.relative_to(root / folder).parent}/{p.stem}"))
    if not items:
        raise EvalError(f"{root}: the label folders hold no images or videos",
                        f"{root}：标签文件夹中没有图像或视频")
    return items


def _from_manifest(manifest: Path) -> list[Item]:
    base = manifest.parent
    items = []
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            if not {"path", "label"} <= cols:
                raise EvalError(f"{manifest}: needs the columns path,label[,group] (has {sorted(cols)})",
                                f"{manifest}：需要列 path,label[,group]（现有 {sorted(cols)}）")
            for n, row in enumerate(reader, start=2):
                label = (row.get("label") or "").strip().lower()
                label = ALIASES.get(label, label)
                if label not in LABELS:
                    raise EvalError(f"{manifest}:{n}: label {row.get('label')!r} is not fire, smoke or none",
                                    f"{manifest}:{n}：标签 {row.get('label')!r} 不是 fire、smoke 或 none")
                p = Path(row["path"].strip())
                p = p if p.is_absolute() else base / p
                onset = row.get("onset_s") or "0"
                try:
                    onset_s = float(onset)
                except ValueError:
                    raise EvalError(f"{manifest}:{n}: onset_s {onset!r} is not a number",
                                    f"{manifest}:{n}：onset_s {onset!r} 不是数字") from None
                items.append(Item(p, label, (row.get("group") or "").strip() or str(p), onset_s))
    except UnicodeDecodeError as exc:
        raise EvalError(f"{manifest}: not UTF-8 text ({exc})", f"{manifest}：不是 UTF-8 文本") from exc
    if not items:
        raise EvalError(f"{manifest}: no rows", f"{manifest}：没有数据行")
    return items


def read_image(path: Path) -> np.ndarray | None:
    """BGR uint8 image (EXIF orientation applied), or None; Pillow reads what OpenCV cannot (GIF …)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is not None:
        return image
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    try:
        with Image.open(path) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
            return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
    except (OSError, ValueError, SyntaxError):
        return None


@dataclass
class Scored:
    label: str
    fire: float
    smoke: float


@dataclass
class ClipOutcome:
    item: Item
    first_event: dict[str, float] = field(default_factory=dict)  # label → seconds into the clip
    frames: int = 0


def clip_frames(path: Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """Decoded frames of a clip decimated to ``fps``: (seconds into the clip, BGR image)."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        last = -1e9
        n = 0
        rate = float(stream.average_rate or 25)
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else n / rate
            n += 1
            if t - last >= 1.0 / fps - 1e-6:
                last = t
                yield t, frame.to_ndarray(format="bgr24")


class Progress:
    """A progress bar on stderr (``\\r``-updated on a terminal, a line per 10 % otherwise)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = max(total, 1), 0, enabled
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self._last_decile = -1

    def step(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = min(1.0, self.done / self.total)
        if self.tty:
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r评估 evaluating [{bar:<30}] {self.done}/{self.total}")
            sys.stderr.flush()
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            sys.stderr.write(f"评估 evaluating {self.done}/{self.total} ({frac:.0%})\n")

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write(f"\r评估 evaluating [{'#' * 30}] {self.done}/{self.total}, "
                             f"{time.monotonic() - self.t0:.0f} s\n")


def evaluate(items: list[Item], *, fps: float = 10.0, classifier: CellClassifier | None = None,
             progress: bool = True, detector_factory: Callable[[], object] | None = None) -> dict:
    clf = classifier or shipped()
    thr = clf.thresholds
    scored: list[Scored] = []
    clips: list[ClipOutcome] = []
    unreadable: list[dict[str, str]] = []
    bar = Progress(len(items), progress)
    for item in items:
        if item.is_clip:
            outcome = ClipOutcome(item)
            try:
                _run_clip(item, fps, clf, scored, outcome, detector_factory)
            except ValueError as exc:
                unreadable.append({"path": str(item.path), "error": str(exc)})
            else:
                clips.append(outcome)
        else:
            image = read_image(item.path)
            if image is None or image.size == 0:
                unreadable.append({"path": str(item.path), "error": "not a readable image"})
            else:
                s = clf.score(image)
                scored.append(Scored(item.label, s.frame_score(Label.FIRE), s.frame_score(Label.SMOKE)))
        bar.step()
    bar.close()
    out: dict = {}
    lab = np.array([s.label for s in scored])
    fire = np.array([s.fire for s in scored])
    smoke = np.array([s.smoke for s in scored])
    for name, score, t in (("fire", fire, thr[Label.FIRE]), ("smoke", smoke, thr[Label.SMOKE])):
        sel = (lab == name) | (lab == "none")
        m = binary_metrics(score[sel] >= t, lab[sel] == name)
        m["roc_auc"] = roc_auc(score[sel], lab[sel] == name)
        m["threshold"] = round(t, 5)
        out[name] = _clean(m)
    detected = (fire >= thr[Label.FIRE]) | (smoke >= thr[Label.SMOKE])
    m = binary_metrics(detected, lab != "none")
    m["roc_auc"] = roc_auc(np.maximum(fire / max(thr[Label.FIRE], 1e-6), smoke / max(thr[Label.SMOKE], 1e-6)),
                           lab != "none")
    out["any"] = _clean(m)
    out["frames"] = len(scored)
    out["clips"] = _clip_metrics(clips) if clips else None
    out["unreadable"] = unreadable
    out["operating_point"] = {"fire": round(thr[Label.FIRE], 5), "smoke": round(thr[Label.SMOKE], 5),
                              "source": "firebus.plugins.video.model/operating_point.json",
                              "trained": clf.meta.get("training", {}).get("date", "")}
    return out


def _run_clip(item: Item, fps: float, clf: CellClassifier, scored: list[Scored], outcome: ClipOutcome,
              detector_factory: Callable[[], object] | None) -> None:
    from .cascade import CpuDetector

    det = detector_factory() if detector_factory is not None else CpuDetector(classifier=clf)
    tracker = Tracker(item.group, TrackerOptions(), confirms=bool(getattr(det, "confirms", False)))
    t0 = 1_700_000_000.0
    for t, image in clip_frames(item.path, fps):
        dets = det.detect(image, t0 + t)  # type: ignore[attr-defined]
        s = getattr(det, "last_scores", None) or clf.score(image)
        scored.append(Scored(item.label, s.frame_score(Label.FIRE), s.frame_score(Label.SMOKE)))
        for ev in tracker.update(dets, t0 + t):
            if ev.kind == EventKind.NEW:
                outcome.first_event.setdefault(str(ev.after.label), t)
        outcome.frames += 1
    if outcome.frames == 0:
        raise ValueError("no decodable frames")


def _clip_metrics(clips: list[ClipOutcome]) -> dict:
    out = {}
    for name in ("fire", "smoke"):
        pos = [c for c in clips if c.item.label == name]
        neg = [c for c in clips if c.item.label == "none"]
        tp = [c for c in pos if name in c.first_event and c.first_event[name] >= c.item.onset_s - 1e-6]
        fp = [c for c in neg if c.first_event]
        lat = [c.first_event[name] - c.item.onset_s for c in tp]
        n = len(pos) + len(neg)
        out[name] = {
            "n_pos": len(pos), "n_neg": len(neg),
            "tpr": round(len(tp) / len(pos), 4) if pos else None,
            "fn_rate": round(1 - len(tp) / len(pos), 4) if pos else None,
            "fp_rate": round(len(fp) / len(neg), 4) if neg else None,
            "accuracy": round((len(tp) + len(neg) - len(fp)) / n, 4) if n else None,
            "latency_p50_s": percentile(lat, 50), "latency_p90_s": percentile(lat, 90),
            "within_10s": round(sum(1 for v in lat if v <= 10) / len(pos), 4) if pos else None,
        }
    return out


def _clean(m: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}
