"""Built-in Chinese and English templates for every kind and category; site overrides."""

from __future__ import annotations

import pytest

from firebus.plugins.notify.config import load_config
from firebus.plugins.notify.templates import Renderer
from firebus.sdk import AlarmCategory, Severity

from .conftest import START

VALUES = {"alarm_id": "A1", "severity": int(Severity.ALARM), "where": "2层厨房", "device": "燃气探测器 G-3",
          "value": 37, "message": "", "ts": START, "step": 1, "minutes": 5, "unit": "一号楼"}


@pytest.mark.parametrize("category", list(AlarmCategory))
@pytest.mark.parametrize("kind", ["new", "escalate", "cleared", "acknowledged"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_builtin_renders(category, kind, language) -> None:
    title, text = Renderer(load_config({})).render(kind, "sms", language, {**VALUES, "category": str(category)})
    assert title and text and "A1" in text
    assert "{{" not in title + text
    if language == "zh":
        assert "告警编号" in text
    else:
        assert "Alarm id" in text


def test_category_specific_wording() -> None:
    r = Renderer(load_config({}))
    fire = r.render("new", "sms", "zh", {**VALUES, "category": "fire", "severity": 60})
    gas = r.render("new", "sms", "zh", {**VALUES, "category": "gas"})
    assert fire[0] == "【火警】2层厨房" and "119" in fire[1]
    assert gas[0] == "【可燃气体报警】2层厨房" and "关闭气源" in gas[1]
    assert "时间：2027-01-15 16:00:00" in fire[1]  # the site's time zone, not UTC
    en = r.render("escalate", "sms", "en", {**VALUES, "category": "gas"})
    assert en[0] == "[ESCALATED] [Gas alarm] 2层厨房" and "Not acknowledged for 5 min" in en[1]


def test_an_alarm_reported_late_says_so_and_when_it_happened() -> None:
    r = Renderer(load_config({}))
    late = {**VALUES, "category": "fire", "severity": 60, "ts": START, "occurred_ts": START - 3600}
    title, text = r.render("new", "sms", "zh", late)
    assert title == "【补报】【火警】2层厨房"
    assert "发生时间：2027-01-15 15:00:00（设备恢复通信后补报）" in text and "时间：2027-01-15 16:00:00" in text
    title, text = r.render("new", "sms", "en", late)
    assert title == "[Reported late] [FIRE ALARM] 2层厨房" and "Happened: 2027-01-15 15:00:00" in text
    live = r.render("new", "sms", "zh", {**late, "occurred_ts": None})
    assert live[0] == "【火警】2层厨房" and "补报" not in live[1]


def test_digest_lists_what_was_held() -> None:
    title, text = Renderer(load_config({})).render("digest", "sms", "zh", {
        "count": 23, "items": ["【故障】A", "【故障】B"], "more": 21, "category": "", "ts": START})
    assert title == "【通知汇总】23条通知被合并"
    assert "- 【故障】A" in text and "另有21条" in text


def test_most_specific_override_wins_and_broken_ones_fall_back() -> None:
    cfg = load_config({
        "channels": [{"key": "sms", "type": "sms", "options": {"url": "http://x"}}],
        "templates": [
            {"kind": "new", "body": "any {{ alarm_id }}"},
            {"kind": "new", "category": "gas", "body": "gas {{ alarm_id }}", "title": "GAS"},
            {"kind": "new", "category": "gas", "channel": "sms", "language": "zh", "body": "短信燃气 {{ where }}"},
            {"kind": "new", "category": "fault", "body": "{{ ''.__class__.__mro__ }}"},
        ],
    })
    r = Renderer(cfg)
    assert r.render("new", "sms", "zh", {**VALUES, "category": "gas"}) == ("GAS", "短信燃气 2层厨房")
    assert r.render("new", "mail", "zh", {**VALUES, "category": "gas"}) == ("GAS", "gas A1")
    assert r.render("new", "mail", "en", {**VALUES, "category": "fire"})[1] == "any A1"
    # The sandbox refuses the attribute walk; the built-in template is used instead.
    title, text = r.render("new", "sms", "zh", {**VALUES, "category": "fault"})
    assert title.startswith("【故障】") and "__mro__" not in text
