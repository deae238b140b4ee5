"""Periods, the robust statistics and the threshold settings."""

from __future__ import annotations

import numpy as np
import pytest

from firebus.plugins.reports.period import PeriodError, parse_period
from firebus.plugins.reports.settings import RuleSpec, ThresholdSettings
from firebus.plugins.reports.stats import nearest_rank, theil_sen
from firebus.sdk import PointInfo

NOW = 2e9


def test_periods_in_the_site_timezone() -> None:
    m = parse_period("2026-11", "Asia/Shanghai", NOW)
    assert (m.label, m.days, m.local(m.start).isoformat()) == ("2026-11", 30, "2026-11-01T00:00:00+08:00")
    w = parse_period("2026-w46", "Asia/Shanghai", NOW)
    assert (w.label, w.days, w.local(w.start).isoformat()) == ("2026-W46", 7, "2026-11-09T00:00:00+08:00")
    q = parse_period("2026Q4", "Asia/Shanghai", NOW)
    assert (q.label, q.days) == ("2026-Q4", 92)
    assert parse_period("2026-02", "Europe/Berlin", NOW).days == 28
    running = parse_period("2026-11", "Asia/Shanghai", m.start + 86400)
    assert running.partial and running.end == m.start + 86400
    for bad in ("2026-00", "2026-W00", "2026-Q5", "26-11", "2026/11", ""):
        with pytest.raises(PeriodError):
            parse_period(bad, "Asia/Shanghai", NOW)
    with pytest.raises(PeriodError, match="unknown timezone"):
        parse_period("2026-11", "Mars/Olympus", NOW)


def test_theil_sen_ignores_outliers_and_mann_kendall_is_the_textbook_value() -> None:
    x = np.arange(20, dtype=float)
    y = 3.0 * x + 10
    y[[2, 7, 15]] = [500, -300, 900]  # 15 % wild values
    slope, intercept, z = theil_sen(x, y)
    assert slope == pytest.approx(3.0) and intercept == pytest.approx(10.0)
    # strictly increasing n = 10: S = 45, Var = 10·9·25/18 = 125, Z = 44/√125
    _, _, z = theil_sen(np.arange(10.0), np.arange(10.0) ** 2)
    assert z == pytest.approx(44 / np.sqrt(125))
    _, _, z0 = theil_sen(np.arange(10.0), np.ones(10))
    assert z0 == 0
    assert nearest_rank(np.arange(1, 101), 0.95) == 95 and nearest_rank(np.array([5.0]), 0.95) == 5


def test_settings_follow_the_threshold_rule() -> None:
    rc = PointInfo(point_id="p", device_id="d", key="residual_current", point_class="residual_current")
    t = PointInfo(point_id="t", device_id="d", key="temperature_1", point_class="temperature")
    assert ThresholdSettings().for_point(rc) == (300, 200)
    assert ThresholdSettings().for_point(t) == (85, None)
    over = PointInfo(point_id="p", device_id="d", key="residual_current", point_class="residual_current",
                     overrides={"rules": {"threshold": {"alarm": 500}}})
    assert ThresholdSettings().for_point(over) == (500, 200)
    site = ThresholdSettings([RuleSpec("strict", "threshold", {"alarm": 250}, ["residual_current"])])
    assert site.for_point(rc) == (250, 200)  # the site's rule and the default one: the most sensitive wins
    only = ThresholdSettings.from_alarms_section({"default_rules": False})
    assert only.for_point(rc) == (None, None)
