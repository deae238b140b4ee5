"""Group robots common at Chinese sites: WeCom (企业微信), DingTalk (钉钉), Feishu/Lark (飞书).

Each posts into one group chat through a webhook URL and @-mentions the
people of the escalation step by their contact on that channel (a mobile
number for WeCom and DingTalk, a Feishu user/open id for Feishu).  All three
answer HTTP 200 with a result code in the body; non-zero is a failure
(rate limit, bad signature …) and is retried by the outbox.

The alarm's still (``Message.data["media"]``, see ``media``): DingTalk markdown shows it
(``![…](link)``); WeCom markdown and Feishu posts cannot show a picture by URL (WeCom's only
by a separate image/news message, Feishu's only by an uploaded ``image_key``), so they and
every text message get a line with the link.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from .channel import Channel, json_body, post_checked, robot_result, secret_from
from .media import label, media_lines, public_media, public_still
from .message import ChannelContext, Message
from .signing import dingtalk_sign, feishu_sign

_JSON = {"Content-Type": "application/json; charset=utf-8"}


def markdown_media(message: Message) -> str:
    """DingTalk markdown: the first still as a picture (``![…](link)``), other media as links."""
    still = public_still(message)
    parts = []
    for m in public_media(message):
        name = label(message.language, str(m["kind"]))
        parts.append(f"![{name}]({m['url']})" if m is still else f"[{name}]({m['url']})")
    return "".join(f"\n\n{p}" for p in parts)


class WeComOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str  # https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…
    msgtype: Literal["text", "markdown"] = "text"
    timeout: float = 15.0


class WeComChannel(Channel):
    type_key: ClassVar[str] = "wecom"
    Options: ClassVar[type[msgspec.Struct]] = WeComOptions
    group: ClassVar[bool] = True

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
