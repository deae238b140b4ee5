"""Session writes need the CSRF token; pages send a signed-out browser to the login; the site file's
section is checked with file:line; duty records; the month's forms (CSV, PDF) and the QR label sheet."""

from __future__ import annotations

import csv
import io

import anyio
import firebus.plugins.inspection as inspection
import pytest
from firebus.core.config import ConfigError, load_text
from firebus.core.runtime import running_core

from .conftest import INSPECTION, local, site_yaml

pytestmark = pytest.mark.anyio


async def test_session_writes_need_csrf_and_pages_redirect_to_login(site) -> None:
    user = await site.auth.get_user("duty_a")
    raw, session = await site.auth.create_session(user)
    async with site.client(cookies={"firebus_session": raw}) as c:
        page = await c.get("/patrol")
        assert page.status_code == 200 and session.csrf in page.text  # the page carries it for its own calls
        assert (await c.get("/static/patrol.js")).headers["content-type"].startswith("text/javascript")
        r = await c.post("/api/records", json={"id": "s-1", "checkpoint": "cp-a1"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
        r = await c.post("/api/records", json={"id": "s-1", "checkpoint": "cp-a1"}, headers={"X-CSRF-Token": session.csrf})
        assert r.status_code == 201, r.text
        zh = await c.get("/patrol", params={"lang": "zh"})
        assert "消防巡查" in zh.text and "扫码" in zh.text
    async with site.client() as c:
        r = await c.get("/patrol", params={"code": "FB-A1"}, headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/-/plugins/inspection/patrol%3Fcode%3DFB-A1"


async def test_site_file_errors_name_file_line_and_field(tmp_path) -> None:
    """What ``firebus check`` and ``firebus run`` report (the same check, before anything starts)."""
    bad = INSPECTION.replace("items: [pump, sprinkler_valve]", "items: [pump, sprinkler]")
    text = site_yaml(tmp_path / "fb.db", bad)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "sprinkler]" in t)
    with pytest.raises(ConfigError) as err:
        async with running_core(load_text(text, "site.yaml"), autoload=False, extra_plugins={"inspection": inspection}):
            pass
    assert str(err.value).startswith(f"site.yaml:{line}: inspection.checkpoints[1].items[1]: unknown item 'sprinkler'")
    for fragment, where, says in [
        ("within: 4h}", "inspection.plans[1].schedule.within", "'4 hours' is not a duration"),
        ("every: daily, at: \"08:00\", within: 10h", "inspection.plans[0].schedule.at", "'8am' is not a time of day"),
        ("location: room-b", "inspection.checkpoints[2].location", "no unit, building, floor or location 'room-z'"),
        ("code: FB-B1", "inspection.checkpoints[2].tags[0].code", "already checkpoint 'cp-a1'"),
    ]:
        broken = {"within: 4h}": INSPECTION.replace("within: 4h}", "within: 4 hours}"),
                  "location: room-b": INSPECTION.replace("location: room-b", "location: room-z"),
                  "code: FB-B1": INSPECTION.replace("code: FB-B1", "code: FB-A1")}.get(
            fragment, INSPECTION.replace('at: "08:00", within: 10h', 'at: "8am", within: 10h'))
        with pytest.raises(ConfigError) as err:
            async with running_core(load_text(site_yaml(tmp_path / "fb.db", broken), "site.yaml"), autoload=False,
                                    extra_plugins={"inspection": inspection}):
                pass
        assert f": {where}: " in str(err.value) and says in str(err.value), str(err.value)


def cli(*argv: str) -> int:
    """``firebus inspection …`` in-process (the same parser and functions the CLI entry point runs)."""
    import argparse

    from firebus.plugins.inspection.cli import add_commands

    parser = argparse.ArgumentParser(prog="firebus")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["inspection", *argv])
    return args.func(args)


async def test_duty_records_and_monthly_forms(site, tmp_path) -> None:
    await site.clock.advance_to(local(1, 9))
    async with site.client("duty_a") as c:
        duty = {"id": "shift-0601", "unit": "plant-a", "shift_start": local(1, 8), "shift_end": local(1, 20),
                "officers": ["王伟", "李娜"], "handover": "主电正常，无故障", "alarms_handled": 1}
        r = await c.post("/api/duty", json=duty)
        assert r.status_code == 201, r.text
        assert (await c.post("/api/duty", json=duty)).json()["duplicate"] is True
        bad = await c.post("/api/duty", json={**duty, "id": "s2", "shift_end": local(1, 7)})
        assert bad.status_code == 400 and "shift_end" in bad.json()["error"]["message"]
        await c.post("/api/records", json={"id": "r-1", "checkpoint": "cp-a1", "method": "manual",
                                           "results": [{"item": "fire_door", "result": "fault", "note": "闭门器损坏"}]})
        r = await c.get("/export/patrol.csv", params={"month": "2026-12"})
        assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert rows[0][0] == "时间 / Time" and len(rows) == 2
        assert rows[1][:6] == ["2026-12-01 09:00", "plant-a", "Switch room A", "room-a", "防火门 Fire door", "异常 fault"]
        assert "闭门器损坏" in rows[1][6]
        duty_csv = (await c.get("/export/duty.csv", params={"month": "2026-12"})).content.decode("utf-8-sig")
        assert "王伟、李娜" in duty_csv and "主电正常" in duty_csv
        assert "闭门器损坏" in (await c.get("/export/hazards.csv", params={"month": "2026-12"})).content.decode("utf-8-sig")
        assert list(csv.reader(io.StringIO((await c.get("/export/patrol.csv", params={"month": "2026-11"})).content
                                           .decode("utf-8-sig")))) [1:] == []
        pdf = await c.get("/export/patrol.pdf", params={"month": "2026-12"})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert (await c.get("/export/patrol.csv")).status_code == 400
        labels = await c.get("/labels.pdf")
        assert labels.status_code == 200 and labels.content.startswith(b"%PDF")
    async with site.client("manager_b") as c:  # office-b sees none of plant-a's records
        rows = list(csv.reader(io.StringIO((await c.get("/export/patrol.csv", params={"month": "2026-12"}))
                                           .content.decode("utf-8-sig"))))
        assert rows[1:] == []
    # the same form from the command line, reading the live site's database read-only
    config = tmp_path / "site.yaml"
    config.write_text(site_yaml(tmp_path / "fb.db"))
    out = tmp_path / "patrol.csv"
    assert await anyio.to_thread.run_sync(cli, "export", "--config", str(config), "--month", "2026-12", "--out", str(out)) == 0
    assert "闭门器损坏" in out.read_text(encoding="utf-8-sig")
    assert await anyio.to_thread.run_sync(cli, "export", "--config", str(config), "--month", "2026-13", "--out", str(out)) == 1
    sheet = tmp_path / "labels.pdf"
    assert await anyio.to_thread.run_sync(cli, "labels", "--config", str(config), "--base-url", "https://fire.example.cn",
                                          "--out", str(sheet)) == 0
    assert sheet.read_bytes().startswith(b"%PDF")

