"""Scope: a user never sees a unit outside their scope on any supervision endpoint (every GET
route of the plugin is walked, pages and API).  Urges: recorded, raised at the unit, notified
to its duty officer through a real webhook, answered by the unit, cleared."""

from __future__ import annotations

import re

import pytest

from firebus.plugins.supervision.web import routes
from firebus.sdk import AlarmCategory, Severity

from .conftest import START, Site, wait_until

pytestmark = pytest.mark.anyio

#: what each user may see, and what of the other units must never appear
SCOPES = {
    "duty_school": {"school"},
    "manager_factory": {"factory"},
    "inspector_a": {"school", "mall"},
    "supervisor_b": {"factory"},
    "county": {"school", "mall", "factory"},
    "admin": {"school", "mall", "factory"},
}
NAMES = {"school": "No. 1 School", "mall": "Riverside Mall", "factory": "Dongfang Factory"}
ORG_NAMES = {"town_a": ("Town A", "甲镇"), "town_b": ("Town B", "乙镇")}


def traces(unit: str) -> list[str]:
    """What a unit leaves in a page or an answer when it is shown."""
    return [NAMES[unit], f'"{unit}"', f"/units/{unit}", f'data-unit="{unit}"', f"value=\"{unit}\""]


async def test_no_endpoint_shows_a_unit_out_of_scope(site: Site) -> None:
    for unit, place in (("school", "s-kitchen"), ("mall", "m-food"), ("factory", "f-switch")):
        site.condition(f"fire-{unit}", True, unit=unit, location=place, category=AlarmCategory.FIRE, severity=Severity.FIRE)
    await site.settle()
    await wait_until(lambda: all(site.alarm_of(f"fire-{u}") for u in NAMES))
    urge_ids = {}
    async with site.client("admin") as c:
        for unit in NAMES:
            r = await c.post("/api/urges", json={"unit": unit, "text": f"check the {unit} alarm"})
            assert r.status_code == 201, r.text
            urge_ids[unit] = r.json()["id"]
        await wait_until(lambda: _all_counted(c))
    await site.state.aggregator.refresh()
    gets = [r.path for r in routes(lambda: None) if "GET" in (r.methods or ())]
    assert len(gets) >= 11
    for who, sees in SCOPES.items():
        async with site.client(who) as c:
            for path in gets:
                for unit in NAMES:
                    concrete = path.replace("{key}", unit).replace("{id}", urge_ids[unit])
                    if "{name}" in concrete:
                        concrete = concrete.replace("{name}", "supervision.css")
                    for query in ("", "?lang=zh", f"?unit={unit}"):
                        r = await c.get(concrete + query)
                        where = f"{who} GET {concrete}{query}"
                        if ("{key}" in path or "{id}" in path or "unit=" in query) and unit not in sees:
                            if path.endswith("/api/units/{key}") or "{id}" in path or (
                                    "unit=" in query and path in ("/api/where", "/api/urges", "/where")):
                                assert r.status_code == 404, where
                                continue
                        assert r.status_code == 200, f"{where}: {r.status_code} {r.text[:200]}"
                        for hidden in set(NAMES) - sees:
                            for trace in traces(hidden):
                                assert trace not in r.text, f"{where} shows {hidden} ({trace!r})"
                        if who == "inspector_a":
                            assert not any(n in r.text for n in ORG_NAMES["town_b"]), where
        # counts over the scope only
        async with site.client(who) as c:
            assert {u["key"] for u in (await c.get("/api/units")).json()["items"]} == sees
            where = (await c.get("/api/where")).json()
            assert sum(where["alarms"]["month"].values()) == len(sees)
            assert {u["unit"] for u in (await c.get("/api/urges")).json()["items"]} == sees
    async with site.client("inspector_a") as c:
        assert (await c.get("/api/units?org=town_a")).json()["total"] == 2
        r = await c.get("/api/units?org=town_b")
        assert r.status_code == 404 and r.json()["error"]["field"] == "org"
        r = await c.post("/api/urges", json={"unit": "factory", "text": "x"})
        assert r.status_code == 404 and r.json()["error"]["field"] == "unit"
    async with site.client("county") as c:
        assert {u["key"] for u in (await c.get("/api/units?org=town_b")).json()["items"]} == {"factory"}
    async with site.client("manager_factory") as c:
        r = await c.post(f"/api/urges/{urge_ids['school']}/answer", json={"text": "not ours"})
        assert r.status_code == 404


async def _all_counted(c) -> bool:
    rows = (await c.get("/api/units")).json()["items"]
    return sum(r["alarms_month"] for r in rows) == 3


async def test_urge_is_notified_answered_and_cleared(site: Site) -> None:
    async with site.client("inspector_a") as c:
        for body, field in (({"unit": "school"}, "text"), ({"unit": "school", "text": " "}, "text"),
                            ({"unit": "school", "text": "x", "due": "tomorrow"}, "due"),
                            ({"unit": "school", "text": "x", "due": START - 10}, "due"),
                            ({"unit": "nowhere", "text": "x"}, "unit"),
                            ({"unit": "school", "text": "x", "colour": "red"}, "colour")):
            r = await c.post("/api/urges", json=body)
            assert r.status_code in (400, 404), r.text
            assert r.json()["error"]["field"] == field, (body, r.json())
            assert r.json()["error"]["message_zh"]
        r = await c.get("/api/units?sort=colour")
        assert r.status_code == 400 and r.json()["error"]["field"] == "sort"
        r = await c.post("/api/urges", json={"unit": "school", "text": "kitchen extinguisher still missing",
                                             "due": START + 3600})
        assert r.status_code == 201, r.text
        urge = r.json()
        assert (urge["by"], urge["by_role"], urge["status"], urge["due"]) == ("inspector_a", "fire_inspector", "open",
                                                                              START + 3600)
    async with site.client("duty_school") as c:
        r = await c.post("/api/urges", json={"unit": "school", "text": "x"})
        assert r.status_code == 403  # a unit's people answer urges, they do not send them
    await site.settle()
    alarm = await wait_until(lambda: _urge_alarm(site, "urge"))
    assert alarm.unit_id == site.place("school") and alarm.category == AlarmCategory.SUPERVISORY
    # the unit's duty officer is told through the notify plugin's real webhook channel
    told = await wait_until(lambda: [b for b in site.hook.bodies if "kitchen extinguisher" in str(b)])
    # one group message (webhook) @-mentioning the school's duty officer, not the factory's
    assert [b["mentions"] for b in told] == [["wang"]] and told[0]["category"] == "supervisory"
    # due time passes unanswered: a second, more severe condition
    await site.clock.advance(3601)
    await site.settle()
    overdue = await wait_until(lambda: _urge_alarm(site, "overdue"))
    assert overdue.severity == Severity.FAULT
    async with site.client("inspector_a") as c:
        r = await c.post(f"/api/urges/{urge['id']}/answer", json={"text": "I am not the unit"})
        assert r.status_code == 403
    async with site.client("duty_school") as c:
        r = await c.post(f"/api/urges/{urge['id']}/answer", json={})
        assert r.status_code == 400 and r.json()["error"]["field"] == "text"
        r = await c.post(f"/api/urges/{urge['id']}/answer", json={"text": "new extinguisher installed"})
        assert r.status_code == 200, r.text
        answered = r.json()
        assert (answered["status"], answered["answer"], answered["answered_by"]) == (
            "answered", "new extinguisher installed", "duty_school")
        r = await c.post(f"/api/urges/{urge['id']}/answer", json={"text": "again"})
        assert r.status_code == 409
        listed = (await c.get("/api/urges?status=answered")).json()["items"]
        assert [u["id"] for u in listed] == [urge["id"]]
        page = (await c.get("/urges?lang=zh")).text
        assert "已回复" in page and "new extinguisher installed" in page
    await site.settle()
    await wait_until(lambda: _urge_alarm(site, "urge") is None and _urge_alarm(site, "overdue") is None)


def _urge_alarm(site: Site, key: str):
    found = [a for a in site.core.alarms.open_alarms() if a.rule == f"supervision.{key}" and a.active]
    return found[0] if found else None


async def test_pages_in_both_languages(site: Site) -> None:
    async with site.client("county") as c:
        for path in ("/", "/where", "/urges"):
            zh = (await c.get(path + "?lang=zh")).text
            en = (await c.get(path + "?lang=en")).text
            assert "监管" in zh and "Supervision" in en, path
            # no English word of the page's own vocabulary is left untranslated in the zh page
            body = re.sub(r"<[^>]+>", " ", zh.split("<main>", 1)[1].split("</main>", 1)[0])
            leftovers = {w for w in re.findall(r"[A-Za-z]{4,}", body)} - {
                "School", "Riverside", "Mall", "Dongfang", "Factory", "none", "English"}
            assert not leftovers, (path, leftovers)
        r = await c.get("/api/where?months=0")
        assert r.status_code == 400 and r.json()["error"]["field"] == "months"


def test_site_file_errors_name_the_field() -> None:
    from firebus.plugins.supervision import firebus_validate_site

    assert firebus_validate_site(None, {}) == []
    for section, path in (({"window_days": "x"}, "supervision.window_days"), ({"refresh_s": 0}, "supervision.refresh_s"),
                          ({"colour": 1}, "supervision.colour")):
        [problem] = firebus_validate_site(None, {"supervision": section})
        assert problem.path == path, problem
