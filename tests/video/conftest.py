"""Shared pieces of the video plugin tests: where the shared data is, small clips made from it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_video() -> Path:
    env = os.environ.get("FIREBUS_SHARED")
    base = Path(env) if env else ROOT.parent / "shared"
    return base / "data" / "video"


FURG = shared_video() / "furg_fire_dataset" / "videos" / "house6.mp4"
ROBOFLOW = shared_video() / "roboflow_cctv_fire_smoke_v8"

needs_furg = pytest.mark.skipif(not FURG.exists(), reason=f"shared data missing: {FURG}")
needs_roboflow = pytest.mark.skipif(not ROBOFLOW.exists(), reason=f"shared data missing: {ROBOFLOW}")


def roboflow_frames(label: str, n: int, offset: int = 0) -> list[Path]:
    """The first ``n`` frames of a label (manifest order: deterministic)."""
    import csv

    with open(ROBOFLOW / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["frame_label"] == label]
    return [ROBOFLOW / r["path"] for r in rows[offset:offset + n]]


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Encode BGR frames as an MP4 (real file, real codec) for file-source tests."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="bgr24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def negative_clip(path: Path, seconds: float = 8.0, fps: int = 10) -> Path:
    """A fire-free scene (a Roboflow negative frame) with sensor noise and a person-sized moving shape."""
    base = cv2.resize(cv2.imread(str(roboflow_frames("negative", 1, 5)[0])), (320, 240))
    rng = np.random.default_rng(7)
    frames = []
    for i in range(int(seconds * fps)):
        f = base.astype(np.int16) + rng.normal(0, 3, base.shape).astype(np.int16)
        x = 20 + i * 3
        f[120:200, x:x + 30] = (60, 60, 70)  # someone in dark clothes walking across
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return write_clip(path, frames, fps)


def furg_frames(seconds: float, fps: float = 10.0) -> list[tuple[float, np.ndarray]]:
    """(seconds into the video, frame) of the first ``seconds`` of FURG house6, decimated to ``fps``."""
    import av

    out = []
    last = -1e9
    with av.open(str(FURG)) as c:
        for frame in c.decode(video=0):
            t = float(frame.time)
            if t > seconds:
                break
            if t - last >= 1 / fps - 1e-6:
                last = t
                out.append((t, frame.to_ndarray(format="bgr24")))
    return out
