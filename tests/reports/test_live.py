"""The live score, fed bucket by bucket and alarm by alarm, gives the report's score for the same window."""

from __future__ import annotations

import json

import anyio
import pytest

from firebus.plugins.reports import synthetic
from firebus.plugins.reports.config import ReportsConfig
from firebus.plugins.reports.live import LiveScore, LiveScores
from firebus.plugins.reports.memory import MemorySource
from firebus.plugins.reports.model import AlarmRecord, DeviceRef, Interval, Place, PointRef, Resolution, Series
from firebus.plugins.reports.period import parse_period
from firebus.plugins.reports.report import unit_report


def _meta(site: synthetic.Site) -> tuple[list[Place], list[DeviceRef], list[PointRef]]:
    places = [Place(p[0], p[1], p[2], p[4], p[3]) for p in site.places]
    devices = [DeviceRef(d[0], d[8], d[4], d[3], d[2], d[6], d[10]) for d in site.devices]
    points = [PointRef(p[0], p[1], p[2], p[3], p[4], p[5],
                       {"residual_current": 300.0, "temperature": 85.0}.get(p[3]),
                       {"residual_current": 200.0}.get(p[3])) for p in site.points]
    return places, devices, points


def _alarms(site: synthetic.Site) -> list[AlarmRecord]:
    out = []
    for row in site.alarms:
        d = json.loads(row[11])
        out.append(AlarmRecord(
            id=row[0], category=row[2], severity=row[3], active=bool(row[4]), acknowledged=bool(row[5]),
            device_id=row[7], point_id=row[8], location_id=row[9], start_ts=row[10], rule=d.get("rule", ""),
            rule_type=d.get("rule_type", ""), ack_ts=d.get("ack_ts"), clear_ts=d.get("clear_ts"),
            verdict=d.get("verdict"), first_value=d.get("first_value"), peak_value=d.get("peak_value")))
    return out


def test_live_score_equals_the_monthly_report() -> None:
    site = synthetic.school()
    places, devices, points = _meta(site)
    cfg = ReportsConfig()
    live = LiveScore(places[0], places, devices, points, cfg, tz=synthetic.TZ, window_days=30, refresh_s=0)
    scores = LiveScores()
    scores.add(live)
    five_tables: dict[str, list] = {}
    hour_tables: dict[str, list] = {}
    for five, hour in site.rollups(five_classes={"residual_current"}, five_from=synthetic.local(2026, 11, 1)):
        for r in five:
            scores.on_bucket(r[0], Resolution.FIVE_MIN, *r[1:])
        for r in hour:
            scores.on_bucket(r[0], Resolution.HOUR, *r[1:])
        if five:
            five_tables[five[0][0]] = [r[1:] for r in five]
        hour_tables[hour[0][0]] = [r[1:] for r in hour]
    alarms = _alarms(site)
    for a in alarms:
        scores.on_alarm(a)
    end = synthetic.local(2026, 12, 1)
    got = live.score(end)

    source = MemorySource(
        places, devices, points,
        {Resolution.HOUR: {k: Series.from_rows(v) for k, v in hour_tables.items()},
         Resolution.FIVE_MIN: {k: Series.from_rows(v) for k, v in five_tables.items()}},
        alarms,
        # the memory source takes outages as given; the live state derives them from offline alarms
        outages=[Interval(a.device_id, a.start_ts, a.clear_ts) for a in alarms if a.category == "offline"],
    )
    report = anyio.run(unit_report, source, "school", parse_period("2026-11", now=end + 86400), cfg)
    want = report.score
    assert got.total == pytest.approx(want.total, abs=0.011)
    assert {e.key: e.deducted for i in got.items for e in i.elements} == pytest.approx(
        {e.key: e.deducted for i in want.items for e in i.elements}, abs=0.011)
    assert got.total == pytest.approx(66.51, abs=0.011)


def test_an_alarm_invalidates_the_cached_score() -> None:
    site = synthetic.school()
    places, devices, points = _meta(site)
    live = LiveScore(places[0], places, devices, points, ReportsConfig(), tz=synthetic.TZ, refresh_s=3600)
    for _five, hour in site.rollups(five_classes={"residual_current"}, five_from=synthetic.local(2026, 11, 1)):
        for r in hour:
            live.on_bucket(r[0], Resolution.HOUR, *r[1:])
    end = synthetic.local(2026, 12, 1)
    before = live.score(end)
    # a bucket alone does not recompute within refresh_s …
    live.on_bucket(points[0].id, Resolution.HOUR, int(end) - 3600, 60, 299.0, 299.0, 299.0, 299.0)
    assert live.score(end) is before
    # … an alarm does, at once
    live.on_alarm(AlarmRecord("x", "electrical_alarm", 50, end - 7200, devices[0].id, points[0].id, active=True))
    after = live.score(end)
    assert after is not before
    alarms = next(i for i in after.items if i.key == "alarms")
    assert next(e for e in alarms.elements if e.key == "electrical_alarms").input == pytest.approx(1 / 12, abs=1e-4)
