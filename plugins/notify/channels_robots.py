"""Group robots common at Chinese sites: WeCom (企业微信), DingTalk (钉钉), Feishu/Lark (飞书).

Each posts into one group chat through a webhook URL and @-mentions the
people of the escalation step by their contact on that channel (a mobile
number for WeCom and DingTalk, a Feishu user/open id for Feishu).  All three
answer HTTP 200 with a result code in the body; non-zero is a failure
(rate limit, bad signature …) and is retried by the outbox.

The alarm's still (``Message.data["media"]``, see ``media``): DingTalk markdown shows it
(``![…](link)``); WeCom markdown and Feishu posts cannot show a picture by URL (Feishu's only
by an uploaded ``image_key``), so they and every text message get a line with the link.

WeCom also shows it as a separate image message (``image: true``, the default): after the
text went, the first still's bytes (read as e-mail reads them, ``NotifyMedia.read``) are
posted as ``{"msgtype":"image","image":{"base64","md5"}}`` — JPG or PNG, at most 2 MB.  The
outbox keeps one state per message, not per part, so the image is an extra that never fails
the delivery: the alarm text got through, and failing the row would send the text again on
the retry and back the whole channel off (fire alarms queued behind a picture).  A still that
cannot go (too large, not JPG/PNG, unreadable, refused — e.g. errcode 45009, the robot's
20-a-minute limit — or no answer in time) is counted in ``media.skipped`` and logged once; the
text keeps its link line, so the group still has the picture by link.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar, Literal

import anyio
import msgspec

from .channel import Channel, json_body, post_checked, robot_result, secret_from
from .media import label, media_lines, public_media, public_still, stills_of
from .message import ChannelContext, DeliveryError, Message
from .signing import dingtalk_sign, feishu_sign

_JSON = {"Content-Type": "application/json; charset=utf-8"}

#: a WeCom robot's image message: JPG or PNG, at most 2 MB before base64 (群机器人配置说明, 图片类型)
WECOM_IMAGE_MAX_BYTES = 2 * 1024 * 1024
_IMAGE_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
#: the image is started only with this much of the outbox's ``send_timeout`` left: a send that
#: timed out would be retried, and the retry would post the text a second time
IMAGE_MARGIN_S = 1.0


def markdown_media(message: Message) -> str:
    """DingTalk markdown: the first still as a picture (``![…](link)``), other media as links."""
    still = public_still(message)
    parts = []
    for m in public_media(message):
        name = label(message.language, str(m["kind"]))
        parts.append(f"![{name}]({m['url']})" if m is still else f"[{name}]({m['url']})")
    return "".join(f"\n\n{p}" for p in parts)


def wecom_image_body(data: bytes) -> bytes:
    """The image message for ``data`` (raw JPG/PNG bytes): base64 of them and the md5 of the raw bytes."""
    return json_body({"msgtype": "image", "image": {"base64": base64.b64encode(data).decode("ascii"),
                                                    "md5": hashlib.md5(data, usedforsecurity=False).hexdigest()}})


class WeComOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
    msgtype: Literal["text", "markdown"] = "text"
    image: bool = True  # the alarm's still as a separate image message after the text
    timeout: float = 15.0


class WeComChannel(Channel):
    type_key: ClassVar[str] = "wecom"
    Options: ClassVar[type[msgspec.Struct]] = WeComOptions
    group: ClassVar[bool] = True
    #: 每个机器人发送的消息不能超过 20 条/分钟 (群机器人配置说明)
    send_limit: ClassVar[list[tuple[int, float]]] = [(20, 60.0)]

    def payload(self, message: Message) -> dict[str, Any]:
        lines = "".join(f"\n{line}" for line in media_lines(message))
        if self.options.msgtype == "markdown":
            # WeCom markdown has no mention list; mobiles cannot be mentioned there.
            links = "".join(f"\n[{label(message.language, str(m['kind']))}]({m['url']})"
                            for m in public_media(message))
            return {"msgtype": "markdown", "markdown": {"content": f"### {message.title}\n{message.text}{links}"}}
        text: dict[str, Any] = {"content": f"{message.title}\n{message.text}{lines}"}
        if message.mentions:
            text["mentioned_mobile_list"] = list(message.mentions)
        return {"msgtype": "text", "text": text}

    async def send(self, message: Message) -> None:
        response = await post_checked(self.ctx, self.options.url, content=json_body(self.payload(message)),
                                      headers=_JSON, timeout=self.options.timeout)
        robot_result(response, code_fields=("errcode",), msg_fields=("errmsg",))
        if self.options.image:
            await self.send_image(message)

    async def send_image(self, message: Message) -> None:
        """The first still as an image message; never raises (see the module doc)."""
        reader = getattr(self.ctx, "media", None)
        stills = stills_of(message)
        if reader is None or not stills:
            return
        item = stills[0]
        ctype = str(item.get("content_type", ""))
        what = f"{item.get('id')} ({ctype}, {item.get('bytes')} bytes) as a WeCom image on {self.key}"
        if ctype not in _IMAGE_MAGIC:
            reader.skip("not_jpeg_png", f"{what}: WeCom robots show JPG or PNG only")
            return
        # WeCom's 2 MB, or the site's smaller ``media.max_attachment_bytes`` (``read`` caps at it too).
        pacer = getattr(self.ctx, "pacer", None)
        if pacer is not None:
            # The picture is the extra: it uses the robot's limit only while half of it is
            # free, so a burst of alarms keeps the other half for their texts.
            now = self.ctx.time()
            if pacer.room(now) <= min(count for count, _ in pacer.limits) // 2:
                reader.skip("rate_limited", f"{what}: the robot's send_limit is half used; the text has the link")
                return
            pacer.take(now)
        cap = min(WECOM_IMAGE_MAX_BYTES, int(reader.opts.max_attachment_bytes))
        if int(item.get("bytes") or 0) > cap:
            reader.skip("too_large", f"{what} over the {cap}-byte limit for WeCom images")
            return
        with anyio.CancelScope(deadline=anyio.current_effective_deadline() - IMAGE_MARGIN_S) as scope:
            data = await reader.read(item)  # None: skipped, counted and logged by ``read``
            if data is None:
                return
            if len(data) > cap:
                reader.skip("too_large", f"{what} over the {cap}-byte limit for WeCom images")
                return
            if not data.startswith(tuple(_IMAGE_MAGIC.values())):
                reader.skip("not_jpeg_png", f"{what}: the file is neither JPG nor PNG")
                return
            body = await anyio.to_thread.run_sync(wecom_image_body, data)  # ~9 ms for 2 MB: off the loop
            try:
                response = await post_checked(self.ctx, self.options.url, content=body, headers=_JSON,
                                              timeout=self.options.timeout)
                robot_result(response, code_fields=("errcode",), msg_fields=("errmsg",))
            except DeliveryError as exc:
                reader.skip("send_failed", f"{what}: {exc}")
                return
            reader.attached += 1
        if scope.cancelled_caught:
            reader.skip("send_failed", f"{what}: not sent within the outbox's send_timeout")


class DingTalkOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str  # https://oapi.dingtalk.com/robot/send?access_token=…
    secret_env: str | None = None  # the robot's 加签 secret (SEC…)
    secret: str | None = None
    msgtype: Literal["text", "markdown"] = "markdown"
    timeout: float = 15.0


class DingTalkChannel(Channel):
    type_key: ClassVar[str] = "dingtalk"
    Options: ClassVar[type[msgspec.Struct]] = DingTalkOptions
    group: ClassVar[bool] = True
    #: 每个机器人每分钟最多发送 20 条消息到群里，超过会限流 10 分钟 (自定义机器人)
    send_limit: ClassVar[list[tuple[int, float]]] = [(20, 60.0)]

    def __init__(self, key: str, options: DingTalkOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        self.secret = secret_from(options)

    def payload(self, message: Message) -> dict[str, Any]:
        # DingTalk highlights a mention only if "@<mobile>" also appears in the text.
        tail = "".join(f" @{m}" for m in message.mentions)
        at = {"atMobiles": list(message.mentions), "isAtAll": False}
        if self.options.msgtype == "markdown":
            return {
                "msgtype": "markdown",
                "markdown": {"title": message.title,
                             "text": f"### {message.title}\n\n{message.text}{markdown_media(message)}{tail}"},
                "at": at,
            }
        lines = "".join(f"\n{line}" for line in media_lines(message))
        return {"msgtype": "text", "text": {"content": f"{message.title}\n{message.text}{lines}{tail}"}, "at": at}

    def signed_url(self) -> str:
        if not self.secret:
            return self.options.url
        ts = int(self.ctx.time() * 1000)
        sep = "&" if "?" in self.options.url else "?"
        return f"{self.options.url}{sep}timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}"

    async def send(self, message: Message) -> None:
        response = await post_checked(self.ctx, self.signed_url(), content=json_body(self.payload(message)),
                                      headers=_JSON, timeout=self.options.timeout)
        robot_result(response, code_fields=("errcode",), msg_fields=("errmsg",))


class FeishuOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str  # https://open.feishu.cn/open-apis/bot/v2/hook/… (or open.larksuite.com)
    secret_env: str | None = None  # the bot's 签名校验 secret
    secret: str | None = None
    msg_type: Literal["text", "post"] = "post"
    timeout: float = 15.0


class FeishuChannel(Channel):
    type_key: ClassVar[str] = "feishu"
    Options: ClassVar[type[msgspec.Struct]] = FeishuOptions
    group: ClassVar[bool] = True
    #: 自定义机器人频率控制：100 次/分钟，5 次/秒
    send_limit: ClassVar[list[tuple[int, float]]] = [(5, 1.0), (100, 60.0)]

    def __init__(self, key: str, options: FeishuOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        self.secret = secret_from(options)

    def payload(self, message: Message) -> dict[str, Any]:
        if self.options.msg_type == "post":
            lines: list[list[dict[str, Any]]] = [[{"tag": "text", "text": line}] for line in message.text.splitlines()]
            lines += [[{"tag": "a", "text": label(message.language, str(m["kind"])), "href": m["url"]}]
                      for m in public_media(message)]
            if message.mentions:
                lines.append([{"tag": "at", "user_id": uid} for uid in message.mentions])
            lang = "zh_cn" if message.language == "zh" else "en_us"
            body: dict[str, Any] = {
                "msg_type": "post",
                "content": {"post": {lang: {"title": message.title, "content": lines}}},
            }
        else:
            ats = "".join(f' <at user_id="{uid}"></at>' for uid in message.mentions)
            extra = "".join(f"\n{line}" for line in media_lines(message))
            body = {"msg_type": "text", "content": {"text": f"{message.title}\n{message.text}{extra}{ats}"}}
        if self.secret:
            ts = int(self.ctx.time())
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        return body

    async def send(self, message: Message) -> None:
        response = await post_checked(self.ctx, self.options.url, content=json_body(self.payload(message)),
                                      headers=_JSON, timeout=self.options.timeout)
        # Current API answers {"code": 0, "msg": "success"}; older hooks {"StatusCode": 0}.
        robot_result(response, code_fields=("code", "StatusCode"), msg_fields=("msg", "StatusMessage"))
