"""``firebus report`` end to end: the real CLI, a real database file, a real site file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from firebus.core.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_report_to_a_file_with_progress_on_stderr(school_db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.json"
    code, _, err = _run(capsys, "--unit", "school", "--period", "2026-11", "--format", "json", "--db", str(school_db),
                        "--out", str(out))
    assert code == 0
    assert "collecting 2026-11" in err and "score 66.51 (C)" in err and "wrote" in err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == "unit" and data["score"]["total"] == 66.51 and data["unit"]["key"] == "school"


def test_site_file_gives_database_and_thresholds(school_db: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "site" / "data"
    data.mkdir(parents=True)
    shutil.copy(school_db, data / "firebus.db")
    site = tmp_path / "site" / "site.yaml"
    site.write_text(
        "site: {name: test, timezone: Asia/Shanghai, language: en}\n"
        "storage: {path: data/firebus.db}\n"
        "devices:\n  - {key: AL-1-03, driver: leakage.modbus, name: Boiler room feeder}\n"
        "alarms:\n  rules:\n    - {key: threshold, type: threshold, point_classes: [residual_current],"
        " options: {levels: [{name: alarm, value: 400, category: electrical_alarm, severity: ALARM}]}}\n",
        encoding="utf-8",
    )
    code, out, err = _run(capsys, "--unit", "school", "--period", "2026-11", "--format", "json", "--config", str(site),
                          "--out", "-")
    assert code == 0, err
    r = json.loads(out)
    rc = [s for s in r["settings"] if s["point_class"] == "residual_current"]
    assert {s["setting"] for s in rc} == {400.0}
    rising = next(s for s in r["evidence"]["stats"] if s["device_id"] == "d-AL-1-03" and s["point_class"] == "residual_current")
    assert rising["q_ratio"] == pytest.approx(232.292 / 400, abs=1e-4)  # the site's 400 mA, not the default 300
    assert any(f["device"] == "Boiler room feeder" for f in r["findings"])


def test_html_in_english(school_db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.html"
    code, _, _ = _run(capsys, "--unit", "school", "--period", "2026-W46", "--format", "html", "--lang", "en",
                      "--db", str(school_db), "--out", str(out))
    assert code == 0
    html = out.read_text(encoding="utf-8")
    assert "Electrical-fire monitoring health check" in html and "weekly report" in html
    assert "data:image/png;base64," in html


def test_summary_of_several_units(school_db: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.json"
    code, _, err = _run(capsys, "--all", "--period", "2026-11", "--format", "json", "--db", str(school_db),
                        "--out", str(out))
    assert code == 0, err
    s = json.loads(out.read_text(encoding="utf-8"))
    assert s["kind"] == "summary" and [u["unit"]["key"] for u in s["units"]] == ["school"]
    assert s["units"][0]["total"] == 66.51 and s["units"][0]["items"]["alarms"] == 9.0
    html = tmp_path / "s.html"
    code, _, err = _run(capsys, "--unit", "school", "--unit", "school", "--period", "2026-11", "--format", "html",
                        "--db", str(school_db), "--out", str(html))
    assert code == 0, err
    text = html.read_text(encoding="utf-8")
    assert "电气火灾监控 健康体检汇总" in text and text.count("实验学校 · 66.5") == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--unit", "nowhere", "--period", "2026-11"], "unknown unit 'nowhere' (the database has: school)"),
        (["--unit", "school", "--period", "2026-13"], "bad period '2026-13'"),
        (["--unit", "school", "--period", "November"], "bad period 'November'"),
        (["--unit", "school", "--period", "2099-01"], "has not begun"),
        (["--unit", "school", "--period", "2026-W54"], "no ISO week 54"),
        (["--period", "2026-11"], "say which unit"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(school_db: Path, capsys, args: list[str], message: str) -> None:
    code, _, err = _run(capsys, *args, "--db", str(school_db), "--format", "json", "--out", "-")
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ")


def test_missing_or_foreign_database(tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, "--unit", "school", "--period", "2026-11", "--db", str(tmp_path / "none.db"))
    assert code == 2 and f"no database at {tmp_path / 'none.db'}" in err
    other = tmp_path / "other.db"
    other.write_bytes(b"not sqlite at all" * 100)
    code, _, err = _run(capsys, "--unit", "school", "--period", "2026-11", "--db", str(other))
    assert code == 2 and "not a readable SQLite database" in err
    code, _, err = _run(capsys, "--unit", "school", "--period", "2026-11")
    assert code == 2 and "say where the site database is" in err
    code, _, err = _run(capsys, "--unit", "school", "--period", "2026-11", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: cannot read" in err
    assert "Traceback" not in err
