"""Each channel's wire format against real receivers (HTTP server, SMTP server, Mosquitto).

Signatures are checked the way the far end checks them, written out here
from the vendors' published descriptions, not by calling the plugin's own
signing helpers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from firebus.plugins.notify.channels_http import SmsChannel, SmsOptions, WebhookChannel, WebhookOptions
from firebus.plugins.notify.channels_other import EmailChannel, EmailOptions, MqttChannel, MqttOptions
from firebus.plugins.notify.channels_robots import (
    DingTalkChannel,
    DingTalkOptions,
    FeishuChannel,
    FeishuOptions,
    WeComChannel,
    WeComOptions,
)
from firebus.plugins.notify.message import DeliveryError, Message

from .conftest import START

pytestmark = pytest.mark.anyio


class Ctx:
    def __init__(self, http: httpx.AsyncClient, mqtt_publish: Any = None) -> None:
        self.logger = logging.getLogger("test.notify")
        self.http = http
        self.mqtt_publish = mqtt_publish

    def time(self) -> float:
        return START


def msg(**kw: Any) -> Message:
    base = dict(id="01NOTIFICATION", kind="new", channel="ch", recipient="*", title="【火警】3号楼2层",
                text="火警（火警）\n位置：3号楼2层\n告警编号：A1", language="zh", alarm_id="A1",
                category="fire", severity=60, ts=START)
    base.update(kw)
    return Message(**base)


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


async def test_webhook_posts_signed_json_with_custom_headers(receiver, http, monkeypatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "k3y")
    opts = msgspec.convert({"url": receiver.url("/hook"), "secret_env": "HOOK_SECRET",
                            "headers": {"Authorization": "Bearer t0ken"}}, WebhookOptions)
    await WebhookChannel("hook", opts, Ctx(http)).send(msg())
    [req] = receiver.on("/hook")
    assert req.method == "POST"
    assert req.headers["Content-Type"].startswith("application/json")
    assert req.headers["Authorization"] == "Bearer t0ken"
    assert req.headers["X-Firebus-Notification-Id"] == "01NOTIFICATION"
    ts = req.headers["X-Firebus-Timestamp"]
    assert ts == str(int(START))
    expected = "sha256=" + hmac.new(b"k3y", ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Firebus-Signature"], expected)
    body = req.json()
    assert body["alarm_id"] == "A1" and body["category"] == "fire" and body["title"] == "【火警】3号楼2层"


async def test_webhook_failure_status_raises(receiver, http) -> None:
    receiver.fail_with(503)
    opts = msgspec.convert({"url": receiver.url("/hook")}, WebhookOptions)
    with pytest.raises(DeliveryError, match="503"):
        await WebhookChannel("hook", opts, Ctx(http)).send(msg())


async def test_webhook_secret_env_missing_is_a_config_error() -> None:
    opts = msgspec.convert({"url": "http://127.0.0.1:9/x", "secret_env": "NOPE_NOT_SET_ANYWHERE"}, WebhookOptions)
    with pytest.raises(ValueError, match="NOPE_NOT_SET_ANYWHERE"):
        WebhookChannel("hook", opts, Ctx(None))  # type: ignore[arg-type]


async def test_dingtalk_signs_query_and_posts_markdown_with_mentions(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"errcode": 0, "errmsg": "ok"})
    secret = "SECabc123"
    opts = msgspec.convert({"url": receiver.url("/robot/send?access_token=TOKEN"), "secret": secret,
                            "msgtype": "markdown"}, DingTalkOptions)
    await DingTalkChannel("ding", opts, Ctx(http)).send(msg(mentions=["13800000001"]))
    [req] = receiver.on("/robot/send")
    assert req.query["access_token"] == ["TOKEN"]
    ts = req.query["timestamp"][0]
    assert ts == str(int(START * 1000))  # milliseconds
    expected = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert req.query["sign"] == [expected]
    body = req.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "【火警】3号楼2层"
    assert "3号楼2层" in body["markdown"]["text"] and "@13800000001" in body["markdown"]["text"]
    assert body["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}


async def test_dingtalk_text_and_error_code(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"errcode": 310000, "errmsg": "sign not match"})
    opts = msgspec.convert({"url": receiver.url("/robot/send?access_token=T"), "msgtype": "text"}, DingTalkOptions)
    with pytest.raises(DeliveryError, match="310000"):
        await DingTalkChannel("ding", opts, Ctx(http)).send(msg())
    body = receiver.on("/robot/send")[0].json()
    assert body["msgtype"] == "text" and body["text"]["content"].startswith("【火警】")
    assert "sign" not in receiver.on("/robot/send")[0].query  # no secret: unsigned


async def test_wecom_text_with_mentioned_mobiles_and_markdown(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"errcode": 0, "errmsg": "ok"})
    text = msgspec.convert({"url": receiver.url("/cgi-bin/webhook/send?key=KEY")}, WeComOptions)
    await WeComChannel("wecom", text, Ctx(http)).send(msg(mentions=["13800000001", "13800000002"]))
    md = msgspec.convert({"url": receiver.url("/cgi-bin/webhook/send?key=KEY"), "msgtype": "markdown"}, WeComOptions)
    await WeComChannel("wecom", md, Ctx(http)).send(msg())
    first, second = receiver.on("/cgi-bin/webhook/send")
    assert first.query["key"] == ["KEY"]
    assert first.json() == {
        "msgtype": "text",
        "text": {"content": "【火警】3号楼2层\n火警（火警）\n位置：3号楼2层\n告警编号：A1",
                 "mentioned_mobile_list": ["13800000001", "13800000002"]},
    }
    assert second.json()["msgtype"] == "markdown"
    assert second.json()["markdown"]["content"].startswith("### 【火警】3号楼2层\n")


async def test_wecom_error_code_is_a_failure(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"errcode": 45009, "errmsg": "api freq out of limit"})
    opts = msgspec.convert({"url": receiver.url("/cgi-bin/webhook/send?key=K")}, WeComOptions)
    with pytest.raises(DeliveryError, match="45009"):
        await WeComChannel("wecom", opts, Ctx(http)).send(msg())


async def test_feishu_signs_body_and_posts_rich_text(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"code": 0, "msg": "success", "data": {}})
    secret = "fsSecret"
    opts = msgspec.convert({"url": receiver.url("/open-apis/bot/v2/hook/abc"), "secret": secret}, FeishuOptions)
    await FeishuChannel("feishu", opts, Ctx(http)).send(msg(mentions=["ou_123"]))
    body = receiver.on("/open-apis/bot/v2/hook/abc")[0].json()
    assert body["timestamp"] == str(int(START))  # seconds, as a string
    string_to_sign = f"{body['timestamp']}\n{secret}"
    expected = base64.b64encode(hmac.new(string_to_sign.encode(), b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == "【火警】3号楼2层"
    assert post["content"][0] == [{"tag": "text", "text": "火警（火警）"}]
    assert post["content"][-1] == [{"tag": "at", "user_id": "ou_123"}]


async def test_feishu_text_and_error_code(receiver, http) -> None:
    receiver.respond = lambda req: (200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
    opts = msgspec.convert({"url": receiver.url("/hook/x"), "secret": "s", "msg_type": "text"}, FeishuOptions)
    with pytest.raises(DeliveryError, match="19021"):
        await FeishuChannel("feishu", opts, Ctx(http)).send(msg(mentions=["ou_9"], language="en"))
    body = receiver.on("/hook/x")[0].json()
    assert body["msg_type"] == "text"
    assert body["content"]["text"].endswith('<at user_id="ou_9"></at>')


async def test_sms_gateway_templates_and_success_check(receiver, http, monkeypatch) -> None:
    monkeypatch.setenv("SMS_KEY", "apikey-1")
    answers = iter([(200, {"code": "OK"}), (200, {"code": "isv.BUSINESS_LIMIT_CONTROL"})])
    receiver.respond = lambda req: next(answers)
    opts = msgspec.convert({
        "url": receiver.url("/sms/send?to={{ phone|urlencode }}"),
        "method": "POST",
        "body": '{"phone": {{ phone|tojson }}, "content": {{ text|tojson }}, "ref": {{ id|tojson }}}',
        "headers": {"X-Api-Key": "{{ secret }}"},
        "secret_env": "SMS_KEY",
        "success_regex": '"code": "OK"',
    }, SmsOptions)
    channel = SmsChannel("sms", opts, Ctx(http))
    await channel.send(msg(recipient="张三", address="+8613800000001"))
    with pytest.raises(DeliveryError, match="BUSINESS_LIMIT_CONTROL"):
        await channel.send(msg(recipient="张三", address="+8613800000001"))
    req = receiver.on("/sms/send")[0]
    assert req.query["to"] == ["+8613800000001"]
    assert req.headers["X-Api-Key"] == "apikey-1"
    body = req.json()
    assert body == {"phone": "+8613800000001", "content": "【火警】3号楼2层\n火警（火警）\n位置：3号楼2层\n告警编号：A1",
                    "ref": "01NOTIFICATION"}


async def test_sms_without_phone_is_permanent(http) -> None:
    opts = msgspec.convert({"url": "http://127.0.0.1:9/sms"}, SmsOptions)
    with pytest.raises(DeliveryError) as info:
        await SmsChannel("sms", opts, Ctx(http)).send(msg(recipient="nobody", address=""))
    assert info.value.permanent


async def test_email_starttls_auth_utf8(smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_PASS", "s3cret")
    opts = msgspec.convert({"host": "127.0.0.1", "port": smtp_server.port, "security": "starttls",
                            "username": "duty", "password_env": "SMTP_PASS", "sender": "alarm@site.example",
                            "verify_tls": False}, EmailOptions)
    await EmailChannel("mail", opts, Ctx(None)).send(msg(recipient="张三", address="zhang@site.example"))  # type: ignore[arg-type]
    assert smtp_server.logins == [("duty", "s3cret")]
    [mail] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == ["zhang@site.example"]
    assert mail["Subject"] == "【火警】3号楼2层"  # RFC 2047-encoded on the wire, decoded here
    assert mail["Message-ID"] == "<01NOTIFICATION@firebus.notify>"
    assert mail["X-Firebus-Alarm-Id"] == "A1"
    assert "位置：3号楼2层" in mail.get_content()


@pytest.mark.parametrize("smtp_server", ["ssl"], indirect=True)
async def test_email_implicit_tls(smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_PASS", "s3cret")
    opts = msgspec.convert({"host": "127.0.0.1", "port": smtp_server.port, "security": "ssl", "username": "duty",
                            "password_env": "SMTP_PASS", "sender": "alarm@site.example", "verify_tls": False},
                           EmailOptions)
    await EmailChannel("mail", opts, Ctx(None)).send(msg(address="wang@site.example", language="en"))  # type: ignore[arg-type]
    assert smtp_server.logins == [("duty", "s3cret")]
    assert smtp_server.envelopes[0].rcpt_tos == ["wang@site.example"]


async def test_email_wrong_password_and_refusal_are_failures(smtp_server, monkeypatch) -> None:
    monkeypatch.setenv("SMTP_PASS", "wrong")
    opts = msgspec.convert({"host": "127.0.0.1", "port": smtp_server.port, "username": "duty",
                            "password_env": "SMTP_PASS", "sender": "a@b.c", "verify_tls": False}, EmailOptions)
    with pytest.raises(DeliveryError, match="SMTP"):
        await EmailChannel("mail", opts, Ctx(None)).send(msg(address="x@y.z"))  # type: ignore[arg-type]
    plain = msgspec.convert({"host": "127.0.0.1", "port": smtp_server.port, "security": "none",
                             "sender": "a@b.c"}, EmailOptions)
    smtp_server.refuse = True
    with pytest.raises(DeliveryError, match="451"):
        await EmailChannel("mail", plain, Ctx(None)).send(msg(address="x@y.z"))  # type: ignore[arg-type]
    assert smtp_server.messages == []


async def test_mqtt_publishes_through_the_cores_transport(tmp_path) -> None:
    """The channel gets only a publish function; here it is the core's real MQTT transport."""
    import asyncio

    import paho.mqtt.client as mqtt

    from firebus.core.transports.mqtt import MqttTransport
    from firebus.sdk.testing.mosquitto import Mosquitto


    class TransportCtx:  # what the core gives a transport; only logging and link state matter here
        logger = logging.getLogger("test.notify.mqtt")

        def link_changed(self, up: bool, reason: str = "") -> None:
            pass

        async def run_in_background(self, func: Any, *args: Any, name: str = "") -> None:
            asyncio.get_running_loop().create_task(func(*args))

    with Mosquitto(tmp_path / "broker") as broker:
        got: list[tuple[str, bytes]] = []
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="notify-test-sub")
        sub.on_connect = lambda c, u, f, rc, p: (c.subscribe("site/notify/#", qos=1),)
        sub.on_subscribe = lambda c, u, mid, rc, p: loop.call_soon_threadsafe(ready.set)
        sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        transport = MqttTransport("site-mqtt", MqttTransport.Options(host="127.0.0.1", port=broker.port,
                                                                     client_id="notify-test"), TransportCtx())
        try:
            await transport.start()
            await transport.wait_connected(20)
            with anyio.fail_after(20):
                await ready.wait()

            async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
                await transport.publish(topic, payload, qos=qos, retain=retain)

            opts = msgspec.convert({"topic": "site/notify/{category}/{alarm_id}", "qos": 1}, MqttOptions)
            await MqttChannel("mqtt", opts, Ctx(None, publish)).send(msg())  # type: ignore[arg-type]
            with anyio.fail_after(20):
                while not got:
                    await anyio.sleep(0.02)
        finally:
            await transport.stop()
            sub.loop_stop()
            sub.disconnect()
    topic, payload = got[0]
    assert topic == "site/notify/fire/A1"
    body = json.loads(payload)
    assert body["id"] == "01NOTIFICATION" and body["title"] == "【火警】3号楼2层"


async def test_mqtt_without_publish_function_fails_cleanly() -> None:
    opts = msgspec.convert({}, MqttOptions)
    with pytest.raises(DeliveryError, match="no MQTT publish"):
        await MqttChannel("mqtt", opts, Ctx(None)).send(msg())  # type: ignore[arg-type]
