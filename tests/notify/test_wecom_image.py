"""The WeCom group robot shows the alarm's still as an image message after the text (issue 17).

The service runs on a real bus and storage with the core's real media store (files on disk) and
posts to a real HTTP receiver standing in for ``qyapi.weixin.qq.com``; time is a ManualClock.
The image is an extra on top of the delivered text: it never fails the row (see the module doc
of ``channels_robots``), so a refused or slow image never makes the outbox post the text again.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from typing import Any

import cv2
import numpy as np
import pytest

from firebus.plugins.notify.channels_robots import WECOM_IMAGE_MAX_BYTES

from .conftest import alarm, wait_for
from .test_media import BASE, MEDIA_PATH, equip, jpeg, still_for

pytestmark = pytest.mark.anyio

HOOK = "/cgi-bin/webhook/send"


def png(width: int = 32, height: int = 24) -> bytes:
    img = np.full((height, width, 3), 200, np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def wecom_site(receiver: Any, **options: Any) -> dict[str, Any]:
    return {
        "timezone": "Asia/Shanghai",
        "links": {"base_url": BASE},
        "channels": [{"key": "wecom", "type": "wecom",
                      "options": {"url": receiver.url(f"{HOOK}?key=KEY"), **options}}],
        "people": [{"name": "张三", "roles": ["duty_officer"], "contacts": {"wecom": "13800000001"}}],
        "routes": [{"name": "fire", "channels": ["wecom"], "escalation": {"steps": [{"roles": ["duty_officer"]}]}}],
        "outbox": {"base_backoff_s": 10, "max_backoff_s": 60},
    }


def answer(text: tuple[int, Any] = (0, "ok"), image: tuple[int, Any] = (0, "ok")) -> Any:
    """What the robot answers: per message type, ``(errcode, errmsg)``."""

    def respond(req: Any) -> tuple[int, Any]:
        code, msg = image if req.json()["msgtype"] == "image" else text
        return 200, {"errcode": code, "errmsg": msg}

    return respond


def bodies(receiver: Any) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.on(HOOK)]


async def sent_once(h: Any) -> list[dict[str, Any]]:
    rows = await h.rows()
    return rows if [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] else []


@pytest.mark.parametrize("kind", ["jpeg", "png"])
async def test_the_text_then_the_still_as_an_image_message(make_harness, receiver, tmp_path, kind) -> None:
    receiver.respond = answer()
    h = make_harness(wecom_site(receiver))
    h.prepare = equip(tmp_path / "media")
    picture = jpeg(320, 240) if kind == "jpeg" else png()
    async with h.running() as core:
        ref = await core.media.put(picture, f"image/{kind}", kind="still", device_id="cam-1", ts=1.0)
        await core.media.attach("W1", ref.id)
        h.publish(alarm("W1", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: sent_once(h), what="the wecom row sent")

        text, image = bodies(receiver)  # in this order, and nothing else
        assert text["msgtype"] == "text"
        assert text["text"]["mentioned_mobile_list"] == ["13800000001"]
        # The link line stays: a reader whose client does not show the picture still has it.
        assert f"\n现场图片：{BASE}{MEDIA_PATH}" in text["text"]["content"]
        assert set(image) == {"msgtype", "image"} and set(image["image"]) == {"base64", "md5"}
        assert image["msgtype"] == "image"
        assert base64.b64decode(image["image"]["base64"], validate=True) == picture
        assert image["image"]["md5"] == hashlib.md5(picture).hexdigest()
        assert h.service.media.metrics()["attached"] == 1
        assert h.service.media.metrics()["skipped"] == {}


async def test_markdown_is_followed_by_the_image_too(make_harness, receiver, tmp_path) -> None:
    receiver.respond = answer()
    h = make_harness(wecom_site(receiver, msgtype="markdown"))
    h.prepare = equip(tmp_path / "media")
    picture = jpeg()
    async with h.running() as core:
        await still_for(core, "W2", picture)
        h.publish(alarm("W2", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: sent_once(h), what="the wecom row sent")
        md, image = bodies(receiver)
        assert md["msgtype"] == "markdown" and f"[现场图片]({BASE}{MEDIA_PATH}" in md["markdown"]["content"]
        assert base64.b64decode(image["image"]["base64"]) == picture


async def test_image_false_sends_the_text_only(make_harness, receiver, tmp_path) -> None:
    receiver.respond = answer()
    h = make_harness(wecom_site(receiver, image=False))
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        await still_for(core, "W3", jpeg())
        h.publish(alarm("W3", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: sent_once(h), what="the wecom row sent")
        await h.settle()
        [text] = bodies(receiver)
        assert text["msgtype"] == "text" and f"现场图片：{BASE}{MEDIA_PATH}" in text["text"]["content"]
        assert h.service.media.metrics() == {"attached": 0, "held": 0, "released": 0, "skipped": {}}


async def test_a_still_over_2_mb_or_not_jpg_png_goes_as_its_link_only(make_harness, receiver, tmp_path,
                                                                         caplog) -> None:
    caplog.set_level(logging.WARNING, logger="firebus.plugin.notify")
    receiver.respond = answer()
    # A site that attaches up to 4 MB to e-mail: the 2 MB limit here is WeCom's own.
    site = wecom_site(receiver)
    site["media"] = {"max_attachment_bytes": 4 * 1024 * 1024}
    h = make_harness(site)
    h.prepare = equip(tmp_path / "media")
    big = jpeg(640, 480)
    big += b"\0" * (3 * 1024 * 1024 - len(big))  # a 3 MB JPEG (padding after the image data)
    assert len(big) > WECOM_IMAGE_MAX_BYTES
    async with h.running() as core:
        big_id = await still_for(core, "W4", big)
        h.publish(alarm("W4", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: sent_once(h), what="the wecom row sent")
        await h.settle()
        [text] = bodies(receiver)
        assert text["msgtype"] == "text" and f"\n现场图片：{BASE}{MEDIA_PATH}" in text["text"]["content"]
        assert h.service.media.metrics()["skipped"] == {"too_large": 1}
        logged = [r.getMessage() for r in caplog.records if big_id in r.getMessage()]
        assert len(logged) == 1 and "WeCom" in logged[0] and "too_large" in logged[0]

        webp = await core.media.put(b"RIFF\x10\x00\x00\x00WEBPVP8 fake", "image/webp", kind="still", ts=1.0)
        await core.media.attach("W5", webp.id)
        h.publish(alarm("W5", point_id="cam-flame", device_id="cam-1"))

        async def both_sent() -> bool:
            return [r["status"] for r in await h.rows()] == ["sent", "sent"]

        await wait_for(both_sent, what="W5 sent")
        await h.settle()
        assert [b["msgtype"] for b in bodies(receiver)] == ["text", "text"]
        assert h.service.media.metrics()["skipped"] == {"too_large": 1, "not_jpeg_png": 1}
        assert h.service.media.metrics()["attached"] == 0


async def test_a_refused_image_is_counted_and_the_text_is_not_sent_again(make_harness, receiver, tmp_path,
                                                                           caplog) -> None:
    """errcode 45009 (the robot's 20-a-minute limit) on the image: the alarm text got through,
    so the row is sent; a retry would post the text a second time and back the channel off."""
    caplog.set_level(logging.WARNING, logger="firebus.plugin.notify")
    receiver.respond = answer(image=(45009, "api freq out of limit"))
    h = make_harness(wecom_site(receiver))
    h.prepare = equip(tmp_path / "media")
    async with h.running() as core:
        mid = await still_for(core, "W6", jpeg())
        h.publish(alarm("W6", point_id="cam-flame", device_id="cam-1"))
        await wait_for(lambda: sent_once(h), what="the wecom row sent")
        await core.clock.advance(120)  # past every back-off: nothing is due again
        await h.settle()
        assert await sent_once(h)
        assert [b["msgtype"] for b in bodies(receiver)] == ["text", "image"]
        assert h.service.media.metrics()["skipped"] == {"send_failed": 1}
        assert h.service.media.metrics()["attached"] == 0
        [channel] = h.service.channels.snapshot()
        assert (channel["state"], channel["sent"], channel["failed"]) == ("up", 1, 0)
        logged = [r.getMessage() for r in caplog.records if mid in r.getMessage()]
        assert len(logged) == 1 and "45009" in logged[0] and "send_failed" in logged[0]


async def test_a_refused_text_is_retried_and_the_image_follows_the_text_that_went(make_harness, receiver,
                                                                                    tmp_path) -> None:
    receiver.respond = answer(text=(45009, "api freq out of limit"))
    h = make_harness(wecom_site(receiver))
    h.prepare = equip(tmp_path / "media")
    picture = jpeg()
    async with h.running() as core:
        await still_for(core, "W7", picture)
        h.publish(alarm("W7", point_id="cam-flame", device_id="cam-1"))

        async def pending_after_one() -> bool:
            rows = await h.rows()
            return [(r["status"], r["attempts"]) for r in rows] == [("pending", 1)]

        await wait_for(pending_after_one, what="the refused first attempt")
        assert [b["msgtype"] for b in bodies(receiver)] == ["text"]  # no image without the text
        receiver.respond = answer()
        await core.clock.advance(10)

        async def sent_after_two() -> bool:
            return [(r["status"], r["attempts"]) for r in await h.rows()] == [("sent", 2)]

        await wait_for(sent_after_two, what="the retry")
        assert [b["msgtype"] for b in bodies(receiver)] == ["text", "text", "image"]
        assert base64.b64decode(bodies(receiver)[2]["image"]["base64"]) == picture
        assert h.service.media.metrics()["attached"] == 1 and h.service.media.metrics()["skipped"] == {}


async def test_an_image_without_an_answer_in_time_does_not_time_the_send_out(make_harness, receiver,
                                                                               tmp_path) -> None:
    """The robot takes the text and then hangs on the image: the image is given up ``IMAGE_MARGIN_S``
    before the outbox's send_timeout, so the row is sent and the text is not posted twice."""
    release = threading.Event()
    text_ok = answer()

    def respond(req: Any) -> tuple[int, Any]:
        if req.json()["msgtype"] == "image":
            release.wait(30)
        return text_ok(req)

    receiver.respond = respond
    site = wecom_site(receiver)
    site["outbox"]["send_timeout_s"] = 1.5
    h = make_harness(site)
    h.prepare = equip(tmp_path / "media")
    try:
        async with h.running() as core:
            await still_for(core, "W8", jpeg())
            h.publish(alarm("W8", point_id="cam-flame", device_id="cam-1"))
            await wait_for(lambda: sent_once(h), what="the wecom row sent")
            assert h.service.media.metrics()["skipped"] == {"send_failed": 1}
            await core.clock.advance(120)
            await h.settle()
            assert await sent_once(h)
            release.set()
            await wait_for(lambda: len(receiver.on(HOOK)) == 2, what="the hung image request to end")
            assert [b["msgtype"] for b in bodies(receiver)] == ["text", "image"]
    finally:
        release.set()
