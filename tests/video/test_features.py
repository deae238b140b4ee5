"""The per-cell features: one named column per feature, one row per cell, finite on any frame."""

from __future__ import annotations

import numpy as np

from firebus.plugins.video.features import ANALYSIS_SIZE, CELL, FEATURE_NAMES, frame_features


def test_one_named_column_per_feature_and_one_row_per_cell() -> None:
    for k, shape in enumerate([(480, 640, 3), (608, 608, 3), (240, 320, 3)]):
        x, grid, _ = frame_features(np.random.default_rng(k).integers(0, 256, shape, dtype=np.uint8))
        w, h = ANALYSIS_SIZE
        assert grid == (h // CELL, w // CELL)
        assert x.shape == (grid[0] * grid[1], len(FEATURE_NAMES)) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
        assert np.isfinite(x).all()


def test_flat_frames_give_finite_features() -> None:
    w, h = ANALYSIS_SIZE
    for value in (0, 128, 255):
        x, _, _ = frame_features(np.full((h, w, 3), value, np.uint8))
        assert np.isfinite(x).all()
