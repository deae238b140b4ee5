"""Frame- and clip-level figures: TPR, FPR, precision, F1, ROC-AUC, detection latency."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def binary_metrics(pred: ArrayLike, truth: ArrayLike) -> dict[str, float | int]:
    """Counts and rates of a yes/no decision against the truth (both boolean arrays)."""
    p = np.asarray(pred, bool)
    t = np.asarray(truth, bool)
    tp = int((p & t).sum())
    fp = int((p & ~t).sum())
    fn = int((~p & t).sum())
    tn = int((~p & ~t).sum())
    n_pos, n_neg = tp + fn, fp + tn
    tpr = tp / n_pos if n_pos else float("nan")
    fpr = fp / n_neg if n_neg else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"tpr": round(tpr, 4), "fpr": round(fpr, 4), "precision": round(precision, 4), "f1": round(f1, 4),
            "n_pos": n_pos, "n_neg": n_neg, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def roc_auc(scores: ArrayLike, truth: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); NaN without both classes."""
    s = np.asarray(scores, np.float64)
    t = np.asarray(truth, bool)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks of ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return round(float(u / (n_pos * n_neg)), 4)


def roc_curve(scores: ArrayLike, truth: ArrayLike, points: int = 21) -> list[tuple[float, float, float]]:
    """(threshold, fpr, tpr) at evenly spaced score thresholds, for the docs' ROC tables."""
    s = np.asarray(scores, np.float64)
    t = np.asarray(truth, bool)
    out = []
    for thr in np.linspace(0, 1, points):
        p = s >= thr
        tpr = float((p & t).sum() / max(t.sum(), 1))
        fpr = float((p & ~t).sum() / max((~t).sum(), 1))
        out.append((round(float(thr), 3), round(fpr, 4), round(tpr, 4)))
    return out


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None
