"""Scoring rules at their boundaries, A-class criteria, hazards and inspection (memory source)."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from firebus.plugins.reports.config import Each, Grade, Ramp, Rate, ReportsConfig, ScoringConfig
from firebus.plugins.reports.memory import MemorySource, series
from firebus.plugins.reports.model import AlarmRecord, DeviceRef, Hazard, InspectionStats, Interval, Place, PointRef, Resolution
from firebus.plugins.reports.period import parse_period
from firebus.plugins.reports.report import unit_report
from firebus.plugins.reports.scoring import each_deduction, grade_of, ramp_deduction, rate_deduction

START = parse_period("2026-11", now=2e9).start
END = parse_period("2026-11", now=2e9).end
PERIOD = parse_period("2026-11", now=2e9)


def test_rules_at_their_boundaries() -> None:
    assert rate_deduction(Rate(20, 0.5), 0.25) == 10.0
    assert rate_deduction(Rate(20, 0.5), 0.5) == 20.0 and rate_deduction(Rate(20, 0.5), 5) == 20.0
    assert each_deduction(Each(2, 5), 2) == 4.0 and each_deduction(Each(2, 5), 3) == 5.0
    up = Ramp(6, 300, 3600)
    assert ramp_deduction(up, 300) == 0 and ramp_deduction(up, 3600) == 6 and ramp_deduction(up, 1950) == 3.0
    down = Ramp(10, 0.99, 0.90)  # lower is worse
    assert ramp_deduction(down, 0.995) == 0 and ramp_deduction(down, 0.945) == 5.0 and ramp_deduction(down, 0.5) == 10
    cfg = ScoringConfig()
    assert [grade_of(x, cfg) for x in (90, 89.99, 75, 74.99, 60, 59.99)] == ["A", "B", "B", "C", "C", "D"]


def _unit(n_dev: int = 2, rc: float = 50.0, **kw: object) -> MemorySource:
    places = [Place("u", "unit", "u1", "Unit 1"), Place("b", "building", "b1", "B1", "u"), Place("l", "location", "l1", "Room", "b")]
    devices = [DeviceRef(f"d{i}", f"Dev {i}", "u", "l", created_at=START - 86400) for i in range(n_dev)]
    points = [PointRef(f"p{i}", f"d{i}", "residual_current", "residual_current", "mA", "RC", 300.0, 200.0) for i in range(n_dev)]
    hours = np.arange(START - 28 * 86400, END, 3600)
    rollups = {Resolution.HOUR: {p.id: series(hours, np.full(hours.shape, rc), 2.0) for p in points}}
    return MemorySource(places, devices, points, rollups, **kw)


def _score(source: MemorySource, cfg: ReportsConfig | None = None):
    return anyio.run(unit_report, source, "u1", PERIOD, cfg or ReportsConfig())


def test_a_quiet_unit_scores_100_and_says_what_was_not_assessed() -> None:
    r = _score(_unit())
    assert r.score.total == 100.0 and r.score.grade == Grade.A and r.findings == []
    hazards = next(i for i in r.score.items if i.key == "hazards")
    assert [e.assessed for e in hazards.elements] == [False, False, False]
    assert r.places and all(p.total == 100.0 for p in r.places)


def test_an_electrical_alarm_unacknowledged_for_more_than_a_day_is_a_direct_failure() -> None:
    ok = AlarmRecord("a1", "electrical_alarm", 50, START + 3600, "d0", "p0", ack_ts=START + 3600 + 23.9 * 3600,
                     clear_ts=START + 30 * 3600)
    r = _score(_unit(alarms=[ok]))
    assert r.score.direct == [] and r.score.grade != Grade.D
    late = AlarmRecord("a1", "electrical_alarm", 50, START + 3600, "d0", "p0", ack_ts=START + 3600 + 24.1 * 3600,
                       clear_ts=START + 30 * 3600)
    r = _score(_unit(alarms=[late]))
    assert [d.key for d in r.score.direct] == ["unhandled"]
    assert r.score.grade == Grade.D and r.score.total == min(r.score.raw_total, 59.0) and r.score.raw_total > 59
    assert "Dev 0" in r.score.direct[0].en and "Dev 0" in r.score.direct[0].zh


def test_online_below_80_percent_is_a_direct_failure() -> None:
    outage = Interval("d0", START, START + 0.41 * (END - START))  # one of two devices: 79.5 % online
    r = _score(_unit(outages=[outage]))
    assert [d.key for d in r.score.direct] == ["online"]
    r = _score(_unit(outages=[Interval("d0", START, START + 0.39 * (END - START))]))
    assert r.score.direct == []
    assert any(f.kind == "flaky" and f.device == "Dev 0" for f in r.findings)


def test_a_circuit_sitting_over_its_setting_is_a_direct_failure() -> None:
    r = _score(_unit(rc=305.0))
    assert {d.key for d in r.score.direct} == {"persistent"}
    margin = next(i for i in r.score.items if i.key == "margin")
    assert margin.deducted == 6.0  # 2 points × severity 1 × 3
    assert all(c.grade == Grade.D for c in r.circuits)


def test_hazards_and_inspection_when_the_register_exists() -> None:
    hazards = [
        Hazard("h1", "blocked exit", START + 86400, due_ts=START + 5 * 86400),  # open and overdue
        Hazard("h2", "cable tray", START + 86400, closed_ts=START + 2 * 86400),  # closed in time
        Hazard("h3", "overloaded socket", START + 86400, major=True),
    ]
    r = _score(_unit(hazards=hazards, inspections=InspectionStats(due=20, done=15)))
    items = {e.key: e for i in r.score.items for e in i.elements}
    assert items["open_hazards"].deducted == 4.0  # h1, h3
    assert items["overdue"].deducted == 3.0  # h1
    # completion 75 %: 4 × (0.95 − 0.75)/(0.95 − 0.60)
    assert items["inspection"].deducted == pytest.approx(round(4 * 0.2 / 0.35, 2))
    assert [d.key for d in r.score.direct] == ["major"] and r.score.grade == Grade.D


def test_weights_are_configuration() -> None:
    alarm = AlarmRecord("a1", "electrical_alarm", 50, START + 3600, "d0", "p0", ack_ts=START + 3700, clear_ts=START + 4000)
    base = _score(_unit(alarms=[alarm]))
    cfg = ReportsConfig(scoring=ScoringConfig(electrical_alarms=Rate(10.0, 0.5)))
    half = _score(_unit(alarms=[alarm]), cfg)
    get = lambda r: next(e for i in r.score.items for e in i.elements if e.key == "electrical_alarms").deducted  # noqa: E731
    assert get(base) == 20.0 and get(half) == 10.0  # 1 alarm / 2 device-months = 0.5 = full
