"""WeCom / DingTalk / Feishu app messages against a real local HTTP receiver that implements
each vendor's token and send endpoints (paths, parameters and answers as the vendors document)."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import msgspec
import pytest

from firebus.plugins.notify.channels_apps import (
    DingTalkAppChannel,
    DingTalkAppOptions,
    FeishuAppChannel,
    FeishuAppOptions,
    WeComAppChannel,
    WeComAppOptions,
)
from firebus.plugins.notify.message import DeliveryError, Message

from .conftest import START, Request, alarm, wait_for

pytestmark = pytest.mark.anyio

LINK = "https://fire.example.org/-/plugins/app/a/TOKEN"


class Ctx:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.logger = logging.getLogger("test.notify")
        self.http = http
        self.mqtt_publish = None
        self.now = START

    def time(self) -> float:
        return self.now


def msg(**kw: Any) -> Message:
    base = dict(id="01NOTIFICATION", kind="new", channel="app", recipient="王值班", address="wangxz",
                title="【火警】2层厨房", text="火警（火警）\n位置：2层厨房\n告警编号：A1", language="zh",
                alarm_id="A1", category="fire", severity=60, ts=START, url=LINK)
    base.update(kw)
    return Message(**base)


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


class Vendor:
    """Token endpoint plus send endpoint; ``send_codes`` answers the next sends with these codes."""

    def __init__(self, token_path: str, code_field: str, token_field: str, expires_field: str) -> None:
        self.token_path, self.code_field = token_path, code_field
        self.token_field, self.expires_field = token_field, expires_field
        self.issued = 0
        self.send_codes: list[tuple[int, int]] = []  # (http status, vendor code)

    def respond(self, req: Request) -> tuple[int, Any]:
        if req.path.endswith(self.token_path):
            self.issued += 1
            return 200, {self.code_field: 0, self.token_field: f"tok{self.issued}", self.expires_field: 7200}
        if self.send_codes:
            status, code = self.send_codes.pop(0)
            return status, {self.code_field: code, "errmsg": "vendor says no", "msg": "vendor says no"}
        return 200, {self.code_field: 0, "errmsg": "ok", "msg": "success", "task_id": 1}


async def test_wecom_app_sends_a_text_card_to_the_person_and_caches_its_token(receiver, http) -> None:
    vendor = Vendor("/cgi-bin/gettoken", "errcode", "access_token", "expires_in")
    receiver.respond = vendor.respond
    opts = msgspec.convert({"corpid": "ww1", "agentid": 1000002, "corpsecret": "s3", "base_url": receiver.url("")},
                           WeComAppOptions)
    ctx = Ctx(http)
    channel = WeComAppChannel("app", opts, ctx)
    await channel.send(msg())
    await channel.send(msg(id="02"))
    [token_req] = receiver.on("/cgi-bin/gettoken")
    assert token_req.query == {"corpid": ["ww1"], "corpsecret": ["s3"]}
    sends = receiver.on("/cgi-bin/message/send")
    assert [r.query["access_token"] for r in sends] == [["tok1"], ["tok1"]]  # cached
    body = sends[0].json()
    assert body["touser"] == "wangxz" and body["agentid"] == 1000002 and body["msgtype"] == "textcard"
    assert body["textcard"]["url"] == LINK and body["textcard"]["title"] == "【火警】2层厨房"
    assert "告警编号：A1" in body["textcard"]["description"]
    without = channel.payload(msg(url=""))
    assert without["msgtype"] == "text" and without["text"]["content"].startswith("【火警】")

    ctx.now += 7200 - 200  # within the margin before expiry: a new token first
    await channel.send(msg(id="03"))
    assert vendor.issued == 2 and receiver.on("/cgi-bin/message/send")[-1].query["access_token"] == ["tok2"]

    vendor.send_codes = [(200, 42001)]  # expired early (another process rotated it): fetch and retry once
    await channel.send(msg(id="04"))
    assert vendor.issued == 3 and receiver.on("/cgi-bin/message/send")[-1].query["access_token"] == ["tok3"]

    vendor.send_codes = [(200, 81013)]
    with pytest.raises(DeliveryError) as permanent:
        await channel.send(msg(id="05"))
    assert permanent.value.permanent and "81013" in str(permanent.value)
    vendor.send_codes = [(200, 45009)]  # rate limit: try again later
    with pytest.raises(DeliveryError) as later:
        await channel.send(msg(id="06"))
    assert not later.value.permanent
    with pytest.raises(DeliveryError, match="no user id") as no_address:
        await channel.send(msg(address=""))
    assert no_address.value.permanent


async def test_dingtalk_work_notice_goes_to_the_user_with_a_button_to_the_alarm(receiver, http) -> None:
    vendor = Vendor("/gettoken", "errcode", "access_token", "expires_in")
    receiver.respond = vendor.respond
    opts = msgspec.convert({"appkey": "ding1", "appsecret": "s3", "agent_id": 42, "base_url": receiver.url("")},
                           DingTalkAppOptions)
    channel = DingTalkAppChannel("app", opts, Ctx(http))
    await channel.send(msg())
    [token_req] = receiver.on("/gettoken")
    assert token_req.query == {"appkey": ["ding1"], "appsecret": ["s3"]}
    [send] = receiver.on("/topapi/message/corpconversation/asyncsend_v2")
    assert send.query["access_token"] == ["tok1"]
    body = send.json()
    assert body["agent_id"] == 42 and body["userid_list"] == "wangxz"
    card = body["msg"]["action_card"]
    assert body["msg"]["msgtype"] == "action_card" and card["single_url"] == LINK
    assert card["markdown"].startswith("### 【火警】") and "告警编号：A1" in card["markdown"]
    vendor.send_codes = [(200, 40014)]
    await channel.send(msg(id="02"))
    assert vendor.issued == 2
    vendor.send_codes = [(200, 33012)]
    with pytest.raises(DeliveryError) as exc:
        await channel.send(msg(id="03"))
    assert exc.value.permanent


async def test_feishu_app_message_uses_tenant_token_user_id_and_outbox_id_as_uuid(receiver, http) -> None:
    vendor = Vendor("/open-apis/auth/v3/tenant_access_token/internal", "code", "tenant_access_token", "expire")
    receiver.respond = vendor.respond
    opts = msgspec.convert({"app_id": "cli_1", "app_secret": "s3", "base_url": receiver.url("")}, FeishuAppOptions)
    channel = FeishuAppChannel("app", opts, Ctx(http))
    await channel.send(msg())
    [token_req] = receiver.on("/open-apis/auth/v3/tenant_access_token/internal")
    assert token_req.method == "POST" and token_req.json() == {"app_id": "cli_1", "app_secret": "s3"}
    [send] = receiver.on("/open-apis/im/v1/messages")
    assert send.query == {"receive_id_type": ["user_id"]} and send.headers["Authorization"] == "Bearer tok1"
    body = send.json()
    assert body["receive_id"] == "wangxz" and body["msg_type"] == "post" and body["uuid"] == "01NOTIFICATION"
    post = json.loads(body["content"])["zh_cn"]
    assert post["title"] == "【火警】2层厨房"
    assert [{"tag": "a", "text": "查看告警", "href": LINK}] in post["content"]
    vendor.send_codes = [(400, 99991663)]  # token invalid, said with HTTP 400
    await channel.send(msg(id="02"))
    assert vendor.issued == 2
    vendor.send_codes = [(400, 230013)]  # user outside the app's availability: never
    with pytest.raises(DeliveryError) as exc:
        await channel.send(msg(id="03"))
    assert exc.value.permanent and "availability" in str(exc.value)
    vendor.send_codes = [(429, 99991400)]  # frequency limit: later
    with pytest.raises(DeliveryError) as later:
        await channel.send(msg(id="04"))
    assert not later.value.permanent


def test_a_missing_secret_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="corpsecret_env"):
        WeComAppChannel("app", msgspec.convert({"corpid": "w", "agentid": 1}, WeComAppOptions), None)  # type: ignore[arg-type]


async def test_wecom_limit_of_30_a_minute_per_member_holds_the_rest_for_a_digest(make_harness, receiver, clock) -> None:
    from firebus.sdk import AlarmCategory, Severity

    vendor = Vendor("/cgi-bin/gettoken", "errcode", "access_token", "expires_in")
    receiver.respond = vendor.respond
    section = {
        "channels": [{"key": "wx", "type": "wecom_app", "options": {
            "corpid": "ww1", "agentid": 7, "corpsecret": "s", "base_url": receiver.url("")}}],
        "people": [{"name": "duty", "roles": ["duty_officer"], "contacts": {"wx": "duty01"}}],
        "routes": [{"name": "all", "channels": ["wx"], "min_severity": "info",
                    "escalation": {"steps": [{"roles": ["duty_officer"]}]}}],
        "rate_limit": {"burst": 1000, "window_s": 60},  # the site's own limit would allow all
    }
    h = make_harness(section)
    async with h.running():
        for i in range(35):
            h.publish(alarm(f"E{i}", category=AlarmCategory.ELECTRICAL_PRE_ALARM, severity=Severity.PRE_ALARM))
        await wait_for(lambda: len(receiver.ok("/cgi-bin/message/send")) == 30, what="30 sends")
        await h.settle()
        assert len(await h.rows("status = 'held'")) == 5
        await clock.advance(60)
        await wait_for(lambda: len(receiver.ok("/cgi-bin/message/send")) == 31, what="the digest")
        digest = receiver.ok("/cgi-bin/message/send")[-1].json()
        assert "5" in (digest.get("text") or digest.get("textcard"))["content" if "text" in digest else "title"]
