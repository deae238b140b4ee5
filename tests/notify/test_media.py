"""The alarm's still in its notifications (issue 17): e-mail inline and attached, the media list in
JSON, the signed picture link in robot and app messages, the short wait for a video alarm's still.

The service runs on a real bus and storage with the core's real media store (files on disk), a
real SMTP server and a real HTTP receiver; time is a ManualClock, so "sent without waiting" means
sent before the clock moved at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import anyio
import cv2
import httpx
import msgspec
import numpy as np
import pytest
from starlette.applications import Starlette

from firebus.core.media import MediaStore
from firebus.plugins import notify
from firebus.plugins.notify.channels_apps import (
    DingTalkAppChannel,
    DingTalkAppOptions,
    FeishuAppChannel,
    FeishuAppOptions,
    WeComAppChannel,
    WeComAppOptions,
)
from firebus.plugins.notify.channels_robots import WeComChannel, WeComOptions
from firebus.plugins.notify.config import NotifyConfigError, load_config
from firebus.plugins.notify.message import Message
from firebus.plugins.notify.ntfy import NtfyChannel, NtfyOptions
from firebus.plugins.notify.webpush import WebPushChannel, WebPushOptions
from firebus.sdk import MediaKind, PointInfo

from .conftest import START, alarm, wait_for

pytestmark = pytest.mark.anyio

BASE = "https://fire.example.org"
MEDIA_PATH = "/-/plugins/notify/media/"


def jpeg(width: int = 64, height: int = 48) -> bytes:
    """A real JPEG (a red square on grey), as a camera's still would be."""
    img = np.full((height, width, 3), 128, np.uint8)
    img[8:24, 8:24] = (0, 0, 255)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class SiteRegistry:
    """The site's points as the core's registry answers for them (``RegistryAPI``)."""

    POINTS = [
        PointInfo(point_id="cam-flame", device_id="cam-1", key="flame", point_class="flame",
                  driver="video.camera", location_id="lobby", location_name="大堂"),
        PointInfo(point_id="smoke-1", device_id="det-1", key="smoke", point_class="smoke",
                  driver="smoke.nb", location_id="lobby", location_name="大堂"),
        PointInfo(point_id="smoke-9", device_id="det-9", key="smoke", point_class="smoke",
                  driver="smoke.nb", location_id="store", location_name="库房"),
    ]

    def point_info(self, point_id: str) -> PointInfo | None:
        return next((p for p in self.POINTS if p.point_id == point_id), None)

    def points_of_device(self, device_id: str) -> list[PointInfo]:
        return [p for p in self.POINTS if p.device_id == device_id]

    def points_at_location(self, location_id: str) -> list[PointInfo]:
        return [p for p in self.POINTS if p.location_id == location_id]

    def place(self, place_id: str) -> Any:
        return None

    def place_by_key(self, key: str) -> Any:
        return None


def equip(folder: Path) -> Any:
    """Give the test core what a real one has: the media store on disk, secrets, a registry."""

    def prepare(core: Any) -> None:
        core.media = MediaStore(core.storage, folder, now=core.clock.time)
        core.registry = SiteRegistry()

        async def secret(purpose: str) -> bytes:
            return hmac.new(b"master-key-of-this-test", purpose.encode(), hashlib.sha256).digest()

        core.secret = secret

    return prepare


def robots(req: Any) -> tuple[int, Any]:
    return 200, ({"code": 0, "msg": "success"} if req.path.startswith("/feishu") else {"errcode": 0, "errmsg": "ok"})


def media_site(receiver: Any, smtp_port: int, **media: Any) -> dict[str, Any]:
    return {
        "timezone": "Asia/Shanghai",
        "links": {"base_url": BASE, "ttl": "12h"},
        "media": media,
        "channels": [
            {"key": "mail", "type": "email", "options": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                                                         "sender": "alarm@site.example"}},
            {"key": "hook", "type": "webhook", "options": {"url": receiver.url("/hook")}},
            {"key": "ding", "type": "dingtalk", "options": {"url": receiver.url("/ding")}},
            {"key": "wecom", "type": "wecom", "options": {"url": receiver.url("/wecom")}},
            {"key": "feishu", "type": "feishu", "options": {"url": receiver.url("/feishu")}},
            {"key": "push", "type": "ntfy"},
        ],
        "people": [
            {"name": "张三", "user": "zhang", "roles": ["duty_officer"],
             "contacts": {"mail": "zhang@site.example", "ding": "13800000001", "wecom": "13800000001",
                          "feishu": "ou_zhang", "push": "fire-zhang"}},
        ],
        "routes": [{"name": "fire", "channels": ["mail", "hook", "ding", "wecom", "feishu", "push"],
                    "escalation": {"steps": [{"roles": ["duty_officer"]}]}}],
        "outbox": {"base_backoff_s": 10, "max_backoff_s": 60},
    }


def hook_site(receiver: Any, **media: Any) -> dict[str, Any]:
    return {
        "links": {"base_url": BASE},
        "media": media,
        "channels": [{"key": "hook", "type": "webhook", "options": {"url": receiver.url("/hook")}}],
        "people": [{"name": "duty", "roles": ["duty_officer"], "contacts": {"hook": "x"}}],
        "routes": [{"name": "all", "channels": ["hook"], "escalation": {"steps": [{"roles": ["duty_officer"]}]}}],
    }


async def still_for(core: Any, alarm_id: str, data: bytes) -> str:
    ref = await core.media.put(data, "image/jpeg", kind=MediaKind.STILL, device_id="cam-1", ts=START - 1)
    await core.media.attach(alarm_id, ref.id)
    return ref.id


def hooked(receiver: Any, alarm_id: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.ok("/hook") if r.json()["alarm_id"] == alarm_id]


async def fetch(core: Any, url: str) -> httpx.Response:
    """GET a signed link through the plugin's routes (as the core mounts them under /-/plugins/notify)."""
    assert url.startswith(BASE + MEDIA_PATH), url
    app = Starlette(routes=notify.firebus_register_routes(core))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://site") as client:
        return await client.get("/media/" + url[len(BASE + MEDIA_PATH):])


async def test_a_camera_alarm_carries_its_still_on_every_channel(make_harness, receiver, smtp_server,
                                                                  tmp_path) -> None:
    receiver.respond = robots
    h = make_harness(media_site(receiver, smtp_server.port))
    h.prepare = equip(tmp_path / "media")
    picture = jpeg()
    digest = hashlib.sha256(picture).hexdigest()
    async with h.running() as core:
        # As the engine does: the still goes with the alarm-raising reading, attached in the NEW.
        mid = await still_for(core, "V1", picture)
        h.publish(alarm("V1", point_id="cam-flame", device_id="cam-1", location_id="lobby"))

        async def all_sent() -> bool:
            return {r["status"] for r in await h.rows()} == {"sent"} and len(await h.rows()) == 6

        await wait_for(all_sent, what="all six channels")  # the SMTP send runs in a thread
        assert core.clock.time() == START  # no waiting: the still was there

        # Webhook JSON: the media list, with a signed link that serves exactly those bytes.
        [body] = hooked(receiver, "V1")
        [item] = body["data"]["media"]
        assert {k: item[k] for k in ("id", "kind", "content_type", "ts", "bytes")} == {
            "id": mid, "kind": "still", "content_type": "image/jpeg", "ts": START - 1, "bytes": len(picture)}
        url = item["url"]
        assert url.startswith(BASE + MEDIA_PATH) and url.endswith(f"/still-{mid}.jpg")
        served = await fetch(core, url)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(served.content).hexdigest() == digest

        # E-mail: text + (HTML with the still inline by cid) as alternatives, and the still attached.
        [mail] = smtp_server.messages
        assert mail.get_content_type() == "multipart/mixed"
        alternative, attachment = list(mail.iter_parts())
        assert alternative.get_content_type() == "multipart/alternative"
        plain, related = list(alternative.iter_parts())
        assert plain.get_content_type() == "text/plain"
        assert f"现场图片见附件：still-{mid}.jpg" in plain.get_content()
        assert related.get_content_type() == "multipart/related"
        html_part, inline = list(related.iter_parts())
        assert html_part.get_content_type() == "text/html"
        cid = inline["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html_part.get_content() and "位置：" in html_part.get_content()
        assert inline.get_content_disposition() == "inline"
        assert attachment.get_content_disposition() == "attachment"
        assert attachment.get_filename() == f"still-{mid}.jpg"
        for part in (inline, attachment):
            assert part.get_content_type() == "image/jpeg"
            assert hashlib.sha256(part.get_content()).hexdigest() == digest

        # DingTalk markdown shows the picture; WeCom text and Feishu post link it.
        [ding] = [r.json() for r in receiver.ok("/ding")]
        assert f"![现场图片]({url})" in ding["markdown"]["text"]
        assert ding["markdown"]["text"].endswith(" @13800000001")  # the mention stays last
        wecom, wecom_image = [r.json() for r in receiver.ok("/wecom")]
        assert wecom["msgtype"] == "text" and f"\n现场图片：{url}" in wecom["text"]["content"]
        assert wecom["text"]["mentioned_mobile_list"] == ["13800000001"]
        # … and WeCom shows it in an image message after the text (test_wecom_image.py).
        assert wecom_image["msgtype"] == "image" and wecom_image["image"]["md5"] == hashlib.md5(picture).hexdigest()
        [feishu] = [r.json() for r in receiver.ok("/feishu")]
        paragraphs = feishu["content"]["post"]["zh_cn"]["content"]
        assert [{"tag": "a", "text": "现场图片", "href": url}] in paragraphs

        # ntfy: the still as the message's attachment (the app downloads it by its link).
        [row] = await core.storage.fetchall("SELECT event FROM notify_ntfy")
        assert json.loads(row[0])["attachment"] == {"name": f"still-{mid}.jpg", "url": url, "type": "image/jpeg",
                                                     "size": len(picture)}

        channels = (await httpx.AsyncClient(transport=httpx.ASGITransport(
            app=Starlette(routes=notify.firebus_register_routes(core))), base_url="http://site").get("/channels"))
        # attached: the e-mail's still and the WeCom image
        assert channels.json()["media"] == {"attached": 2, "held": 0, "released": 0, "skipped": {}}


async def test_only_a_video_alarm_waits_and_only_until_its_still_or_the_grace(make_harness, receiver,
                                                                              tmp_path) -> None:
    h = make_harness(hook_site(receiver, grace="2s"))
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        # A smoke detector's fire alarm (in a room with a camera): out at once, nothing waited for.
        h.publish(alarm("N1", point_id="smoke-1", device_id="det-1", location_id="lobby"))
        await wait_for(lambda: hooked(receiver, "N1"), what="N1")
        assert core.clock.time() == START and "media" not in hooked(receiver, "N1")[0]["data"]

        # A camera's alarm whose still is not attached yet: held …
        h.publish(alarm("V2", point_id="cam-flame", device_id="cam-1", location_id="lobby"))
        # … and the place's confirmed fire (no point, a camera there) too; one elsewhere is not.
        h.publish(alarm("C1", point_id=None, device_id=None, location_id="lobby"))
        h.publish(alarm("C9", point_id=None, device_id=None, location_id="store"))
        await wait_for(lambda: hooked(receiver, "C9"), what="C9, a place without a camera")
        await h.settle()
        for held in ("V2", "C1"):
            [row] = await h.rows("alarm_id = ?", (held,))
            assert (row["status"], row["attempts"], row["next_ts"]) == ("pending", 0, START + 2.0)
        assert hooked(receiver, "V2") == [] and hooked(receiver, "C1") == []

        # The camera attaches the still 0.25 s later: V2 goes at the next look, with it.
        await core.clock.advance(0.25)
        mid = await still_for(core, "V2", jpeg())
        await core.clock.advance(0.1)
        [sent] = await wait_for(lambda: hooked(receiver, "V2"), what="V2 once its still came")
        assert [m["id"] for m in sent["data"]["media"]] == [mid]
        assert core.clock.time() < START + 0.5

        # C1's still never comes: it goes exactly at the end of the grace, without one.
        await h.settle()
        assert hooked(receiver, "C1") == []
        await core.clock.advance(START + 2.0 - core.clock.time())
        [c1] = await wait_for(lambda: hooked(receiver, "C1"), what="C1 at the end of the grace")
        assert "media" not in c1["data"] and core.clock.time() == START + 2.0
        assert h.service.media.metrics() == {"attached": 0, "held": 2, "released": 1, "skipped": {}}

        # A still attached after the alarm was told is not sent on its own (no second fire message).
        async def c1_sent() -> bool:
            return [(r["status"], r["attempts"]) for r in await h.rows("alarm_id = 'C1'")] == [("sent", 1)]

        await wait_for(c1_sent, what="C1 recorded as sent")
        await still_for(core, "C1", jpeg())
        await core.clock.advance(60)
        await h.settle()
        assert await c1_sent() and len(hooked(receiver, "C1")) == 1


async def test_no_grace_means_no_wait(make_harness, receiver, tmp_path) -> None:
    h = make_harness(hook_site(receiver, grace=0))
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        h.publish(alarm("V3", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: hooked(receiver, "V3"), what="V3")
        assert core.clock.time() == START


async def test_a_still_that_cannot_be_attached_is_skipped_and_the_mail_goes_and_is_retried(
        make_harness, receiver, smtp_server, tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="firebus.plugin.notify")
    receiver.respond = robots
    h = make_harness(media_site(receiver, smtp_server.port, max_attachment_bytes=2000))
    h.prepare = equip(tmp_path / "media")
    big = jpeg(640, 480) + b"\0" * 3000  # over the 2000-byte cap
    assert len(big) > 2000
    async with h.running() as core:
        big_id = await still_for(core, "V4", big)
        gone_id = await still_for(core, "V4", jpeg())
        found = await core.media.get(gone_id)
        found[1].unlink()  # its file is gone (a disk restored without media/)
        smtp_server.refuse = True  # and the mail server is briefly down
        h.publish(alarm("V4", point_id="cam-flame", device_id="cam-1"))

        async def mail_row(status: str) -> bool:
            rows = await h.rows("channel = 'mail'")
            return len(rows) == 1 and rows[0]["status"] == status and bool(rows[0]["attempts"])

        await wait_for(lambda: mail_row("pending"), what="the refused first attempt")
        [row] = await h.rows("channel = 'mail'")
        assert "451" in row["last_error"]  # retried as today
        smtp_server.refuse = False
        await core.clock.advance(10)
        await wait_for(lambda: mail_row("sent"), what="the retry")
        [row] = await h.rows("channel = 'mail'")
        assert row["attempts"] == 2
        [mail] = smtp_server.messages
        assert mail.get_content_type() == "text/plain"  # nothing could be attached
        text = mail.get_content()
        assert "位置：" in text and f"现场图片：{BASE}{MEDIA_PATH}" in text  # both linked instead
        skipped = h.service.media.metrics()["skipped"]
        # per mail attempt: two attempts, two stills each; and once the WeCom image (its first still)
        assert skipped == {"too_large": 3, "missing": 2}
        assert any("too_large" in r.getMessage() and big_id in r.getMessage() for r in caplog.records)
        assert any("missing" in r.getMessage() and gone_id in r.getMessage() for r in caplog.records)
        # The other channels were not held up by any of it.
        assert {r["channel"]: r["status"] for r in await h.rows("channel != 'mail'")} == {
            "hook": "sent", "ding": "sent", "wecom": "sent", "feishu": "sent", "push": "sent"}


async def test_the_signed_picture_link_grants_that_picture_only_until_it_expires(make_harness, receiver,
                                                                                  tmp_path) -> None:
    h = make_harness(hook_site(receiver))
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        mid = await still_for(core, "V5", jpeg())
        other = await core.media.put(jpeg(32, 32), "image/jpeg", kind=MediaKind.STILL)
        await core.media.attach("V-other", other.id)
        h.publish(alarm("V5", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: hooked(receiver, "V5"), what="V5")
        url = hooked(receiver, "V5")[0]["data"]["media"][0]["url"]
        assert (await fetch(core, url)).status_code == 200
        token = url[len(BASE + MEDIA_PATH):].split("/")[0]
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        refused = await fetch(core, f"{BASE}{MEDIA_PATH}{forged}/still.jpg")
        assert refused.status_code == 403 and "This link is not valid" in refused.text and "链接无效" in refused.text
        # The alarm links' key does not open pictures (and the other way round).
        alarm_token = h.service.link("V5", "*").rsplit("/", 1)[1]
        assert (await fetch(core, f"{BASE}{MEDIA_PATH}{alarm_token}/x.jpg")).status_code == 403
        # A token for V5 does not reach a medium of another alarm.
        from firebus.plugins.notify.media import sign_media

        assert h.service.media.key is not None
        cross = sign_media(h.service.media.key, "V5", other.id, START + 3600)
        assert (await fetch(core, f"{BASE}{MEDIA_PATH}{cross}/x.jpg")).status_code == 404
        assert mid != other.id
        await core.clock.advance(86400)  # past links.ttl (24 h default)
        expired = await fetch(core, url)
        assert expired.status_code == 410 and "expired" in expired.text and "过期" in expired.text


def test_the_grace_is_seconds_at_most() -> None:
    assert load_config({}).media.grace_s == 2.0
    assert load_config({}).media.max_attachment_bytes == 2 * 1024 * 1024
    with pytest.raises(NotifyConfigError, match=r"notify.media.grace: 30s is outside 0 to 10 s"):
        load_config({"media": {"grace": "30s"}})
    with pytest.raises(NotifyConfigError, match=r"notify.media.grace"):
        load_config({"media": {"grace": "soon"}})


# -- payload shapes of the app channels, ntfy and web push ----------------------------------------


class Ctx:
    logger = logging.getLogger("test.notify")
    http = None
    mqtt_publish = None
    storage = None

    def time(self) -> float:
        return START


STILL_URL = f"{BASE}{MEDIA_PATH}TOKEN/still-M1.jpg"
CLIP_URL = f"{BASE}{MEDIA_PATH}TOKEN2/clip-M2.mp4"


def with_media(**kw: Any) -> Message:
    media = [{"id": "M1", "kind": "still", "content_type": "image/jpeg", "ts": START, "bytes": 1234, "url": STILL_URL},
             {"id": "M2", "kind": "clip", "content_type": "video/mp4", "ts": START, "bytes": 99999, "url": CLIP_URL}]
    base: dict[str, Any] = dict(id="01N", kind="new", channel="c", recipient="张三", address="zhang",
                                title="【火警】大堂", text="火警（火警）\n位置：大堂", language="zh", alarm_id="A1",
                                category="fire", severity=60, ts=START, url=f"{BASE}/-/plugins/app/a/T",
                                data={"media": media})
    base.update(kw)
    return Message(**base)


def app(cls: Any, opts_cls: Any, options: dict[str, Any]) -> Any:
    return cls("app", msgspec.convert(options, opts_cls), Ctx())


def test_app_channels_show_or_link_the_still() -> None:
    wecom = app(WeComAppChannel, WeComAppOptions, {"corpid": "c", "agentid": 7, "corpsecret": "s"})
    news = wecom.payload(with_media())
    assert news["msgtype"] == "news" and news["touser"] == "zhang" and news["agentid"] == 7
    assert news["news"] == {"articles": [{"title": "【火警】大堂", "description": "火警（火警）\n位置：大堂",
                                          "url": f"{BASE}/-/plugins/app/a/T", "picurl": STILL_URL}]}
    # Without a picture anyone can fetch (no links.base_url): the text card as before.
    assert wecom.payload(with_media(data={"media": [{"id": "M1", "kind": "still", "content_type": "image/jpeg",
                                                     "url": "/api/media/M1"}]}))["msgtype"] == "textcard"

    ding = app(DingTalkAppChannel, DingTalkAppOptions, {"appkey": "k", "agent_id": 9, "appsecret": "s"})
    card = ding.payload(with_media())["msg"]
    assert card["msgtype"] == "action_card"
    assert f"![现场图片]({STILL_URL})" in card["action_card"]["markdown"]
    assert f"[现场视频]({CLIP_URL})" in card["action_card"]["markdown"]

    feishu = app(FeishuAppChannel, FeishuAppOptions, {"app_id": "a", "app_secret": "s"})
    content = json.loads(feishu.payload(with_media(language="en"))["content"])["en_us"]["content"]
    assert [{"tag": "a", "text": "Still image", "href": STILL_URL}] in content
    assert [{"tag": "a", "text": "Video clip", "href": CLIP_URL}] in content


def test_robot_markdown_and_push_payloads() -> None:
    wecom = WeComChannel("w", msgspec.convert({"url": "http://x", "msgtype": "markdown"}, WeComOptions), Ctx())
    content = wecom.payload(with_media(language="en"))["markdown"]["content"]
    assert f"[Still image]({STILL_URL})" in content and f"[Video clip]({CLIP_URL})" in content

    ntfy = NtfyChannel("push", msgspec.convert({}, NtfyOptions), Ctx())
    event = ntfy.event_of(with_media(address="fire-zhang"), START)
    assert event.attachment is not None and event.attachment.url == STILL_URL
    assert ntfy.event_of(with_media(address="fire-zhang", data={}), START).attachment is None

    push = WebPushChannel("wp", msgspec.convert({"subject": "mailto:a@b.c"}, WebPushOptions), Ctx())
    assert json.loads(push.payload(with_media()))["image"] == STILL_URL
    assert "image" not in json.loads(push.payload(with_media(data={})))


async def test_the_picture_link_opens_without_signing_in_on_the_real_core(tmp_path, receiver) -> None:
    """Through the core's own HTTP server: the plugin route is public, the token is the credential."""
    from firebus.core.config import load_text
    from firebus.core.runtime import running_core
    from firebus.core.web import serve
    from firebus.sdk import AlarmCategory, ConditionReported, ManualClock, Severity

    site = f"""
site: {{name: media link test}}
storage: {{path: {tmp_path / 'fb.db'}, synchronous: NORMAL}}
plugins: {{allow: [notify]}}
notify:
  links: {{base_url: "{BASE}"}}
  channels: [{{key: hook, type: webhook, options: {{url: "{receiver.url('/hook')}"}}}}]
  people: [{{name: duty, roles: [duty_officer], contacts: {{hook: x}}}}]
  routes: [{{name: all, channels: [hook], escalation: {{steps: [{{roles: [duty_officer]}}]}}}}]
"""
    clock = ManualClock(START)
    async with running_core(load_text(site, "site.yaml"), clock=clock) as core:
        service = notify.service_for(core)
        assert service is not None
        core.bus.publish(ConditionReported(source="test", subject="room", key="fire", active=True,
                                           category=AlarmCategory.FIRE, severity=Severity.FIRE, message="fire"))
        await wait_for(lambda: core.alarms.open_alarms(), what="the alarm")
        alarm_id = core.alarms.open_alarms()[0].id
        picture = jpeg()
        ref = await core.media.put(picture, "image/jpeg", kind=MediaKind.STILL, ts=START)
        await core.media.attach(alarm_id, ref.id)
        url = service.media.url(alarm_id, {"id": ref.id, "kind": "still", "content_type": "image/jpeg"})
        path = url[len(BASE):]
        async with anyio.create_task_group() as tg:
            server = await tg.start(serve, core, "127.0.0.1", 0)
            try:
                async with httpx.AsyncClient(base_url=server.url) as client:
                    got = await client.get(path)  # no session, no token header
                    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
                    assert hashlib.sha256(got.content).digest() == hashlib.sha256(picture).digest()
                    assert (await client.get(f"/api/media/{ref.id}")).status_code in (401, 403)  # the API asks
            finally:
                server.stop()
