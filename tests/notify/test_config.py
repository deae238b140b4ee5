"""The notify section: valid sites load, mistakes are reported with their path."""

from __future__ import annotations

from typing import Any

import pytest

from firebus.plugins import notify
from firebus.plugins.notify.config import Role, load_config
from firebus.plugins.notify.templates import Renderer

TYPES = {cls.type_key: cls for cls in notify.CHANNELS}


def good() -> dict[str, Any]:
    return {
        "channels": [
            {"key": "mail", "type": "email", "options": {"host": "smtp.example", "sender": "a@b.c"}},
            {"key": "ding", "type": "dingtalk", "options": {"url": "https://oapi.dingtalk.com/robot/send?access_token=x"}},
        ],
        "people": [{"name": "张三", "roles": ["duty_officer"], "contacts": {"mail": "z@b.c", "ding": "138"},
                    "quiet_hours": [{"start": "22:00", "end": "07:00"}]}],
        "routes": [{"name": "all", "channels": ["mail", "ding"], "min_severity": "fault"}],
    }


def error(section: dict[str, Any]) -> str:
    with pytest.raises(notify.NotifyConfigError) as info:
        load_config(section, TYPES)
    return str(info.value)


def test_a_valid_section_loads_with_the_default_escalation() -> None:
    cfg = load_config(good(), TYPES)
    steps = cfg.routes[0].escalation.steps
    assert [s.roles for s in steps] == [[Role.DUTY_OFFICER], [Role.UNIT_MANAGER], [Role.SUPERVISOR]]
    assert [s.after_minutes for s in steps] == [0, 5, 15]
    assert cfg.language == "zh" and str(cfg.tz) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s["people"][0].update(roles=["chief"]), "notify.people[0].roles[0]: Invalid enum value 'chief'"),
        (lambda s: s["people"][0].update(shoe_size=42), "notify.people[0]: Object contains unknown field `shoe_size`"),
        (lambda s: s["routes"][0]["channels"].append("fax"), "notify.routes[0].channels[2]: no channel with key 'fax'"),
        (lambda s: s["people"][0]["contacts"].update(fax="1"), "notify.people[0].contacts.fax: no channel with key 'fax'"),
        (lambda s: s["people"][0]["quiet_hours"][0].update(end="25:00"),
         "notify.people[0].quiet_hours[0].end: expected HH:MM, got '25:00'"),
        (lambda s: s["routes"][0].update(min_severity="urgent"), "notify.routes[0].min_severity: unknown severity 'urgent'"),
        (lambda s: s["channels"][1].update(type="pager"), "notify.channels[1].type: unknown channel type 'pager' (known: "),
        (lambda s: s["channels"][0]["options"].pop("host"), "notify.channels[0].options: Object missing required field `host`"),
        (lambda s: s["channels"][0]["options"].update(port="x"), "notify.channels[0].options.port: Expected `int | null`"),
        (lambda s: s["channels"].append(dict(s["channels"][0])), "notify.channels[2].key: 'mail' is also channels[0]"),
        (lambda s: s.update(timezone="Mars/Olympus"), "notify.timezone: unknown time zone 'Mars/Olympus'"),
        (lambda s: s["routes"][0].update(escalation={"steps": [{"roles": ["supervisor"], "after_minutes": 5},
                                                               {"roles": ["duty_officer"], "after_minutes": 1}]}),
         "notify.routes[0].escalation.steps[1].after_minutes: steps must not go back in time"),
        (lambda s: s.update(rate_limit={"burst": 0}), "notify.rate_limit.burst: must be at least 1"),
        (lambda s: s.update(templates=[{"kind": "shout", "body": "x"}]), "notify.templates[0].kind: 'shout'"),
    ],
)
def test_mistakes_name_their_path(mutate, expected) -> None:
    section = good()
    mutate(section)
    assert error(section).startswith(expected)


def test_template_syntax_error_names_the_template() -> None:
    section = good()
    section["templates"] = [{"kind": "new", "body": "{% if %}"}]
    cfg = load_config(section, TYPES)
    with pytest.raises(notify.NotifyConfigError, match=r"notify.templates\[0\]: line 1"):
        Renderer(cfg)


def test_missing_secret_env_stops_start_up(monkeypatch) -> None:
    section = good()
    section["channels"][1]["options"]["secret_env"] = "DING_SECRET_NOT_SET"
    monkeypatch.delenv("DING_SECRET_NOT_SET", raising=False)
    cfg = load_config(section, TYPES)

    class Core:
        clock = None
        storage = None
        bus = None

    with pytest.raises(notify.NotifyConfigError, match=r"notify.channels\[1\].options: secret_env: .*DING_SECRET_NOT_SET"):
        notify.NotifyService(Core(), cfg, TYPES)
