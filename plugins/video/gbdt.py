"""Small gradient-boosted decision trees for binary classification, numpy only.

Why our own: inference must run with numpy alone inside the detector worker, the model
must ship as a few hundred kB of arrays (``.npz``), and training on ~50k cell vectors
takes seconds.  The method is the usual histogram GBDT (Friedman 2001; the binning of
LightGBM / scikit-learn's HistGradientBoosting): features are cut at quantiles into at
most ``bins`` bins, each tree is grown level by level to a fixed depth on the gradient /
hessian histograms of the logistic loss, with L2 leaf regularisation, row and feature
subsampling and shrinkage.

Trees are stored *complete* (2**depth − 1 split nodes, 2**depth leaves); a node that was
not worth splitting gets threshold +inf so every row goes left and both leaves hold the
same value.  That makes prediction a fixed number of vectorised steps over all trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Params:
    trees: int = 300
    depth: int = 4
    learning_rate: float = 0.08
    bins: int = 32
    min_leaf: float = 20.0  # minimum hessian sum in a leaf (≈ samples × p(1-p))
    l2: float = 1.0
    row_subsample: float = 0.7
    feature_subsample: float = 0.7
    seed: int = 0


@dataclass
class Model:
    """A trained ensemble: ``feature``/``threshold`` (trees, 2**d-1), ``leaf`` (trees, 2**d)."""

    feature: NDArray[np.int16]
    threshold: F32
    leaf: F32
    base: float

    @property
    def depth(self) -> int:
        return int(np.log2(self.leaf.shape[1]))

    def decision(self, x: F32) -> F32:
        """Raw log-odds for rows of ``x`` (n, features)."""
        n = x.shape[0]
        t, n_inner = self.feature.shape
        if n == 0:
            return np.zeros(0, np.float32)
        # flat indexing: one gather per level over all (row, tree) pairs
        feat = self.feature.astype(np.int64).ravel()
        thr = self.threshold.ravel()
        xf = np.ascontiguousarray(x, np.float32).ravel()
        nf = x.shape[1]
        tree_base = (np.arange(t, dtype=np.int64) * n_inner)[None, :]
        row_base = (np.arange(n, dtype=np.int64) * nf)[:, None]
        node = np.zeros((n, t), np.int64)
        for _ in range(self.depth):
            flat = tree_base + node
            right = xf[row_base + feat[flat]] > thr[flat]
            node = 2 * node + 1 + right
        leaf_idx = node - n_inner
        out = self.leaf.ravel()[(np.arange(t, dtype=np.int64) * self.leaf.shape[1])[None, :] + leaf_idx].sum(axis=1)
        return (out + self.base).astype(np.float32)

    def predict_proba(self, x: F32) -> F32:
        z = np.clip(self.decision(x), -30, 30)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_feature": self.feature, f"{prefix}_threshold": self.threshold,
                f"{prefix}_leaf": self.leaf, f"{prefix}_base": np.array([self.base], np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray] | np.lib.npyio.NpzFile, prefix: str) -> "Model":
        feature = np.asarray(arrays[f"{prefix}_feature"], np.int16)
        threshold = np.asarray(arrays[f"{prefix}_threshold"], np.float32)
        leaf = np.asarray(arrays[f"{prefix}_leaf"], np.float32)
        base = float(np.asarray(arrays[f"{prefix}_base"])[0])
        depth = int(np.log2(leaf.shape[1]))
        if (feature.shape != threshold.shape or feature.shape[0] != leaf.shape[0]
                or leaf.shape[1] != 2 ** depth or feature.shape[1] != 2 ** depth - 1):
            raise ValueError(f"{prefix}: inconsistent tree arrays {feature.shape} {threshold.shape} {leaf.shape}")
        return cls(feature, threshold, leaf, base)


def _bin_edges(x: F32, bins: int) -> list[F32]:
    edges = []
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    for j in range(x.shape[1]):
        e = np.unique(np.quantile(x[:, j], qs).astype(np.float32))
        edges.append(e)
    return edges


def _histograms(xs_off: NDArray[np.int32], node: NDArray[np.int64], g: NDArray[np.float64],
                h: NDArray[np.float64], n_nodes: int, nf: int, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and hessian sums per (node, feature, bin) of the rows given.

    ``xs_off`` holds each row's bin plus ``feature * nb`` already (int32: half the memory
    traffic of int64, and this index is the largest temporary of the training).
    """
    idx = (node.astype(np.int32)[:, None] * np.int32(nf * nb) + xs_off).ravel()
    size = n_nodes * nf * nb
    gh = np.bincount(idx, weights=np.repeat(g, nf), minlength=size).reshape(n_nodes, nf, nb)
    hh = np.bincount(idx, weights=np.repeat(h, nf), minlength=size).reshape(n_nodes, nf, nb)
    return gh, hh


def train(x: F32, y: NDArray[np.floating], params: Params = Params(), weight: F32 | None = None) -> Model:
    """Fit on rows ``x`` (n, f) with labels ``y`` in {0, 1} and optional sample weights."""
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float64)
    n, nf = x.shape
    w = np.ones(n) if weight is None else np.asarray(weight, np.float64)
    rng = np.random.default_rng(params.seed)
    nb = params.bins
    edges = _bin_edges(x, nb)
    xb = np.stack([np.searchsorted(e, x[:, j], side="left") for j, e in enumerate(edges)], axis=1).astype(np.int32)
    # side="left": bin b holds (edges[b-1], edges[b]], so "bin > b" is exactly "x > edges[b]" as in decision()
    p0 = float(np.clip(np.average(y, weights=w), 1e-4, 1 - 1e-4))
    base = float(np.log(p0 / (1 - p0)))
    raw = np.full(n, base)
    d = params.depth
    n_inner, n_leaf = 2 ** d - 1, 2 ** d
    feats = np.zeros((params.trees, n_inner), np.int16)
    thrs = np.full((params.trees, n_inner), np.inf, np.float32)
    leaves = np.zeros((params.trees, n_leaf), np.float32)
    for t in range(params.trees):
        p = 1.0 / (1.0 + np.exp(-raw))
        g = (p - y) * w
        h = np.maximum(p * (1 - p), 1e-6) * w
        rows = np.flatnonzero(rng.random(n) < params.row_subsample)
        fsel = rng.random(nf) < params.feature_subsample
        if not fsel.any():
            fsel[rng.integers(nf)] = True
        fidx = np.flatnonzero(fsel)
        ns = len(fidx)
        node = np.zeros(len(rows), np.int64)  # index within the level
        xr = xb[rows]
        # histograms only over the sampled features (the others cannot split)
        xs_off = xr[:, fidx] + (np.arange(ns, dtype=np.int32) * nb)[None, :]
        gr, hr = g[rows], h[rows]
        lam = params.l2
        parent_g = parent_h = None
        for level in range(d):
            n_nodes = 2 ** level
            if level == 0:
                gh, hh = _histograms(xs_off, node, gr, hr, 1, ns, nb)
            else:
                # sibling subtraction: histogram the left children only, right = parent − left
                left = (node % 2) == 0
                gl_, hl_ = _histograms(xs_off[left], node[left] // 2, gr[left], hr[left], n_nodes // 2, ns, nb)
                gh = np.empty((n_nodes, ns, nb))
                hh = np.empty((n_nodes, ns, nb))
                gh[0::2], hh[0::2] = gl_, hl_
                gh[1::2], hh[1::2] = parent_g - gl_, parent_h - hl_
            parent_g, parent_h = gh, hh
            gl, hl = np.cumsum(gh, axis=2), np.cumsum(hh, axis=2)
            gt, ht = gl[:, :, -1:], hl[:, :, -1:]
            gR, hR = gt - gl, ht - hl
            gain = gl ** 2 / (hl + lam) + gR ** 2 / (hR + lam) - gt ** 2 / (ht + lam)
            ok = (hl >= params.min_leaf) & (hR >= params.min_leaf)
            gain = np.where(ok, gain, -np.inf)
            flat = gain.reshape(n_nodes, -1)
            best = flat.argmax(axis=1)
            best_gain = flat[np.arange(n_nodes), best]
            bf, bb = best // nb, best % nb
            go_right = np.zeros(len(rows), bool)
            for k in range(n_nodes):
                heap = 2 ** level - 1 + k
                if not np.isfinite(best_gain[k]) or best_gain[k] <= 1e-9:
                    continue  # no useful split: threshold stays +inf (everything goes left)
                f, b = int(fidx[bf[k]]), int(bb[k])
                if b >= len(edges[f]):
                    continue
                feats[t, heap] = f
                thrs[t, heap] = edges[f][b]
                sel = node == k
                go_right[sel] = xr[sel, f] > b
            node = 2 * node + go_right
        # leaf values: Newton step with L2, shrunk
        gs = np.bincount(node, weights=gr, minlength=n_leaf)
        hs = np.bincount(node, weights=hr, minlength=n_leaf)
        leaves[t] = (-gs / (hs + params.l2) * params.learning_rate).astype(np.float32)
        model_t = Model(feats[t:t + 1], thrs[t:t + 1], leaves[t:t + 1], 0.0)
        raw += model_t.decision(x).astype(np.float64)
    return Model(feats, thrs, leaves, base)
