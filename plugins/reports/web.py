"""The plugin's routes, mounted by the core under ``/-/plugins/reports/``, open to every
signed-in role (``firebus.sdk.web.signed_in``) and scoped by the caller's units: a unit
manager sees their units' scores and reports, admin and integrator every unit.

* ``GET units/{unit}/score`` — the live score as JSON (``unit``: registry id or site-file key):
  score, grade, items, every deduction with its evidence, direct criteria, the window;
* ``GET units/{unit}?lang=zh|en`` — the same as a page;
* ``GET reports.json`` / ``GET reports?lang=`` — the stored periodic reports, newest first;
* ``GET files/{id}/{name}`` — one file of a stored report (``pdf-zh``, ``html-en``, ``json`` …).

Every page reads the live state's cache (``LiveScore.score``), never history.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from firebus.sdk.web import caller, nav_link, signed_in

from . import i18n
from .live import LiveScore
from .store import get, listing

_MIME = {"pdf": "application/pdf", "html": "text/html; charset=utf-8", "json": "application/json"}


def _lang(request: Request, default: str) -> str:
    lang = request.query_params.get("lang") or default
    return lang if lang in ("zh", "en") else "zh"


def _error(code: int, text: str) -> JSONResponse:
    return JSONResponse({"error": {"code": {404: "not_found", 503: "unavailable"}.get(code, "bad_request"), "message": text}}, code)


def _sees(request: Request, unit_key: str) -> bool:
    """Another unit's data is answered like a missing one (404): its existence is not told either."""
    who = caller(request)
    return who is not None and who.sees(unit_key)


def score_json(live: LiveScore) -> dict[str, Any]:
    """The last computed score (the feed's refresher recomputes it off the event loop)."""
    cached = live.cached
    assert cached is not None
    now, sc, _ = cached
    deductions = [
        {"item": item.key, "element": e.key, "name_zh": e.name_zh, "name_en": e.name_en, "deducted": e.deducted,
         "input": e.input, "input_zh": e.input_zh, "input_en": e.input_en,
         "evidence": [{"zh": ln.zh, "en": ln.en, "device_id": ln.device_id, "point_id": ln.point_id,
                       "value": ln.value, "ts": ln.ts} for ln in e.evidence], "more": e.more}
        for item in sc.items for e in item.elements if e.deducted > 0
    ]
    return {
        "unit": {"id": live.unit.id, "key": live.unit.key, "name": live.unit.name},
        "score": sc.total, "raw_score": sc.raw_total, "grade": str(sc.grade), "device_months": sc.device_months,
        "window": {"start": now - live.window, "end": now, "days": live.window / 86400},
        "items": [{"key": i.key, "name_zh": i.name_zh, "name_en": i.name_en, "points": i.points, "deducted": i.deducted}
                  for i in sc.items],
        "deductions": deductions,
        "direct": [{"key": d.key, "zh": d.zh, "en": d.en, "device_id": d.device_id, "point_id": d.point_id, "ts": d.ts}
                   for d in sc.direct],
        "points": len(live.points), "devices": len(live.devices), "computed": now,
    }


_CSS = ("body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;margin:1.5rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;"
        "vertical-align:top}.big{font-size:2rem;font-weight:bold}.ev{color:#555;font-size:.9em}")


def _page(title: str, body: str, lang: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(status_code=status, content=f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
                        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>")


def routes(service_of: Callable[[], Any]) -> list[Route]:
    def service() -> Any:
        s = service_of()
        if s is None:
            raise LookupError("the reports plugin is not running")
        return s

    def unit_live(s: Any, ref: str) -> LiveScore | None:
        units = s.feed.scores.units
        return units.get(ref) or next((u for u in units.values() if u.unit.key == ref), None)

    async def score(request: Request) -> Response:
        try:
            s = service()
        except LookupError as exc:
            return _error(503, str(exc))
        if not s.feed.ready.is_set():
            return _error(503, i18n.t("live_not_ready", "en"))
        ref = request.path_params["unit"]
        live = unit_live(s, ref)
        if live is None or not _sees(request, live.unit.key):
            return _error(404, i18n.t("err_unit", "en", unit=ref))
        if live.cached is None:
            s.feed.kick()
            return _error(503, i18n.t("live_not_ready", "en"))
        if live.stale:
            s.feed.kick()  # answered from the cache now; the refresher catches up off the loop
        return JSONResponse(score_json(live))

    async def unit_page(request: Request) -> Response:
        s = service_of()
        lang = _lang(request, s.language if s else "zh")
        t = lambda key, **kw: html.escape(i18n.t(key, lang, **kw))  # noqa: E731
        if s is None or not s.feed.ready.is_set():
            return _page(i18n.t("live_title", lang), f"<p>{t('live_not_ready')}</p>", lang)
        ref = request.path_params["unit"]
        live = unit_live(s, ref)
        if live is None or not _sees(request, live.unit.key):
            return _page(i18n.t("live_title", lang), f"<p>{t('err_unit', unit=ref)}</p>", lang, 404)
        if live.cached is None:
            s.feed.kick()
            return _page(i18n.t("live_title", lang), f"<p>{t('live_not_ready')}</p>", lang)
        data = score_json(live)
        zh = lang == "zh"
        rows = "".join(
            f"<tr><td>{html.escape(d['name_zh'] if zh else d['name_en'])}</td><td>{i18n.num(d['deducted'], 2)}</td>"
            f"<td>{html.escape(d['input_zh'] if zh else d['input_en'])}</td><td class=ev>"
            + "<br>".join(html.escape(e['zh'] if zh else e['en']) for e in d["evidence"]) + "</td></tr>"
            for d in data["deductions"])
        items = "".join(f"<tr><td>{html.escape(i['name_zh'] if zh else i['name_en'])}</td><td>{i18n.num(i['points'], 0)}</td>"
                        f"<td>{i18n.num(i['deducted'], 2)}</td></tr>" for i in data["items"])
        direct = "".join(f"<li>{html.escape(d['zh'] if zh else d['en'])}</li>" for d in data["direct"])
        w = data["window"]
        body = (
            f"<h1>{t('live_title')} · {html.escape(live.unit.label)}</h1>"
            f"<p>{t('live_window', start=i18n.when(w['start'], s.tz), end=i18n.when(w['end'], s.tz), days=i18n.num(w['days'], 0))}</p>"
            f"<p>{t('score')}: <span class=big>{i18n.num(data['score'], 2)}</span> · {t('grade')}: "
            f"<span class=big>{t('grade_' + data['grade'])}</span></p>"
            + (f"<h2>{t('h_direct')}</h2><ul>{direct}</ul>" if direct else "")
            + f"<table><tr><th>{t('col_item')}</th><th>{t('col_points')}</th><th>{t('col_deducted')}</th></tr>{items}</table>"
            f"<h2>{t('live_deductions')}</h2>"
            + (f"<table><tr><th>{t('col_element')}</th><th>{t('col_deducted')}</th><th>{t('col_input')}</th>"
               f"<th>{t('col_evidence')}</th></tr>{rows}</table>" if rows else f"<p>{t('live_none')}</p>")
        )
        return _page(f"{i18n.t('live_title', lang)} · {live.unit.label}", body, lang)

    async def reports_json(request: Request) -> Response:
        try:
            s = service()
        except LookupError as exc:
            return _error(503, str(exc))
        found = [r for r in await listing(s.core.storage, request.query_params.get("unit")) if _sees(request, r.unit_key)]
        return JSONResponse({"reports": [
            {"id": r.id, "schedule": r.schedule, "unit_id": r.unit_id, "unit": r.unit_key, "period": r.period,
             "grade": r.grade, "score": r.score, "created": r.created, "sent": r.sent,
             "files": {name: f"files/{r.id}/{name}" for name in sorted(r.files)}} for r in found]})

    async def reports_page(request: Request) -> Response:
        s = service_of()
        lang = _lang(request, s.language if s else "zh")
        t = lambda key, **kw: html.escape(i18n.t(key, lang, **kw))  # noqa: E731
        found = [r for r in await listing(s.core.storage) if _sees(request, r.unit_key)] if s else []
        if not found:
            return _page(i18n.t("list_title", lang), f"<h1>{t('list_title')}</h1><p>{t('list_none')}</p>", lang)
        rows = []
        for r in found:
            ok = sum(1 for x in r.sent if x.get("ok"))
            bad = len(r.sent) - ok
            sent = ", ".join([t("sent_ok", n=ok)] * bool(ok) + [t("sent_failed", n=bad)] * bool(bad)) or "-"
            files = " ".join(f'<a href="files/{html.escape(r.id)}/{html.escape(n)}">{html.escape(n.upper())}</a>'
                             for n in sorted(r.files))
            rows.append(f"<tr><td>{html.escape(i18n.when(r.created, s.tz))}</td><td>{html.escape(r.unit_key)}</td>"
                        f"<td>{html.escape(r.period)}</td><td>{t('sched_' + r.schedule)}</td><td>{i18n.num(r.score, 2)}</td>"
                        f"<td>{t('grade_' + r.grade)}</td><td>{files}</td><td>{sent}</td></tr>")
        head = "".join(f"<th>{t(k)}</th>" for k in ("col_created", "unit", "period", "col_kind", "score", "grade", "col_files", "col_sent"))
        return _page(i18n.t("list_title", lang), f"<h1>{t('list_title')}</h1><table><tr>{head}</tr>{''.join(rows)}</table>", lang)

    async def file(request: Request) -> Response:
        try:
            s = service()
        except LookupError as exc:
            return _error(503, str(exc))
        rid, name = request.path_params["id"], request.path_params["name"]
        r = await get(s.core.storage, rid)
        if r is None or not _sees(request, r.unit_key):
            return _error(404, i18n.t("err_report", "en", id=rid))
        path = r.files.get(name)
        if path is None or not Path(path).is_file():  # noqa: ASYNC240 (one stat of a local file)
            return _error(404, i18n.t("err_file", "en", id=rid, name=name))
        fmt = name.split("-")[0]
        return FileResponse(path, media_type=_MIME.get(fmt, "application/octet-stream"), filename=Path(path).name)

    return [signed_in(r) for r in (
        Route("/units/{unit}/score", score),
        Route("/units/{unit}", unit_page),
        Route("/reports.json", reports_json),
        nav_link(Route("/reports", reports_page), "报告", "Reports"),
        Route("/files/{id}/{name}", file),
    )]
