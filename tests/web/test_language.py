"""Every page in Chinese: no string of the English catalogue, no raw id (ULID) a person would read."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from firebus.core.web.i18n import STRINGS
from firebus.sdk.context import new_id

from .conftest import VALUES, wait_until

pytestmark = pytest.mark.anyio

ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
#: English texts that differ from their Chinese ones (identical ones, like "API", are not a tell).
ENGLISH = {en for zh, en in STRINGS.values() if en != zh and not ULID.search(en)}
LONG = {e for e in ENGLISH if len(e) >= 12}  # long phrases are a tell inside a text too
VISIBLE_ATTRS = ("title", "placeholder", "aria-label", "alt")


class Visible(HTMLParser):
    """Text nodes and the attributes people read, outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRS and value:
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def untranslated(texts: list[str]) -> list[str]:
    bad = []
    for text in texts:
        pieces = {text, *(p.strip() for p in re.split(r"[·:|/()（）]", text))}
        if pieces & ENGLISH or any(e in text for e in LONG) or ULID.search(text):
            bad.append(text)
    return bad


def visible(html: str) -> list[str]:
    parser = Visible()
    parser.feed(html)
    return parser.texts


def test_the_checker_catches_english_and_ids() -> None:
    assert untranslated(["Acknowledge"]) and untranslated(["· Log out"]) and untranslated([new_id()])
    assert not untranslated(["确认", "Detector A", "Plant A · Main hall / F1"])


async def test_every_page_in_chinese(site) -> None:
    VALUES["A1"]["smoke"] = True
    await wait_until(lambda: any(a.active for a in site.core.alarms.open_alarms()))
    await site.core.storage.barrier()  # the API reads what is committed
    alarm = site.core.alarms.open_alarms()[0]
    async with site.client("admin") as c:
        await c.post(f"/api/alarms/{alarm.id}/silence", json={"note": "已通知保安"})
        await c.post(f"/api/alarms/{alarm.id}/ack")
    VALUES["A1"]["smoke"] = False
    await wait_until(lambda: not any(a.active for a in site.core.alarms.open_alarms() if a.id == alarm.id))
    await site.core.storage.barrier()  # the API reads what is committed
    found = site.core.registry.register_discovered({"serial": "Z7"}, driver="webtest.detector", transport=None)
    floor = site.core.registry.place_by_key("a-f1").id
    pages = ["/", "/console", "/alarms", "/alarms?status=all", f"/alarms/{alarm.id}", "/devices",
             f"/devices/{site.device('det-a')}", f"/devices/{found.id}", "/places", "/plans", f"/plans/{floor}",
             "/notifications", "/plugins", "/health", "/users", "/password", "/no-such-page"]
    problems: dict[str, list[str]] = {}
    async with site.client("admin", cookies={"firebus_lang": "zh"}) as c:
        for path in pages:
            r = await c.get(path)
            assert r.status_code in (200, 404), (path, r.status_code)
            assert '<html lang="zh-CN">' in r.text, path
            bad = untranslated(visible(r.text))
            if bad:
                problems[path] = bad
    async with site.client(cookies={"firebus_lang": "zh"}) as c:
        bad = untranslated(visible((await c.get("/login")).text))
        if bad:
            problems["/login"] = bad
    assert not problems, problems
    # The history reads as actions by people and rules, not raw transitions or JSON.
    async with site.client("admin", cookies={"firebus_lang": "zh"}) as c:
        history = "\n".join(visible((await c.get(f"/alarms/{alarm.id}")).text))
    for raw in ("rule:", '{"', "new", "escalate", "true", "false"):
        assert raw not in history, raw
    assert "已消音" in history and "备注：已通知保安" in history and "规则：" in history
