"""The shipped cell classifier: load ``model/cells.npz`` + ``model/operating_point.json``, score frames.

One frame at analysis size gives, per cell of the grid, a flame and a smoke probability
(0 where the cascade's colour gate rules the cell out).  The frame's still-image score
for a label is the highest cell probability; the frozen operating point (a threshold
per label, chosen on validation folds only by ``scripts/train_video_model.py``) turns it
into a yes/no.  The same code scores still photographs (``firebus video eval``) and feeds
the temporal stage of the video detector (``cascade.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from firebus.sdk.detector import Label

from . import gbdt
from .features import (FEATURE_NAMES, Image, PixelMaps, cell_features, fire_candidates, lut_feature_names,
                       lut_features, smoke_candidates, to_analysis)

MODEL_PACKAGE = "firebus.plugins.video.model"


class ModelError(Exception):
    """The model files are missing or do not match this code's features."""


@dataclass(frozen=True)
class CellScores:
    """Per-cell probabilities of one frame, (rows, cols) each, and the maps behind them."""

    fire: NDArray[np.float32]
    smoke: NDArray[np.float32]
    maps: PixelMaps

    def frame_score(self, label: Label) -> float:
        grid = self.fire if label == Label.FIRE else self.smoke
        return float(grid.max()) if grid.size else 0.0


class CellClassifier:
    def __init__(self, heads: dict[Label, gbdt.Model], tables: dict[str, NDArray[np.float32]],
                 thresholds: dict[Label, float], video_thresholds: dict[Label, float], meta: dict) -> None:
        self.heads = heads
        self.tables = tables
        #: still-image operating point (frame-level decision)
        self.thresholds = thresholds
        #: video candidate point (the temporal stage confirms)
        self.video_thresholds = video_thresholds
        self.meta = meta

    @classmethod
    def load(cls, folder: Path | None = None) -> "CellClassifier":
        try:
            if folder is None:
                base = resources.files(MODEL_PACKAGE)
                raw_meta = base.joinpath("operating_point.json").read_text()
                with base.joinpath("cells.npz").open("rb") as fh:
                    arrays = dict(np.load(fh, allow_pickle=False))
            else:
                raw_meta = (folder / "operating_point.json").read_text()
                arrays = dict(np.load(folder / "cells.npz", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the video model ({exc})") from exc
        meta = json.loads(raw_meta)
        want = FEATURE_NAMES + lut_feature_names(("fire", "smoke"))
        if meta.get("features") != want:
            raise ModelError("the video model was trained on other features than this code computes: "
                             "retrain with scripts/train_video_model.py")
        heads = {Label.FIRE: gbdt.Model.from_arrays(arrays, "fire"),
                 Label.SMOKE: gbdt.Model.from_arrays(arrays, "smoke")}
        tables = {"fire": arrays["lut_fire"], "smoke": arrays["lut_smoke"]}
        heads_meta = meta["training"]["heads"]
        thr = {Label(k): float(v["threshold"]) for k, v in heads_meta.items()}
        vthr = {Label(k): float(v.get("video_threshold", v["threshold"])) for k, v in heads_meta.items()}
        return cls(heads, tables, thr, vthr, meta)

    def score_maps(self, maps: PixelMaps) -> CellScores:
        x, grid = cell_features(maps)
        x = np.concatenate([x, lut_features(maps.colour_index, self.tables)], axis=1)
        out = {}
        for label, gate in ((Label.FIRE, fire_candidates), (Label.SMOKE, smoke_candidates)):
            g = gate(x)
            p = np.zeros(len(x), np.float32)
            if g.any():
                p[g] = self.heads[label].predict_proba(x[g])
            out[label] = p.reshape(grid)
        return CellScores(out[Label.FIRE], out[Label.SMOKE], maps)

    def score(self, image: Image) -> CellScores:
        return self.score_maps(PixelMaps(to_analysis(image)))


@lru_cache(maxsize=1)
def shipped() -> CellClassifier:
    """The model shipped in the package (loaded once per process)."""
    return CellClassifier.load()


def cell_boxes(grid: NDArray[np.float32], threshold: float) -> list[tuple[tuple[float, float, float, float], float]]:
    """Connected groups of cells at or above ``threshold`` → (normalised box, best score)."""
    import cv2

    hot = (grid >= threshold).astype(np.uint8)
    if not hot.any():
        return []
    n, lab, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    rows, cols = grid.shape
    out = []
    for k in range(1, n):
        x, y, w, h = stats[k, :4]
        score = float(grid[lab == k].max())
        out.append(((float(x / cols), float(y / rows), float((x + w) / cols), float((y + h) / rows)), score))
    return out
