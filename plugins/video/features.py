"""Per-cell colour and texture features of one analysis frame (numpy + OpenCV, no learned weights).

The frame is cut into a grid of square cells; each cell gets a fixed-length feature
vector: colour-rule fractions (Chen 2004 RGB, Celik 2009 YCbCr, an HSV flame band, a
Chen-style grey band for smoke), colour statistics in HSV and YCrCb, a hue histogram of
the saturated pixels, texture (gradient energy, Laplacian energy, local contrast), the
dark-channel haze cue for smoke, the same few values over the 3×3 neighbourhood and the
whole frame, a finer scale (the best 5×5-pixel block of the cell), what lies above the
cell (dark smoke, grey pixels) and an LBP texture histogram.  The classifier (``gbdt.py``) decides from these;
the rules are never an alarm on their own (their measured FPR is 13–90 %).

Both still images and video frames go through exactly this code, so a model trained on
still frames sees at inference what it saw in training.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

#: analysis frame size (width, height); stills and video frames are resized to it
ANALYSIS_SIZE = (320, 240)
#: cell edge in analysis pixels: 16 × 12 cells
CELL = 20

Image = NDArray[np.uint8]
Array = NDArray[np.float32]


def to_analysis(image: Image) -> Image:
    """Resize a BGR frame to the analysis size (area interpolation: no aliasing of flames)."""
    h, w = image.shape[:2]
    if (w, h) == ANALYSIS_SIZE:
        return image
    interp = cv2.INTER_AREA if w > ANALYSIS_SIZE[0] else cv2.INTER_LINEAR
    return cv2.resize(image, ANALYSIS_SIZE, interpolation=interp)


def _cells(m: NDArray[np.floating], cell: int = CELL) -> Array:
    """Mean of a per-pixel map over each cell: (H, W) → (rows, cols).

    OpenCV's area resampling by an integer factor is exactly the block mean, and several
    times faster than a numpy reshape-mean (this runs ~40 times per frame).
    """
    h, w = m.shape
    r, c = h // cell, w // cell
    src = m[: r * cell, : c * cell]
    if src.dtype != np.float32:
        src = src.astype(np.float32)
    return cv2.resize(src, (c, r), interpolation=cv2.INTER_AREA)


def _neighbourhood(g: Array, k: int = 3) -> Array:
    """Mean over the k×k neighbourhood of each cell (edges replicate)."""
    return cv2.blur(g, (k, k), borderType=cv2.BORDER_REPLICATE)


#: OpenCV hue byte (degrees / 2) → 60° bin index starting at -30°: ((2h + 30) mod 360) div 60
_HUE_BIN_LUT = np.array([((2 * h + 30) % 360) // 60 if h < 180 else 0 for h in range(256)], np.uint8)


class PixelMaps:
    """The per-pixel maps the features and the temporal stage share (computed once per frame)."""

    __slots__ = ("b", "g", "r", "h", "s", "v", "y", "cr", "cb", "grey", "grey8", "chroma", "chen", "celik",
                 "hsv_flame", "core", "greyish", "grad", "lap", "dark", "fire", "colour_index", "hue_bin")

    def __init__(self, frame: Image) -> None:
        # contiguous float planes (cv2.split): numpy on strided channel views is ~2x slower
        b8, g8, r8 = cv2.split(frame)
        # 16 levels per channel: index into the learned colour tables (``lut_features``)
        self.colour_index = ((b8 >> 4).astype(np.uint16) << 8) | ((g8 >> 4).astype(np.uint16) << 4) | (r8 >> 4)
        self.b, self.g, self.r = b8.astype(np.float32), g8.astype(np.float32), r8.astype(np.float32)
        h8, s8, v8 = cv2.split(cv2.cvtColor(frame, cv2.COLOR_BGR2HSV))
        # 60° hue bins starting at -30° (red centred), by table on OpenCV's 0..179 hue byte
        self.hue_bin = cv2.LUT(h8, _HUE_BIN_LUT)
        self.h, self.s, self.v = h8.astype(np.float32) * 2.0, s8.astype(np.float32), v8.astype(np.float32)
        y8, cr8, cb8 = cv2.split(cv2.cvtColor(frame, cv2.COLOR_BGR2YCrCb))
        self.y, self.cr, self.cb = y8.astype(np.float32), cr8.astype(np.float32), cb8.astype(np.float32)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        self.grey8 = grey
        self.grey = grey.astype(np.float32)
        r, g, b, s = self.r, self.g, self.b, self.s
        # Chen, Wu, Chiou 2004: R > R_T, R >= G > B, S >= (255 - R) * S_T / R_T (R_T 125, S_T 60)
        self.chen = ((r > 125) & (r >= g) & (g > b) & (s >= (255.0 - r) * 60.0 / 125.0)).astype(np.float32)
        # Celik & Demirel 2009 rules 1-4 (tau 40); rule 3 against this frame's means
        y, cr, cb = self.y, self.cr, self.cb
        self.celik = ((y > cb) & (cr > cb) & (y > y.mean()) & (cb < cb.mean()) & (cr > cr.mean())
                      & (np.abs(cb - cr) >= 40)).astype(np.float32)
        # flame band in HSV: red-orange-yellow, saturated, bright
        self.hsv_flame = (((self.h <= 65) | (self.h >= 345)) & (s > 70) & (self.v > 150)).astype(np.float32)
        # the white-yellow core of a flame: very bright, warm or unsaturated
        self.core = ((self.v > 235) & (r >= b)).astype(np.float32)
        # Chen-style smoke band: greyish (small channel differences) in a brightness band
        mx = np.maximum(np.maximum(r, g), b)
        mn = np.minimum(np.minimum(r, g), b)
        self.chroma = mx - mn
        self.greyish = ((self.chroma < 28) & (self.v > 60) & (self.v < 235)).astype(np.float32)
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
        self.grad = np.sqrt(gx * gx + gy * gy)
        self.lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
        # dark channel (He et al. haze prior): smoke and haze lift the local minimum of R, G, B
        self.dark = cv2.erode(mn, np.ones((7, 7), np.uint8))
        self.fire = np.maximum(self.chen, self.celik) * self.hsv_flame


#: feature names, in vector order (the model file stores them and checks them on load)
CELL_FEATURES = [
    "chen", "celik", "hsv_flame", "fire", "core", "core_near_fire", "greyish",
    "s_mean", "s_std", "v_mean", "v_std", "y_mean", "cr_mean", "cb_mean", "cr_minus_cb",
    "redness", "r_minus_b",
    "hue0", "hue1", "hue2", "hue3", "hue4", "hue5", "sat_share",
    "grad", "lap", "grad_std", "dark_mean", "dark_std",
    "fire_v", "fire_grad", "fire_s", "grey_grad", "grey_dark",
]
#: finer scale: the best 5×5-pixel block inside the cell (a small or distant flame fills a few
#: pixels of a 20×20 cell, and the cell means dilute it)
FINE_FEATURES = ["fine_fire", "fine_core", "fine_chen", "fine_hsv_flame", "fine_v_max", "fine_v_peak"]
#: what lies above the cell (mean of the 3 cells above): flames burn under their smoke plume
ABOVE_FEATURES = ["above_dark_smoke", "above_greyish"]
#: texture: rotation-invariant uniform LBP (8 neighbours, radius 1, riu2: 10 classes), share per cell
LBP_FEATURES = [f"lbp{k}" for k in range(10)]
CONTEXT_FEATURES = ["fire", "core", "greyish", "s_mean", "v_mean", "grad", "dark_mean", "redness"]
FEATURE_NAMES = (
    CELL_FEATURES
    + [f"nb_{n}" for n in CONTEXT_FEATURES]
    + [f"nb5_{n}" for n in CONTEXT_FEATURES]
    + [f"max5_{n}" for n in ("fire", "core", "redness")]
    + [f"rel_{n}" for n in CONTEXT_FEATURES]
    + [f"frame_{n}" for n in CONTEXT_FEATURES]
    + ["frame_sat_p90", "frame_v_p10", "frame_v_p90"]
    + FINE_FEATURES + ABOVE_FEATURES + LBP_FEATURES
)
#: features from the learned colour likelihood tables, per table (``fire``, ``smoke``)
LUT_FEATURES = ["mean", "pos", "hi", "nb_mean", "nb_hi", "max5_hi"]


def lut_feature_names(tables: tuple[str, ...]) -> list[str]:
    return [f"lut_{t}_{n}" for t in tables for n in LUT_FEATURES]


def lut_features(colour_index: NDArray[np.uint16], luts: dict[str, NDArray[np.float32]]) -> Array:
    """Per cell, from each colour table (log-likelihood ratio of a 16³ BGR bin being flame/smoke)."""
    cols = []
    k5 = np.ones((5, 5), np.uint8)
    for name in sorted(luts):
        llr = luts[name][colour_index]
        mean = _cells(llr)
        pos = _cells(np.maximum(llr, 0))
        hi = _cells((llr > 1.5).astype(np.float32))
        cols += [mean, pos, hi, _neighbourhood(mean), _neighbourhood(hi),
                 cv2.dilate(hi, k5, borderType=cv2.BORDER_REPLICATE)]
    return np.stack([c.reshape(-1) for c in cols], axis=1).astype(np.float32)


def colour_table(indices: list[NDArray[np.uint16]], masks: list[NDArray[np.bool_]], alpha: float = 1.0) -> NDArray[np.float32]:
    """Learn a colour table: log P(bin | inside boxes) − log P(bin | outside), smoothed, clipped to ±6."""
    inside = np.zeros(4096)
    outside = np.zeros(4096)
    for idx, m in zip(indices, masks):
        inside += np.bincount(idx[m], minlength=4096)
        outside += np.bincount(idx[~m], minlength=4096)
    pi = (inside + alpha) / (inside.sum() + alpha * 4096)
    po = (outside + alpha) / (outside.sum() + alpha * 4096)
    return np.clip(np.log(pi / po), -6, 6).astype(np.float32)
_I = {n: i for i, n in enumerate(FEATURE_NAMES)}


def fire_candidates(x: Array) -> NDArray[np.bool_]:
    """Cells the flame head may call fire: some flame-coloured (Chen or HSV band) or flame-core pixels.

    The cascade's colour gate: a cell without such pixels is never flame, whatever the
    classifier would say (it keeps the classifier from learning scene context, such as
    "greyish CCTV frames burn", that does not carry over to other cameras).  Passes
    97 % of the labelled flame frames' flame cells and about a fifth of all cells.
    """
    return (np.maximum(x[:, _I["chen"]], x[:, _I["hsv_flame"]]) >= 0.02) | (x[:, _I["core_near_fire"]] >= 0.02)


def smoke_candidates(x: Array) -> NDArray[np.bool_]:
    """Cells the smoke head may call smoke: a share of greyish (low chroma) pixels or low saturation."""
    return (x[:, _I["greyish"]] >= 0.2) | (x[:, _I["s_mean"]] < 0.3)


def _riu2_table() -> NDArray[np.uint8]:
    """LBP code (8 bits) → riu2 class: the number of set bits if uniform (≤ 2 transitions), else 9."""
    lut = np.zeros(256, np.uint8)
    for c in range(256):
        bits = [(c >> k) & 1 for k in range(8)]
        transitions = sum(bits[k] != bits[(k + 1) % 8] for k in range(8))
        lut[c] = sum(bits) if transitions <= 2 else 9
    return lut


_RIU2 = _riu2_table()
_LBP_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
#: grey-level margin of an LBP comparison (neighbour ≥ centre + 3): sensor noise is not texture
LBP_MARGIN = 3
FINE = 5


def _fine_max(m: NDArray[np.floating], rows: int, cols: int) -> Array:
    """Per cell, the highest mean over its FINE×FINE-pixel blocks."""
    k = CELL // FINE
    f = _cells(m, FINE)[: rows * k, : cols * k]
    f = np.maximum.reduce([f[i::k] for i in range(k)])  # max over the k rows of blocks of a cell, then columns
    return np.maximum.reduce([f[:, i::k] for i in range(k)])


def lbp_classes(grey8: Image) -> Image:
    """Per pixel riu2 LBP class (0..9) of a uint8 grey image (edges replicated)."""
    h, w = grey8.shape
    p = cv2.copyMakeBorder(grey8, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    centre = cv2.add(grey8, LBP_MARGIN)
    code = np.zeros((h, w), np.uint8)
    for k, (dy, dx) in enumerate(_LBP_OFFSETS):
        nb = p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        code |= (nb >= centre).view(np.uint8) << np.uint8(k)
    code[grey8 > 255 - LBP_MARGIN] = 0  # no neighbour can be LBP_MARGIN brighter than these
    return cv2.LUT(code, _RIU2)


def _cell_index(rows: int, cols: int) -> NDArray[np.int32]:
    """Per pixel of the gridded area: its cell's index × 10 (the LBP histogram's bincount index)."""
    key = (rows, cols)
    if key not in _CELL_INDEX:
        r = (np.arange(rows * CELL) // CELL)[:, None] * cols + (np.arange(cols * CELL) // CELL)[None, :]
        _CELL_INDEX[key] = (r * 10).astype(np.int32)
    return _CELL_INDEX[key]


_CELL_INDEX: dict[tuple[int, int], NDArray[np.int32]] = {}


def _scale_features(maps: PixelMaps, v_mean: Array, greyish: Array) -> list[Array]:
    """The FINE, ABOVE and LBP columns, in that order (``v_mean``, ``greyish``: the cell means)."""
    m = maps
    rows, cols = v_mean.shape
    v_max = _fine_max(m.v, rows, cols) * np.float32(1.0 / 255.0)
    out = [_fine_max(x, rows, cols) for x in (m.fire, m.core, m.chen, m.hsv_flame)]
    out += [v_max, v_max - v_mean]
    dark_smoke = _cells(((m.chroma < 40) & (m.v < 110)).view(np.uint8).astype(np.float32))
    for g in (dark_smoke, greyish):
        up = np.zeros_like(g)
        for k in range(1, 4):
            up[k:] += g[:-k]
        out.append(up / np.float32(3.0))
    cls = lbp_classes(m.grey8)[: rows * CELL, : cols * CELL]
    hist = np.bincount((_cell_index(rows, cols) + cls).ravel(), minlength=rows * cols * 10)
    hist = hist.reshape(rows, cols, 10).astype(np.float32) / np.float32(CELL * CELL)
    out += [hist[:, :, k] for k in range(10)]
    return out


def _percentiles(a: NDArray[np.floating], qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(a, qs)`` (linear interpolation) by partial sorting, without its overhead."""
    flat = a.ravel()
    n = flat.size
    pos = [q / 100.0 * (n - 1) for q in qs]
    kth = sorted({int(np.floor(p)) for p in pos} | {min(n - 1, int(np.floor(p)) + 1) for p in pos})
    part = np.partition(flat, kth)
    out = []
    for p in pos:
        lo = int(np.floor(p))
        hi = min(n - 1, lo + 1)
        out.append(float(part[lo] + (part[hi] - part[lo]) * (p - lo)))
    return out


def cell_features(maps: PixelMaps) -> tuple[Array, tuple[int, int]]:
    """Feature matrix (rows*cols, len(FEATURE_NAMES)) and the grid shape."""
    m = maps
    k255 = np.float32(1.0 / 255.0)
    s, v = m.s * k255, m.v * k255
    near = cv2.dilate(m.fire, np.ones((5, 5), np.uint8))
    # hue histogram of saturated, not-dark pixels: 6 bins of 60° starting at -30° (red centred)
    sat = ((m.s > 60) & (m.v > 50)).astype(np.float32)
    hbin = m.hue_bin
    grad, dark = m.grad * k255, m.dark * k255
    channels = [m.chen, m.celik, m.hsv_flame, m.fire, m.core, m.core * near, m.greyish,
                s, s * s, v, v * v, m.y * k255, m.cr * k255, m.cb * k255,
                (m.r - (m.g + m.b) * 0.5) * k255, (m.r - m.b) * k255, sat]
    channels += [grad, m.lap * k255, grad * grad, dark, dark * dark,
                 m.fire * v, m.fire * grad, m.fire * s, m.greyish * grad, m.greyish * dark]
    # every per-pixel channel to cell means (np.dstack of 33 maps would cost more than all of this)
    cm = [_cells(ch) for ch in channels]
    (chen, celik, hsvf, fire, core, core_near_fire, greyish, s_mean, s2, v_mean, v2, y_mean, cr_mean,
     cb_mean, redness, r_minus_b, sat_share) = cm[:17]
    denom = np.maximum(sat_share, 1e-3)
    rows, cols = chen.shape
    # saturated pixels per (cell, hue bin) in one pass; the same means as 6 masked maps through _cells
    sat_px = (m.s[: rows * CELL, : cols * CELL] > 60) & (m.v[: rows * CELL, : cols * CELL] > 50)
    hue_idx = (_cell_index(rows, cols) // 10 * 6 + hbin[: rows * CELL, : cols * CELL])[sat_px]
    hue_hist = np.bincount(hue_idx, minlength=rows * cols * 6).reshape(rows, cols, 6).astype(np.float32)
    hue_hist /= np.float32(CELL * CELL)
    hues = [hue_hist[:, :, k] / denom for k in range(6)]
    grad_m, lap, grad2, dark_mean, dark2, fv, fg, fs, gg, gdk = cm[17:27]
    s_std = np.sqrt(np.maximum(s2 - s_mean ** 2, 0))
    v_std = np.sqrt(np.maximum(v2 - v_mean ** 2, 0))
    grad_std = np.sqrt(np.maximum(grad2 - grad_m ** 2, 0))
    dark_std = np.sqrt(np.maximum(dark2 - dark_mean ** 2, 0))
    fd = np.maximum(fire, 1e-3)
    gd = np.maximum(greyish, 1e-3)
    per_cell = {
        "chen": chen, "celik": celik, "hsv_flame": hsvf, "fire": fire, "core": core,
        "core_near_fire": core_near_fire, "greyish": greyish, "s_mean": s_mean, "s_std": s_std,
        "v_mean": v_mean, "v_std": v_std, "y_mean": y_mean, "cr_mean": cr_mean, "cb_mean": cb_mean,
        "cr_minus_cb": cr_mean - cb_mean, "redness": redness, "r_minus_b": r_minus_b,
        **{f"hue{k}": hues[k] for k in range(6)}, "sat_share": sat_share,
        "grad": grad_m, "lap": lap, "grad_std": grad_std, "dark_mean": dark_mean, "dark_std": dark_std,
        "fire_v": fv / fd, "fire_grad": fg / fd, "fire_s": fs / fd, "grey_grad": gg / gd,
        "grey_dark": gdk / gd,
    }
    cols_out = [per_cell[n] for n in CELL_FEATURES]
    ctx = [per_cell[n] for n in CONTEXT_FEATURES]
    cols_out += [_neighbourhood(x) for x in ctx]
    cols_out += [_neighbourhood(x, 5) for x in ctx]
    k5 = np.ones((5, 5), np.uint8)
    cols_out += [cv2.dilate(per_cell[n], k5, borderType=cv2.BORDER_REPLICATE) for n in ("fire", "core", "redness")]
    frame_means = [float(x.mean()) for x in ctx]
    cols_out += [x - fm for x, fm in zip(ctx, frame_means)]
    cols_out += [np.full_like(chen, fm) for fm in frame_means]
    # frame-wide percentiles on every 4th pixel (a sort of 77k values costs more than the rest)
    (sp,) = _percentiles(s[::4, ::4], (90,))
    vp10, vp90 = _percentiles(v[::4, ::4], (10, 90))
    cols_out += [np.full_like(chen, sp), np.full_like(chen, vp10), np.full_like(chen, vp90)]
    cols_out += _scale_features(m, v_mean, greyish)
    x = np.stack([a.astype(np.float32).reshape(-1) for a in cols_out], axis=1)
    return x, (rows, cols)


def frame_features(frame: Image) -> tuple[Array, tuple[int, int], PixelMaps]:
    """Analysis-size frame → (cell features, grid shape, pixel maps)."""
    maps = PixelMaps(to_analysis(frame))
    x, grid = cell_features(maps)
    return x, grid, maps
