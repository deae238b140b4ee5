"""The monthly report of the synthetic school, built from a real SQLite file with the core's schema.

The school (firebus.plugins.reports.synthetic) has five injected effects; the
report must find each on the right device and nowhere else, its score must be
the hand-computed example of docs/reports.md, and the PDF's text (extracted
with poppler's ``pdftotext``) must hold the figures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import anyio
import msgspec
import pytest

from firebus.plugins.reports import synthetic
from firebus.plugins.reports.config import ReportsConfig
from firebus.plugins.reports.period import parse_period
from firebus.plugins.reports.readonly import ReadOnlyStorage
from firebus.plugins.reports.render import Format, render
from firebus.plugins.reports.report import UnitReport, unit_report
from firebus.plugins.reports.sqlite_source import StorageSource

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reports.md"
NOW = synthetic.local(2026, 12, 2)


async def _report(db: Path) -> UnitReport:
    async with ReadOnlyStorage(db) as storage:
        return await unit_report(StorageSource(storage), "school", parse_period("2026-11", now=NOW), ReportsConfig(),
                                 generated_ts=NOW)


@pytest.fixture(scope="module")
def report(school_db: Path) -> UnitReport:
    return anyio.run(_report, school_db)


def _dev(r: UnitReport, device_id: str | None) -> str:
    return next(c.device for c in r.circuits if c.device_id == device_id)


def _by_kind(r: UnitReport, kind: str) -> list:
    return [f for f in r.findings if f.kind == kind]


def test_rising_circuit_has_a_trend_finding_with_its_crossing_date(report: UnitReport) -> None:
    trends = [t for t in report.evidence.trends if t.days_to_cross is not None]
    assert [_dev(report, t.device_id) for t in trends] == ["ARCM AL-1-03"]
    t = trends[0]
    assert t.slope_per_day == pytest.approx(5.0, abs=1e-6)  # 5 mA/day injected
    # daily peak at the end = 80 + 5·(29·24 + 23)/24 + 5/2 (mid-day of the last day) → (300 − 232.29)/5
    assert t.days_to_cross == pytest.approx(13.5, abs=0.1)
    assert t.mk_z > 7
    finding = _by_kind(report, "trend")
    assert [f.device for f in finding] == ["ARCM AL-1-03"] and finding[0].level == "high"
    assert "2026-12-14" in finding[0].seen_en and "2026-12-14" in finding[0].seen_zh


def test_night_load_is_found_on_the_lab_circuit_only(report: UnitReport) -> None:
    episodes = report.evidence.episodes
    assert {_dev(report, e.device_id) for e in episodes} == {"ARCM AL-2-01"}
    assert len(episodes) == 7 and all(e.night and e.hours == 5 for e in episodes)
    starts = [synthetic.local(2026, 11, d, 23) for d in range(16, 23)]
    assert [e.start for e in episodes] == starts
    assert all(e.value == pytest.approx(15.0, abs=0.5) and e.baseline < 5 for e in episodes)
    night = _by_kind(report, "night_load")
    assert [f.device for f in night] == ["ARCM AL-2-01"] and night[0].place == "教学楼 / 2F / 实验室"


def test_recurring_alarm_same_point_same_hour(report: UnitReport) -> None:
    rec = report.evidence.recurring
    assert len(rec) == 1
    g = rec[0]
    assert _dev(report, g.device_id) == "ARCM AL-1-05" and g.hour == 14 and g.category == "electrical_alarm"
    assert g.dates == ["2026-11-03", "2026-11-10", "2026-11-17", "2026-11-24"]


def test_flaky_device(report: UnitReport) -> None:
    flaky = [h for h in report.evidence.health if h.flaky]
    assert [_dev(report, h.device_id) for h in flaky] == ["ARCM AL-2-04"]
    h = flaky[0]
    assert h.outages == 5 and h.offline_s == 5 * 3 * 3600 and h.longest_s == 3 * 3600
    assert h.online_rate == pytest.approx(1 - 15 / 720, abs=1e-6)
    assert [f.device for f in _by_kind(report, "flaky")] == ["ARCM AL-2-04"]


def test_sudden_change_with_before_and_after(report: UnitReport) -> None:
    assert len(report.evidence.sudden) == 1
    s = report.evidence.sudden[0]
    assert _dev(report, s.device_id) == "ARCM AL-1-02"
    assert s.ts == synthetic.local(2026, 11, 12, 10)
    assert (s.before, s.after, s.delta) == (60.0, 140.0, 80.0)


def test_margin_is_the_95th_percentile_of_hourly_maxima(report: UnitReport) -> None:
    stats = {(_dev(report, s.device_id), s.point_class): s for s in report.evidence.stats}
    rising = stats[("ARCM AL-1-03", "residual_current")]
    # hour h of November: 80 + 5h/24 mA, max +10; nearest rank ⌈0.95·720⌉ = 684 → h = 683
    assert rising.q_value == pytest.approx(80 + 5 * 683 / 24 + 10, abs=1e-3)
    assert rising.severity == pytest.approx((rising.q_value / 300 - 0.6) / 0.3, abs=1e-4)
    hot = stats[("ARCM AL-1-05", "temperature")]
    assert hot.max_value == 88.0 and hot.severity == 0  # 4 hot hours are below the 95th percentile
    assert sum(1 for s in report.evidence.stats if s.severity > 0) == 1


def _docs_example() -> tuple[dict[str, float], float, str]:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- example:begin -->")[1].split("<!-- example:end -->")[0]
    rows = {}
    for line in block.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|.*\|\s*([0-9.]+)\s*\|\s*$", line)
        if m:
            rows[m.group(1)] = float(m.group(2))
    total = float(re.search(r"score\s*=\s*100\s*−\s*[0-9.]+\s*=\s*\*\*([0-9.]+)\*\*", block).group(1))
    grade = re.search(r"grade\s*\*\*([A-D])\*\*", block).group(1)
    return rows, total, grade


def test_score_equals_the_hand_computed_example_in_the_docs(report: UnitReport) -> None:
    rows, total, grade = _docs_example()
    got = {e.key: e.deducted for item in report.score.items for e in item.elements}
    assert rows and set(rows) <= set(got)
    assert {k: got[k] for k in rows} == rows
    assert sum(v for k, v in got.items() if k not in rows) == 0  # the docs list every element that deducts
    assert report.score.total == total and report.score.grade == grade
    assert report.score.direct == []


def test_json_holds_the_same_report(report: UnitReport) -> None:
    data = render(report, Format.JSON, "zh")
    back = msgspec.json.decode(data, type=UnitReport)
    assert back.score == report.score and back.findings == report.findings


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_text_holds_the_figures(report: UnitReport, lang: str, tmp_path: Path) -> None:
    pdf = render(report, Format.PDF, lang)
    assert pdf.startswith(b"%PDF")
    path = tmp_path / f"r-{lang}.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    flat = re.sub(r"\s+", "", text)
    for figure in ("66.51", "−13.33", "−1.74", "232.3", "AL-1-03", "AL-2-01", "AL-2-04", "AL-1-05", "2026-11-1210:00"):
        assert figure in flat, figure
    if lang == "zh":
        for words in ("电气火灾监控健康体检报告", "实验学校", "健康得分", "上升趋势", "夜间", "整改建议"):
            assert words in flat, words
    else:
        for words in ("Healthscore", "Risingtrend", "Loadatnight", "Suggestedrectification"):
            assert words in flat, words
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    assert "WenQuanYi" in fonts or "Noto" in fonts  # the CJK font is embedded
    assert "Serif" not in fonts  # the stylesheet reached WeasyPrint unescaped (no fallback to the default serif)
    assert re.search(r"1\s*/\s*\d", text)  # page numbers from @page


def test_the_core_storage_as_storage_api_gives_the_same_report(school_db: Path, tmp_path: Path, report: UnitReport) -> None:
    """StorageSource over the core's own ``Storage`` (what the running core hands a plugin)."""
    from firebus.core.alarms.schema import ALARM_MIGRATIONS
    from firebus.core.storage import Storage

    copy = tmp_path / "firebus.db"
    shutil.copy(school_db, copy)

    async def build() -> UnitReport:
        async with Storage(copy, synchronous="NORMAL").running(ALARM_MIGRATIONS) as storage:
            return await unit_report(StorageSource(storage), "school", parse_period("2026-11", now=NOW), ReportsConfig(),
                                     generated_ts=NOW)

    got = anyio.run(build)
    assert got.score == report.score and got.findings == report.findings
