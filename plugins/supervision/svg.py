"""Charts drawn on the server as inline SVG (no script, readable by a screen reader: every
mark carries a ``<title>`` with its number; the same numbers are in the JSON API)."""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

GRADE_COLOURS = {"A": "#2e7d32", "B": "#1e88e5", "C": "#f9a825", "D": "#c62828"}
NO_GRADE = "#9e9e9e"


def _scale(n: int, top: int) -> str:
    """Heat colour: white → deep red by share of the busiest cell."""
    if n <= 0 or top <= 0:
        return "#f5f5f5"
    x = n / top
    r, g, b = 255, int(235 - 200 * x), int(220 - 200 * x)
    return f"rgb({r},{max(g, 0)},{max(b, 0)})"


def heatmap(grid: Sequence[Sequence[int]], days: Sequence[str], title: str, unit_h: str) -> str:
    cell, left, top_pad = 22, 44, 22
    width, height = left + 24 * cell + 4, top_pad + 7 * cell + 4
    top = max((max(row) for row in grid), default=0)
    out = [f'<svg class="chart heat" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for h in range(0, 24, 3):
        out.append(f'<text x="{left + h * cell + cell / 2}" y="14" class="axis" text-anchor="middle">{h}{escape(unit_h)}</text>')
    for d, row in enumerate(grid):
        y = top_pad + d * cell
        out.append(f'<text x="{left - 6}" y="{y + cell * 0.68}" class="axis" text-anchor="end">{escape(days[d])}</text>')
        for h, n in enumerate(row):
            out.append(f'<rect x="{left + h * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                       f'fill="{_scale(n, top)}" data-n="{n}"><title>{escape(days[d])} {h}{escape(unit_h)}: {n}</title></rect>')
            if n:
                out.append(f'<text x="{left + h * cell + (cell - 2) / 2}" y="{y + cell * 0.66}" class="num" '
                           f'text-anchor="middle">{n}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(items: Sequence[tuple[str, int]], title: str) -> str:
    row, left, width = 24, 140, 460
    items = list(items) or [("—", 0)]
    top = max((n for _, n in items), default=0) or 1
    height = row * len(items) + 6
    out = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>"]
    for i, (label, n) in enumerate(items):
        y = 3 + i * row
        w = (width - left - 50) * n / top
        out.append(f'<text x="{left - 8}" y="{y + 15}" class="axis" text-anchor="end">{escape(label)}</text>'
                   f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 8}" rx="3" fill="#e65100">'
                   f'<title>{escape(label)}: {n}</title></rect>'
                   f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="num">{n}</text>')
    out.append("</svg>")
    return "".join(out)


def trend(months: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], title: str) -> str:
    """Lines by month: ``series`` = (label, colour, values per month)."""
    width, height, left, bottom, top_pad = 640, 220, 36, 28, 24
    right = 24
    top = max((max(v) for _, _, v in series if v), default=0) or 1
    n = max(len(months), 1)
    step = (width - left - right) / max(n - 1, 1)

    def xy(i: int, v: int) -> tuple[float, float]:
        return left + i * step, height - bottom - (height - bottom - top_pad) * v / top

    out = [f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 8}" y2="{height - bottom}" class="grid"/>',
           f'<text x="{left - 6}" y="{top_pad + 4}" class="axis" text-anchor="end">{top}</text>',
           f'<text x="{left - 6}" y="{height - bottom}" class="axis" text-anchor="end">0</text>']
    for i, m in enumerate(months):
        if n <= 12 or i % 2 == 0:
            out.append(f'<text x="{xy(i, 0)[0]:.1f}" y="{height - 10}" class="axis" text-anchor="middle">{escape(m[2:])}</text>')
    for s, (label, colour, values) in enumerate(series):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, v in enumerate(values):
            x, y = xy(i, v)
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(label)} '
                       f'{escape(months[i])}: {v}</title></circle>')
        out.append(f'<rect x="{left + 8 + s * 120}" y="4" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + 22 + s * 120}" y="13" class="axis">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def unit_map(units: Sequence[dict[str, Any]], title: str, href: str) -> str:
    """Units with a position as dots on an equirectangular plot of their bounding box, coloured
    by grade; the box is padded so one unit (or units on one line) still has room."""
    placed = [u for u in units if u.get("geo")]
    width, height, pad = 640, 400, 40
    out = [f'<svg class="chart map" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>", f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" '
           'rx="6" fill="#fafafa" stroke="#ddd"/>']
    if placed:
        lats = [u["geo"]["lat"] for u in placed]
        lons = [u["geo"]["lon"] for u in placed]
        lat0, lat1 = min(lats), max(lats)
        lon0, lon1 = min(lons), max(lons)
        span = max(lat1 - lat0, lon1 - lon0, 0.01)
        cx, cy = (lon0 + lon1) / 2, (lat0 + lat1) / 2
        scale = min(width - 2 * pad, height - 2 * pad) / span
        for u in placed:
            x = width / 2 + (u["geo"]["lon"] - cx) * scale
            y = height / 2 - (u["geo"]["lat"] - cy) * scale
            colour = GRADE_COLOURS.get(u.get("grade") or "", NO_GRADE)
            r = 9 + min(u.get("open_alarms", 0), 10)
            label = f"{u['name']} · {u.get('grade') or '—'} · {u.get('open_alarms', 0)}"
            out.append(f'<a href="{escape(href.format(key=u["key"]))}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" '
                       f'fill="{colour}" fill-opacity="0.85" stroke="#fff" stroke-width="2" data-unit="{escape(u["key"])}">'
                       f"<title>{escape(label)}</title></circle>"
                       f'<text x="{x:.1f}" y="{y - r - 4:.1f}" class="label" text-anchor="middle">{escape(u["name"])}</text></a>')
    out.append("</svg>")
    return "".join(out)
