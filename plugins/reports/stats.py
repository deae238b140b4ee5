"""Robust statistics used by the analysis (numpy only, each a named textbook method).

* Theil–Sen slope: the median of all pairwise slopes (Sen 1968), with the
  intercept as the median of y − slope·x; robust to ~29 % outliers.
* Mann–Kendall trend test: S = Σ sign(y_j − y_i) over pairs, Var(S) =
  n(n−1)(2n+5)/18 (no tie correction), Z = (S − sign S) / √Var(S).
* Robust z-score: (x − median) / (1.4826 · MAD), 1.4826 making the MAD a
  consistent estimate of σ for normal data.
* Quantiles: nearest rank (``inverted_cdf``), so a hand calculation finds the
  same value in the data.
"""

from __future__ import annotations

import math

import numpy as np

MAD_TO_SIGMA = 1.4826


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, Mann–Kendall Z) of y over x; needs ≥ 3 points."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.shape[0]
    if n < 3:
        raise ValueError("Theil–Sen needs at least 3 points")
    i, j = np.triu_indices(n, k=1)
    dx = x[j] - x[i]
    dy = y[j] - y[i]
    ok = dx != 0
    slope = float(np.median(dy[ok] / dx[ok]))
    intercept = float(np.median(y - slope * x))
    # Mann–Kendall over pairs ordered in x
    s = float(np.sum(np.sign(dy * np.sign(dx))))
    var = n * (n - 1) * (2 * n + 5) / 18.0
    z = 0.0 if s == 0 else (s - math.copysign(1.0, s)) / math.sqrt(var)
    return slope, intercept, z


def nearest_rank(values: np.ndarray, q: float) -> float:
    """The q-quantile by nearest rank: the ⌈q·n⌉-th smallest value."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    if v.shape[0] == 0:
        raise ValueError("no values")
    k = max(1, math.ceil(q * v.shape[0]))
    return float(v[k - 1])


def ffill(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along the last axis (leading NaNs stay)."""
    v = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(v)
    idx = np.where(valid, np.arange(v.shape[-1]), 0)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    out = np.take_along_axis(v, idx, axis=-1) if v.ndim > 1 else v[idx]
    if v.ndim > 1:
        first = np.argmax(valid, axis=-1)
        none = ~valid.any(axis=-1)
        lead = np.arange(v.shape[-1])[None, :] < first[:, None]
        out = np.where(lead | none[:, None], np.nan, out)
    else:
        if not valid.any():
            return np.full_like(v, np.nan)
        out = out.copy()
        out[: int(np.argmax(valid))] = np.nan
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a 1-d boolean array."""
    m = np.concatenate(([False], np.asarray(mask, dtype=bool), [False]))
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))
