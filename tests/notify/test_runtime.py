"""The plugin inside the real core: entry-point loading, the site file's notify section, registry names."""

from __future__ import annotations

import textwrap

import pytest

from firebus.core.plugins import PluginHost
from firebus.core.runtime import running_core
from firebus.plugins import notify
from firebus.sdk import AlarmCategory, AlarmEvent, AlarmTransition, Severity
from firebus.sdk.clock import ManualClock

from .conftest import START, wait_for

pytestmark = pytest.mark.anyio


def test_plugin_declares_seven_channel_types_and_its_migration() -> None:
    host = PluginHost(autoload=False)
    host.register(notify, name="notify")
    host.collect_declarations(None)
    assert sorted(host.declarations["notifier"]) == ["dingtalk", "email", "feishu", "mqtt", "sms", "webhook", "wecom"]
    [migration] = notify.firebus_register_migrations(None)
    assert migration.component == "notify" and migration.version == 1


async def test_alarm_on_the_real_core_reaches_the_unit_by_its_site_file_key(tmp_path, receiver) -> None:
    site = textwrap.dedent(f"""
        site: {{name: test}}
        storage: {{path: {tmp_path / 'db.sqlite'}, synchronous: NORMAL}}
        plugins: {{allow: [notify]}}
        units:
          - key: unit-a
            name: 一号楼物业
            buildings:
              - key: b1
                floors: [{{key: f2, name: 2F, locations: [{{key: kitchen, name: 2层厨房}}]}}]
          - key: unit-b
            name: 二号楼
        notify:
          channels:
            - {{key: hook, type: webhook, options: {{url: "{receiver.url('/hook')}"}}}}
          people:
            - {{name: duty-a, roles: [duty_officer], units: [unit-a], contacts: {{hook: x}}}}
          routes:
            - {{name: all, channels: [hook], units: [unit-a]}}
    """)
    clock = ManualClock(START)
    async with running_core(site, clock=clock) as core:
        unit_a = core.registry.place_by_key("unit-a")
        unit_b = core.registry.place_by_key("unit-b")
        for alarm_id, unit in (("A1", unit_a.id), ("B1", unit_b.id)):
            core.bus.publish(AlarmEvent(alarm_id=alarm_id, transition=AlarmTransition.NEW,
                                        category=AlarmCategory.GAS, severity=Severity.ALARM, rule="gas",
                                        unit_id=unit, ts=START))
        await wait_for(lambda: len(receiver.ok("/hook")) == 1, what="unit-a's alarm")
        await core.bus.drain(timeout=10)
        service = notify.service_for(core)
        assert service is not None
        assert service.channels.snapshot()[0]["state"] == "up"
    [req] = receiver.ok("/hook")
    body = req.json()
    assert body["alarm_id"] == "A1"
    assert "单位：一号楼物业" in body["text"]
