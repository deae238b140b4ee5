"""Session writes need the CSRF token; pages send a signed-out browser to the login; the site file's
section is checked with file:line; duty records; the month's forms (CSV, PDF) and the QR label sheet."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import INSPECTION, local, site_yaml

pytestmark = pytest.mark.anyio
FIREBUS = str(Path(sys.executable).with_name("firebus"))


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


def test_site_file_errors_name_file_line_and_field(tmp_path) -> None:
    bad = INSPECTION.replace("items: [pump, sprinkler_valve]", "items: [pump, sprinkler]").replace(
        "within: 4h}", "within: 4 hours}")
    path = tmp_path / "site.yaml"
    path.write_text(site_yaml(tmp_path / "fb.db", bad))
    out = subprocess.run([FIREBUS, "check", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "sprinkler]" in text)
    assert f"site.yaml:{line}: inspection.checkpoints[1].items[1]: unknown item 'sprinkler'" in out.stderr + out.stdout


async def test_duty_records_and_monthly_forms(site) -> None:
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
