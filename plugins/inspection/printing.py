"""Printable things: the QR label sheet and the GB 25201-style monthly forms (PDF, CSV).

PDF is HTML + CSS through WeasyPrint (already the reports plugin's renderer, with
CJK fonts); QR codes are drawn by ``qrcode`` as inline SVG, so the sheet is
vector and prints sharp at any size.  The web routes run both in a worker *process*
(``anyio.to_process``): a 24-label sheet is about 3 s of pure-Python CPU on a
loaded 2-core box, and in a thread it shares the GIL with the event loop that
carries alarms: the loop's 10 ms ticks came up to 85–164 ms late, against 44 ms
with a worker process (measured 2026-12-02, load average 6 on 2 cores).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from typing import Any, Iterable
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .i18n import both

FONTS = '"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "DejaVu Sans", sans-serif'


def qr_svg(data: str) -> str:
    """An SVG ``<svg>`` element for ``data`` (error correction M: survives a scuffed label)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, error_correction=qrcode.constants.ERROR_CORRECT_M,
                      box_size=10, border=2)
    svg = img.to_string(encoding="unicode")
    # every code on a sheet would carry the same element id; ids are not needed for drawing
    return re.sub(r'\sid="[^"]*"', "", svg[svg.index("<svg"):])


def label_url(base_url: str, code: str) -> str:
    """What a label's QR holds: the patrol page with the code, so a phone's own camera app opens it too."""
    return f"{base_url.rstrip('/')}/-/plugins/inspection/patrol?code={quote(code, safe='')}"


def labels_html(labels: Iterable[dict[str, str]], title: str) -> str:
    """``labels``: dicts with ``code``, ``url``, ``name``, ``place``, ``unit``; a 3 × 4 grid of 60 mm labels per A4."""
    cells = []
    for lab in labels:
        cells.append(
            f'<div class="label"><div class="qr">{qr_svg(lab["url"])}</div>'
            f'<div class="name">{html.escape(lab["name"])}</div>'
            f'<div class="place">{html.escape(lab["place"])}</div>'
            f'<div class="code">{html.escape(lab["code"])}</div>'
            f'<div class="hint">{html.escape(both("label_hint"))}</div></div>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
@page {{ size: A4; margin: 10mm; }}
body {{ font-family: {FONTS}; margin: 0; }}
.sheet {{ display: flex; flex-wrap: wrap; gap: 4mm; }}
.label {{ width: 60mm; height: 66mm; border: 0.3mm dashed #999; box-sizing: border-box; padding: 2mm;
          text-align: center; page-break-inside: avoid; }}
.qr svg {{ width: 40mm; height: 40mm; }}
.name {{ font-size: 10pt; font-weight: bold; }}
.place {{ font-size: 8pt; color: #333; }}
.code {{ font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }}
.hint {{ font-size: 6pt; color: #b71c1c; }}
</style></head><body><div class="sheet">{''.join(cells)}</div></body></html>"""


def pdf(document_html: str) -> bytes:
    import logging

    for name in ("weasyprint", "weasyprint.progress"):  # its per-step INFO lines drown a CLI's output
        logging.getLogger(name).setLevel(logging.WARNING)
    from weasyprint import HTML

    return HTML(string=document_html).write_pdf()


# -- monthly forms --------------------------------------------------------------------------


def _when(ts: float | None, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M") if ts is not None else ""


def form_rows(kind: str, records: list[dict[str, Any]], tz: ZoneInfo, names: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a form; ``names`` maps checkpoint and item keys to display names."""
    if kind == "patrol":
        header = [both("time"), both("unit"), both("checkpoint"), both("place"), both("item"), both("result"),
                  both("note"), both("patroller"), both("method"), "id"]
        rows = []
        for r in records:
            results = r["results"] or [{"item": "", "result": "presence", "note": ""}]
            for res in results:
                result = {"normal": "正常 normal", "fault": "异常 fault", "presence": "到位 visited"}[res["result"]]
                rows.append([_when(r["ts"], tz), r["unit"] or "", names.get(r["checkpoint"], r["checkpoint"]),
                             r["location"] or "", names.get(res["item"], res["item"]), result,
                             " ".join(x for x in (res.get("note", ""), r["note"]) if x), r["user"], r["method"], r["id"]])
        return header, rows
    if kind == "duty":
        header = [both("shift"), both("unit"), both("officers"), both("handover"), both("note"),
                  both("alarms_handled"), "id"]
        return header, [[f"{_when(d['shift_start'], tz)} – {_when(d['shift_end'], tz)}", d["unit"] or "",
                         "、".join(d["officers"]), d["handover"], d["notes"], str(d["alarms_handled"]), d["id"]]
                        for d in records]
    if kind == "hazards":
        header = [both("created"), both("unit"), both("place"), both("description"), both("severity"),
                  both("responsible"), both("deadline"), both("state"), both("closed"), "id"]
        return header, [[_when(h["created_ts"], tz), h["unit"] or "", names.get(h["checkpoint"] or "", h["location"] or ""),
                         h["description"], "重大 major" if h["severity"] == "major" else "一般 general",
                         h["responsible"], _when(h["deadline"], tz), h["state"], _when(h["closed_ts"], tz), h["id"]]
                        for h in records]
    raise ValueError(kind)


def to_csv(header: list[str], rows: list[list[str]]) -> bytes:
    """UTF-8 with BOM: Excel on a Chinese Windows opens it without garbling."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def form_html(title: str, site: str, month: str, header: list[str], rows: list[list[str]], generated: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows) or (
        f'<tr><td colspan="{len(header)}">{html.escape(both("none"))}</td></tr>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>
@page {{ size: A4 landscape; margin: 12mm; @bottom-center {{ content: counter(page) " / " counter(pages); font-size: 7pt; }} }}
body {{ font-family: {FONTS}; font-size: 7.5pt; }}
h1 {{ font-size: 14pt; text-align: center; margin: 0 0 2mm; }}
.meta {{ display: flex; justify-content: space-between; margin-bottom: 2mm; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 0.3mm solid #444; padding: 1mm; vertical-align: top; }}
th {{ background: #eee; }} thead {{ display: table-header-group; }} tr {{ page-break-inside: avoid; }}
.foot {{ margin-top: 4mm; display: flex; justify-content: space-between; }}
</style></head><body><h1>{html.escape(title)}</h1>
<div class="meta"><span>{html.escape(both("unit"))}: {html.escape(site)}</span><span>{html.escape(both("month"))}: {html.escape(month)}</span>
<span>{html.escape(both("generated"))}: {html.escape(generated)}</span></div>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<div class="foot"><span>{html.escape(both("retention"))}</span><span>{html.escape(both("signature"))}: ____________</span></div>
</body></html>"""


def labels_pdf(labels: list[dict[str, str]], title: str) -> bytes:
    """The label sheet as PDF (a top-level function: it runs in a worker process)."""
    return pdf(labels_html(labels, title))


def form_pdf(title: str, site: str, month: str, header: list[str], rows: list[list[str]], generated: str) -> bytes:
    return pdf(form_html(title, site, month, header, rows, generated))
