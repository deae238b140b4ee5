"""Group robots' own request limits (WeCom and DingTalk: 20 a minute): paced, never digested or lost.

A real HTTP receiver stands in for the robot; time is a ManualClock.  A row that finds the
robot's minute used up waits ``pending`` (fire first when room comes back); going over would
get errcode 45009 from WeCom, a 10-minute block from DingTalk, and a backed-off channel.
"""

from __future__ import annotations

from typing import Any

import pytest

from firebus.plugins.notify.policy import SendPacer
from firebus.sdk import AlarmCategory, Severity

from .conftest import alarm, wait_for
from .test_media import equip, jpeg, still_for
from .test_wecom_image import HOOK, answer, bodies

pytestmark = pytest.mark.anyio


def test_a_pacer_makes_room_when_the_oldest_send_leaves_each_window() -> None:
    pacer = SendPacer([(5, 1.0), (100, 60.0)])  # Feishu's robot: 5 a second, 100 a minute
    for _ in range(5):
        assert pacer.delay(10.0) == 0
        pacer.take(10.0)
    assert pacer.delay(10.0) == pytest.approx(1.0) and pacer.room(10.0) == 0
    assert pacer.delay(10.5) == pytest.approx(0.5)
    now = 11.0
    for _ in range(95):  # 5 a second until the minute holds 100
        while pacer.delay(now) > 0:
            now += pacer.delay(now)
        pacer.take(now)
    assert pacer.room(now) == 0
    assert pacer.delay(now) == pytest.approx(10.0 + 60.0 - now)  # the first of the 100 leaves the minute
    assert SendPacer([]).delay(0.0) == 0 and SendPacer([]).room(0.0) > 1000


def robot_site(receiver: Any, channel_type: str = "wecom", **channel: Any) -> dict[str, Any]:
    return {
        "timezone": "Asia/Shanghai",
        "channels": [{"key": "robot", "type": channel_type,
                      "options": {"url": receiver.url(f"{HOOK}?key=KEY")}, **channel}],
        "people": [{"name": "张三", "roles": ["duty_officer"], "contacts": {"robot": "13800000001"}}],
        "routes": [{"name": "all", "channels": ["robot"], "escalation": {"steps": [{"roles": ["duty_officer"]}]}}],
        "rate_limit": {"burst": 1000, "window_s": 60},  # the per-recipient digest is not under test here
    }


async def statuses(h: Any) -> dict[str, str]:
    return {r["alarm_id"]: r["status"] for r in await h.rows()}


async def test_a_robot_gets_20_messages_a_minute_and_the_rest_wait_with_fire_first(
        make_harness, receiver) -> None:
    receiver.respond = answer()
    h = make_harness(robot_site(receiver))
    async with h.running():
        for i in range(20):
            h.publish(alarm(f"F{i:02}", category=AlarmCategory.FAULT, severity=Severity.FAULT))
        await wait_for(lambda: len(bodies(receiver)) == 20, what="the first 20 messages sent")
        for i in range(20, 45):
            h.publish(alarm(f"F{i:02}", category=AlarmCategory.FAULT, severity=Severity.FAULT))
        for i in range(3):
            h.publish(alarm(f"X{i}"))  # fire alarms while the robot's minute is used up
        await wait_for(lambda: _count(h, "pending", 28), what="28 rows waiting for room")
        await wait_for(lambda: _count(h, "sent", 20), what="the first 20 rows sent")
        await h.settle()
        assert len(bodies(receiver)) == 20  # nothing more went within the minute
        await h.clock.advance(59)
        assert len(bodies(receiver)) == 20
        await h.clock.advance(1)  # the first send leaves the minute
        await wait_for(lambda: len(bodies(receiver)) == 40, what="the next 20")
        await h.settle()
        assert len(bodies(receiver)) == 40
        state = await statuses(h)
        assert [state[f"X{i}"] for i in range(3)] == ["sent"] * 3  # fire first when room came back
        assert sorted(state.values()).count("pending") == 8
        await h.clock.advance(60)
        await wait_for(lambda: _count(h, "sent", 48), what="everything sent")
        rows = await h.rows()
        assert {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}  # paced, never refused or retried
        channel = h.service.channels.get("robot").as_dict()
        assert channel["send_limit"] == [{"count": 20, "window_s": 60.0}] and channel["paced"] >= 2
        assert channel["state"] == "up"


async def _count(h: Any, status: str, n: int) -> bool:
    return sum(1 for r in await h.rows() if r["status"] == status) == n


async def test_send_limit_in_the_site_file_replaces_the_robots_own(make_harness, receiver) -> None:
    receiver.respond = answer()
    h = make_harness(robot_site(receiver, send_limit=[{"count": 3, "window_s": 10}]))
    async with h.running():
        for i in range(5):
            h.publish(alarm(f"A{i}"))
        await wait_for(lambda: _count(h, "sent", 3), what="3 rows sent")
        await wait_for(lambda: _count(h, "pending", 2), what="2 rows waiting")
        await h.settle()
        assert len(bodies(receiver)) == 3
        await h.clock.advance(10)
        await wait_for(lambda: _count(h, "sent", 5), what="the other 2 sent")
    # send_limit: [] turns the type's own limit off (DingTalk's 20 a minute here)
    h2 = make_harness(robot_site(receiver, channel_type="dingtalk", send_limit=[]))
    receiver.requests.clear()
    async with h2.running():
        for i in range(25):
            h2.publish(alarm(f"D{i:02}"))
        await wait_for(lambda: len(receiver.on(HOOK)) == 25, what="all 25 sent at once")
        assert h2.service.channels.get("robot").as_dict()["send_limit"] is None


async def test_the_wecom_image_uses_the_robots_minute_only_while_half_of_it_is_free(
        make_harness, receiver, tmp_path) -> None:
    receiver.respond = answer()
    h = make_harness({**robot_site(receiver), "links": {"base_url": "https://firebus.example.cn"}})
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        await still_for(core, "P1", jpeg())
        h.publish(alarm("P1", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: len(bodies(receiver)) == 2, what="text and image")
        for i in range(8):
            h.publish(alarm(f"B{i}"))
        await wait_for(lambda: len(bodies(receiver)) == 10, what="8 more texts")
        await still_for(core, "P2", jpeg())
        h.publish(alarm("P2", point_id="cam-flame", device_id="cam-1"))  # 11 of 20 used by its text
        await wait_for(lambda: _count(h, "sent", 10), what="P2's text sent")
        await h.settle()
        kinds = [b["msgtype"] for b in bodies(receiver)]
        assert kinds.count("image") == 1 and len(kinds) == 11  # P2's picture left out, by link only
        assert h.service.media.metrics()["skipped"] == {"rate_limited": 1}
