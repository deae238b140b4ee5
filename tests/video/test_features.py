"""The per-cell features: one named column per feature, one row per cell, finite on any frame."""

from __future__ import annotations

import numpy as np

from firebus.plugins.video.features import ANALYSIS_SIZE, CELL, FEATURE_NAMES, frame_features, lbp_classes


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


def _column(x: np.ndarray, name: str) -> np.ndarray:
    w, h = ANALYSIS_SIZE
    return x[:, FEATURE_NAMES.index(name)].reshape(h // CELL, w // CELL)


def test_a_small_flame_fills_a_fine_block_while_the_cell_mean_dilutes_it() -> None:
    w, h = ANALYSIS_SIZE
    frame = np.full((h, w, 3), 90, np.uint8)
    frame[100:105, 160:165] = (40, 160, 250)  # a 5×5 orange patch (BGR) inside cell (5, 8)
    x, _, _ = frame_features(frame)
    assert _column(x, "fire")[5, 8] == 25 / CELL ** 2
    assert _column(x, "fine_fire")[5, 8] == 1.0
    assert _column(x, "fine_fire").sum() == 1.0  # no other cell sees it


def test_dark_smoke_above_a_cell_is_seen_from_below() -> None:
    w, h = ANALYSIS_SIZE
    frame = np.full((h, w, 3), 200, np.uint8)
    frame[0:60, :] = 50  # dark grey plume over the three top rows of cells
    above = _column(frame_features(frame)[0], "above_dark_smoke")
    assert above[3].min() == 1.0 and above[4].max() < 1.0 and above[6].max() == 0.0
    assert above[0].max() == 0.0  # nothing is above the top row


def test_lbp_classes_of_flat_and_textured_regions() -> None:
    w, h = ANALYSIS_SIZE
    flat, _, _ = frame_features(np.full((h, w, 3), 128, np.uint8))
    assert (_column(flat, "lbp0") == 1.0).all()  # no neighbour is brighter by the margin
    grey = np.random.default_rng(3).integers(0, 256, (h, w), dtype=np.uint8)
    noisy, _, _ = frame_features(np.dstack([grey] * 3))
    hist = np.stack([_column(noisy, f"lbp{k}") for k in range(10)])
    assert np.allclose(hist.sum(axis=0), 1.0)
    assert hist.mean(axis=(1, 2)).argmax() == 9  # random texture: non-uniform patterns are the commonest class
    assert lbp_classes(grey).max() == 9
