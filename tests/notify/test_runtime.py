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


def test_plugin_declares_its_channel_types_and_migrations() -> None:
    host = PluginHost(autoload=False)
    host.register(notify, name="notify")
    host.collect_declarations(None)
    assert sorted(host.declarations["notifier"]) == ["dingtalk", "dingtalk_app", "email", "feishu", "feishu_app",
                                                     "mqtt", "ntfy", "sms", "webhook", "webpush", "wecom", "wecom_app"]
    migrations = notify.firebus_register_migrations(None)
    assert [(m.component, m.version) for m in migrations] == [("notify", 1), ("notify", 2)]


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
        # The receiver records the request before it answers; the channel is marked up once
        # the sender has read that answer, a moment later.
        await wait_for(lambda: service.channels.snapshot()[0]["state"] == "up", what="the channel up")
    [req] = receiver.ok("/hook")
    body = req.json()
    assert body["alarm_id"] == "A1"
    assert "单位：一号楼物业" in body["text"]


# -- end to end: reading → alarm engine → notify --------------------------------------------------

import msgspec  # noqa: E402

from firebus.sdk import DeviceInfo, PointSpec, PolledDriver, Reading, hookimpl  # noqa: E402

from .conftest import SMS_BODY, sms  # noqa: E402

GAS: dict[str, float] = {}


class GasOpts(msgspec.Struct, forbid_unknown_fields=True):
    serial: str
    poll_interval: float = 60.0  # few polls per simulated hour: the ManualClock walks each one


class FakeGasDetector(PolledDriver):
    """Pure-logic stand-in for a gas detector; the alarm engine and notify are under test."""

    type_key = "test.gas"
    Options = GasOpts
    transports = ()

    async def setup(self) -> DeviceInfo:
        return DeviceInfo(identifiers={"serial": self.options.serial}, model="G-1", name="燃气探测器")

    def points(self) -> list[PointSpec]:
        return [PointSpec(key="lel", point_class="gas_lel", unit="%LEL", name="可燃气体浓度")]

    async def poll(self) -> list[Reading]:
        return [Reading(point_key="lel", value=GAS[self.options.serial])]


class GasPlugin:
    @hookimpl
    def firebus_register_drivers(self, core):
        return [FakeGasDetector]


async def test_gas_reading_to_text_message_escalation_acknowledge_and_clear(tmp_path, receiver) -> None:
    GAS["G1"] = 0.0
    site = textwrap.dedent(f"""
        storage: {{path: {tmp_path / 'db.sqlite'}, synchronous: NORMAL}}
        units:
          - key: unit-a
            name: 一号楼
            buildings: [{{key: b1, floors: [{{key: f2, locations: [{{key: kitchen, name: 2层厨房}}]}}]}}]
        devices:
          - {{key: gas-1, driver: test.gas, location: kitchen, options: {{serial: G1}}}}
        notify:
          channels:
            - key: sms
              type: sms
              options: {{url: "{receiver.url('/sms')}", body: '{SMS_BODY}'}}
          people:
            - {{name: duty, roles: [duty_officer], units: [unit-a], contacts: {{sms: "1001"}}}}
            - {{name: mgr, roles: [unit_manager], units: [unit-a], contacts: {{sms: "2001"}}}}
            - {{name: sup, roles: [supervisor], contacts: {{sms: "3000"}}}}
            - {{name: other, roles: [duty_officer], units: [unit-b], contacts: {{sms: "9999"}}}}
          routes:
            - name: gas
              categories: [gas]
              channels: [sms]
              escalation:
                steps: [{{roles: [duty_officer]}}, {{roles: [unit_manager], after_minutes: 30}},
                        {{roles: [supervisor], after_minutes: 45}}]
    """)
    clock = ManualClock(START)
    async with running_core(site, clock=clock, extra_plugins={"test-gas": GasPlugin()}) as core:
        await wait_for(lambda: core.ingest.readings_in >= 1, what="the first poll (0 %LEL)")
        await core.bus.drain(timeout=10)
        GAS["G1"] = 30.0  # above level 1 (25 %LEL)
        await clock.advance(60)  # the next poll
        await wait_for(lambda: len(sms(receiver)) == 1, what="the duty officer's text")
        first = sms(receiver)[0]
        assert first["to"] == "1001" and first["kind"] == "new"
        assert first["title"] == "【可燃气体报警】2层厨房"
        assert "单位：一号楼" in first["text"] and "数值：30.0" in first["text"]
        # The engine's own 1-minute reminder escalates before our 30-minute step.
        await clock.advance(60)
        await wait_for(lambda: len(sms(receiver)) == 2, what="the engine's escalation")
        assert sms(receiver)[1]["to"] == "2001" and sms(receiver)[1]["kind"] == "escalate"
        await core.alarms.acknowledge(first["alarm"], "李四")
        await core.bus.drain(timeout=10)
        await clock.advance(3600)
        await core.bus.drain(timeout=10)
        assert len(sms(receiver)) == 2  # acknowledged: the supervisor is never bothered
        GAS["G1"] = 0.0
        await clock.advance(60)
        await wait_for(lambda: len(sms(receiver)) == 4, what="cleared texts")
        assert sorted((m["to"], m["kind"]) for m in sms(receiver)[2:]) == [("1001", "cleared"), ("2001", "cleared")]
        # Lineage: each NotificationResult's parent is the alarm's context.
        rows = await core.storage.fetchall(
            "SELECT parent_id FROM event_log WHERE type = 'NotificationResult'"
        )
        alarm_ctx = await core.storage.fetchall(
            "SELECT context_id FROM event_log WHERE type = 'AlarmEvent' AND data LIKE '%\"transition\":\"new\"%'"
        )
        assert rows and {r[0] for r in rows} == {alarm_ctx[0][0]}


async def test_panel_views_and_test_send(make_harness, receiver) -> None:
    import httpx
    from starlette.applications import Starlette

    from .conftest import alarm, site

    h = make_harness(site(receiver))
    async with h.running() as core:
        app = Starlette(routes=notify.firebus_register_routes(core))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel") as client:
            h.publish(alarm("A1"))
            await wait_for(lambda: len(receiver.ok("/sms")) == 1 and len(receiver.ok("/hook")) == 1, what="sent")

            async def both_recorded() -> bool:
                got = (await client.get("/outbox", params={"alarm_id": "A1", "status": "sent"})).json()
                return len(got["notifications"]) == 2

            await wait_for(both_recorded, what="both sent rows")
            rows = (await client.get("/outbox", params={"alarm_id": "A1"})).json()["notifications"]
            assert {(r["recipient"], r["channel"], r["status"], r["attempts"]) for r in rows} == {
                ("duty-a", "sms", "sent", 1), ("*", "hook", "sent", 1)}
            channels = {c["key"]: c for c in (await client.get("/channels")).json()["channels"]}
            assert channels["sms"]["state"] == "up" and channels["sms"]["sent"] == 1
            assert (await client.get("/outbox", params={"status": "bogus"})).status_code == 400
            assert (await client.post("/channels/sms/test")).status_code == 400  # personal: needs an address
            sent = await client.post("/channels/sms/test", json={"address": "5555"})
            assert sent.status_code == 202
            await wait_for(lambda: any(r.json()["to"] == "5555" for r in receiver.ok("/sms")), what="test text")
            assert (await client.post("/channels/nope/test")).status_code == 404


async def test_invalid_section_is_reported_on_the_bus() -> None:
    published: list[object] = []

    class Bus:
        def publish(self, payload, context=None):
            published.append(payload)

    class Core:
        bus = Bus()
        clock = ManualClock(START)

        def start_task(self, *a, **k):
            raise AssertionError("an invalid section must not start anything")

        def declared_types(self, kind):
            return {}

    with pytest.raises(notify.NotifyConfigError, match=r"notify.routes\[0\].channels\[0\]: no channel with key 'fax'"):
        await notify.start(Core(), {"routes": [{"name": "r", "channels": ["fax"]}]})
    [event] = published
    assert isinstance(event, notify.NotifyChannelChanged)
    assert event.state == "down" and "fax" in event.reason
