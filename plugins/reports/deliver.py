"""Sending a stored report to the people a schedule names, through notify's channel types.

The SDK's notification contract (``firebus.sdk.notify``) has no attachment field and no
way to hand a message to the notify service's outbox, so a report is sent as a message
with links to its files (the panel's download routes), through a channel instance made
exactly as the notify service makes one: ``cls(key, options, ctx)`` from the
``notify.channels`` entry.  Each delivery's outcome is stored with the report.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from firebus.sdk import new_id
from firebus.sdk.notify import Message

from . import i18n
from .config import Schedule
from .store import StoredReport

log = logging.getLogger("firebus.plugin.reports")


class _Ctx:
    def __init__(self, core: Any, http: Any) -> None:
        self.core = core
        self._http = http
        self.logger = log

    def time(self) -> float:
        return float(self.core.clock.time())

    @property
    def http(self) -> Any:
        return self._http

    @property
    def mqtt_publish(self) -> Any:
        core = self.core

        async def publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
            await core.mqtt_publish(topic, payload, qos, retain)

        return publish


def links(base_url: str, report: StoredReport) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {name: f"{base}/-/plugins/reports/files/{report.id}/{name}" for name in sorted(report.files)}


def text_of(report: StoredReport, unit_name: str, lang: str, base_url: str) -> tuple[str, str]:
    kind = i18n.t(f"sched_{report.schedule}", lang)
    grade = i18n.t(f"grade_{report.grade}", lang)
    title = i18n.t("msg_title", lang, unit=unit_name, period=report.period, kind=kind)
    body = i18n.t("msg_body", lang, unit=unit_name, period=report.period, kind=kind, score=i18n.num(report.score, 2),
                  grade=grade)
    lines = [body, ""] + [f"{name}: {url}" for name, url in links(base_url, report).items()]
    return title, "\n".join(lines)


async def send(core: Any, schedule: Schedule, report: StoredReport, unit_name: str, default_lang: str,
               base_url: str) -> list[dict[str, Any]]:
    import httpx

    notify = core.plugin_config("notify") or {}
    channels = {c.get("key"): c for c in notify.get("channels") or [] if isinstance(c, dict)}
    people = [p for p in notify.get("people") or [] if isinstance(p, dict)]
    types = core.declared_types("notifier")
    results: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=30.0) as http:
        ctx = _Ctx(core, http)
        for rec in schedule.recipients:
            for key in rec.channels:
                cfg = channels.get(key) or {}
                cls = types.get(str(cfg.get("type")))
                if cls is None:
                    results.append({"channel": key, "recipient": "*", "ok": False, "error": f"unknown channel type {cfg.get('type')!r}"})
                    continue
                who = [p for p in people if set(p.get("roles") or []) & set(rec.roles)
                       and (not p.get("units") or report.unit_key in p.get("units"))
                       and (p.get("contacts") or {}).get(key)]
                if not who:
                    results.append({"channel": key, "recipient": "-", "ok": False, "error": "nobody with these roles has a contact on this channel"})
                    continue
                try:
                    channel = cls(key, msgspec.convert(cfg.get("options") or {}, cls.Options, strict=False), ctx)
                except Exception as exc:
                    results.append({"channel": key, "recipient": "*", "ok": False, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                group = bool(getattr(cls, "group", False))
                targets = [("*", "", [p["contacts"][key] for p in who], cfg.get("language") or default_lang)] if group else [
                    (str(p.get("name")), p["contacts"][key], [], p.get("language") or cfg.get("language") or default_lang) for p in who]
                try:
                    for recipient, address, mentions, lang in targets:
                        title, text = text_of(report, unit_name, lang, base_url)
                        message = Message(
                            id=new_id(), kind="report", channel=key, recipient=recipient, title=title, text=text,
                            address=address, mentions=mentions, language=lang, ts=ctx.time(),
                            data={"report_id": report.id, "unit_id": report.unit_id, "unit": report.unit_key,
                                  "period": report.period, "score": report.score, "grade": report.grade,
                                  "links": links(base_url, report)},
                        )
                        try:
                            await channel.send(message)
                            results.append({"channel": key, "recipient": recipient, "ok": True})
                        except Exception as exc:
                            log.warning("report %s: sending to %s on %s failed: %s", report.id, recipient, key, exc)
                            results.append({"channel": key, "recipient": recipient, "ok": False,
                                            "error": f"{type(exc).__name__}: {exc}"})
                finally:
                    await channel.aclose()
    return results
