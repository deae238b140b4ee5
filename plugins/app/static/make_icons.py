"""Draw the app's icons once (the PNGs next to this file are committed; run again after a change).

    .venv/bin/python plugins/app/static/make_icons.py

``icon-192.png`` and ``icon-512.png``: a red rounded square with a white flame ("any" purpose).
``icon-maskable-512.png``: full-bleed red with the flame inside the central 80 % circle that
every launcher mask keeps (the W3C maskable safe zone).  Drawn at 4x and scaled down for smooth
edges.  Needs Pillow.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

RED, WHITE, DARK = (183, 28, 28, 255), (255, 255, 255, 255), (127, 0, 0, 255)
HERE = Path(__file__).resolve().parent


def drop(cx: float, cy: float, h: float, w: float, lean: float) -> list[tuple[float, float]]:
    """A teardrop pointing up, ``h`` tall and ``w`` wide, its tip bent sideways by ``lean``."""
    points = []
    for i in range(180):
        a = 2 * math.pi * i / 180
        up = math.cos(a)  # 1 at the tip, -1 at the bottom
        x = w / 2 * math.sin(a) * math.sin(a / 2) ** 1.3 + lean * w * ((1 + up) / 2) ** 3
        points.append((cx + x, cy - up * h / 2))
    return points


def flame(draw: ImageDraw.ImageDraw, cx: float, cy: float, h: float) -> None:
    """A white flame of height ``h`` centred on (cx, cy) with a red tongue inside."""
    draw.polygon(drop(cx, cy, h, h * 0.78, 0.18), fill=WHITE)
    draw.polygon(drop(cx, cy + h * 0.2, h * 0.5, h * 0.36, -0.12), fill=RED)


def icon(size: int, maskable: bool) -> Image.Image:
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if maskable:
        draw.rectangle([0, 0, big, big], fill=RED)
        flame(draw, big / 2, big / 2, big * 0.5)  # well inside the 80 % safe circle
    else:
        draw.rounded_rectangle([0, 0, big - 1, big - 1], radius=big * 0.2, fill=RED)
        draw.rounded_rectangle([big * 0.04, big * 0.04, big * 0.96, big * 0.96], radius=big * 0.17,
                               outline=DARK, width=max(1, big // 64))
        flame(draw, big / 2, big / 2, big * 0.66)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    icon(192, False).save(HERE / "icon-192.png", optimize=True)
    icon(512, False).save(HERE / "icon-512.png", optimize=True)
    icon(512, True).save(HERE / "icon-maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
