"""The notification log with the notify plugin's tables, and plugin routes under /-/plugins/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app
from firebus.plugins.notify.schema import NOTIFY_MIGRATIONS
from firebus.sdk import hookimpl

from .conftest import PASSWORD, VALUES, Site, WebTestPlugin, site_yaml, wait_until, web_plugins

pytestmark = pytest.mark.anyio


class OutboxAndRoutes:
    """The notify plugin's real tables, and a plugin page."""

    @hookimpl
    def firebus_register_migrations(self, core):
        return list(NOTIFY_MIGRATIONS)

    @hookimpl
    def firebus_register_routes(self, core):
        return [Route("/hello", lambda request: PlainTextResponse("hello from a plugin"))]


async def test_notification_log_is_scoped_by_the_alarm_unit(tmp_path: Path) -> None:
    VALUES.clear()
    VALUES.update({"A1": {"smoke": True, "rc": 20}, "B1": {"smoke": False, "rc": 360}})
    loaded = load_text(site_yaml(tmp_path / "fb.db"), "site.yaml")
    plugins = {"webtest": WebTestPlugin(), "extra": OutboxAndRoutes(), **web_plugins()}
    async with running_core(loaded, extra_plugins=plugins, autoload=False) as core:
        auth = AuthStore(core.storage)
        site = Site(core=core, app=create_app(core), auth=auth)
        for name, role, units in (("admin", "admin", []), ("duty_a", "duty_officer", ["plant-a"]),
                                  ("manager_b", "unit_manager", ["office-b"])):
            await auth.create_user(name, role, units=units, password=PASSWORD)
            site.tokens[name], _ = await auth.create_token(name)
        await wait_until(lambda: {a.device_id for a in core.alarms.open_alarms()} >= set(core.device_ids.values()))
        await core.storage.barrier()  # the API reads what is committed
        by_device = {a.device_id: a for a in core.alarms.open_alarms()}
        a_alarm, b_alarm = by_device[core.device_ids["det-a"]], by_device[core.device_ids["det-b"]]
        now = time.time()
        for i, (alarm, channel, status) in enumerate(((a_alarm, "sms", "sent"), (a_alarm, "wecom", "failed"),
                                                      (b_alarm, "email", "pending"))):
            await core.storage.execute(
                "INSERT INTO notify_outbox (id, dedup_key, alarm_id, kind, recipient, channel, status, created_ts,"
                " next_ts, attempts, last_error, message) VALUES (?, ?, ?, 'alarm', 'duty', ?, ?, ?, ?, ?, ?, '{}')",
                (f"n{i}", f"d{i}", alarm.id, channel, status, now + i, now, i, "HTTP 500" if status == "failed" else ""),
            )
        await core.storage.execute(
            "INSERT INTO notify_channels (key, type, state, failures, last_error, sent, failed)"
            " VALUES ('wecom', 'wecom', 'down', 3, 'HTTP 500', 1, 3)"
        )
        async with site.client("admin") as c:
            log = (await c.get("/api/notifications")).json()
            assert log["total"] == 3 and [r["channel"] for r in log["items"]] == ["email", "wecom", "sms"]
            assert (await c.get("/api/notifications?limit=1&offset=1")).json()["items"][0]["channel"] == "wecom"
            page = await c.get("/notifications")
            assert "HTTP 500" in page.text and "Down" in page.text
            # A test-message button per channel (it posts to the notify plugin's own test endpoint).
            assert '<form class="test-send inline" data-channel="wecom">' in page.text
            assert (await c.get("/-/plugins/extra/hello")).text == "hello from a plugin"
        async with site.client("duty_a") as c:
            log = (await c.get("/api/notifications")).json()
            assert {r["alarm_id"] for r in log["items"]} == {a_alarm.id} and log["total"] == 2
            page = await c.get("/notifications")
            assert "email" not in page.text and "sms" in page.text
            assert (await c.get("/-/plugins/extra/hello")).status_code == 403
        async with site.client("manager_b") as c:
            assert [r["channel"] for r in (await c.get("/api/notifications")).json()["items"]] == ["email"]
        async with site.client() as c:
            assert (await c.get("/-/plugins/extra/hello")).status_code == 403
