"""App messages to named people: WeCom application messages (企业微信应用消息), DingTalk work
notifications (钉钉工作通知) and Feishu/Lark bot messages (飞书应用消息).

Unlike the group robots (channels_robots), these reach one person's own chat with the
company's app, through the vendor's app: the push that arrives on phones in mainland China
without Google services.  A person's contact is their user id in that directory.

Each vendor hands out an access token for the app's id and secret, valid ``expires_in``
seconds (7200 today); it is fetched on first use, kept until shortly before it expires, and
fetched again at once when the vendor says it is invalid or expired (another process may
have rotated it).  Vendor error codes are sorted into "try again" (rate limits, busy) and
"this message can never go" (unknown user, app not visible to them): the latter fail the
row without blocking the channel.  ``base_url`` points elsewhere (a private deployment, a
test receiver).

The alarm's still (``Message.data["media"]``): WeCom sends a news message (图文) whose
``picurl`` is the still's signed link; DingTalk shows it in the markdown (``![…](link)``);
Feishu's post cannot show a picture by URL (only an uploaded ``image_key``), so it links it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import msgspec

from .channel import Channel, json_body, post_checked, secret_from
from .media import label, media_lines, public_media, public_still
from .message import ChannelContext, DeliveryError, Message

_JSON = {"Content-Type": "application/json; charset=utf-8"}
#: Fetch a new token this long before the vendor's expiry (clock skew, a slow request).
TOKEN_MARGIN_S = 300.0


class TokenExpired(Exception):
    """The vendor refused the token: fetch a new one and try once more."""


@dataclass
class TokenCache:
    token: str = ""
    expires: float = 0.0

    def valid(self, now: float) -> bool:
        return bool(self.token) and now < self.expires - TOKEN_MARGIN_S


def _answer(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise DeliveryError(f"answered with non-JSON: {response.text[:200]}") from None
    if not isinstance(body, dict):
        raise DeliveryError(f"answered {str(body)[:200]}")
    return body


class AppChannel(Channel):
    """Token handling and error sorting shared by the three vendors."""

    #: vendor code → why it can never succeed for this message (permanent: skip the row)
    PERMANENT: ClassVar[dict[int, str]] = {}
    #: codes that mean the token is invalid or expired
    TOKEN_CODES: ClassVar[frozenset[int]] = frozenset()
    #: the vendor's per-person limit: (messages, seconds); the service holds the rest for a digest
    vendor_limit: ClassVar[tuple[int, float] | None] = None

    def __init__(self, key: str, options: Any, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        self.secret = secret_from(options, self.secret_field)
        if not self.secret:
            raise ValueError(f"{self.secret_field}_env (or {self.secret_field}) is required")
        self._token = TokenCache()
        self._lock = anyio.Lock()

    secret_field: ClassVar[str] = "secret"

    async def token(self) -> str:
        async with self._lock:  # one fetch when many sends find the token stale at once
            if not self._token.valid(self.ctx.time()):
                token, expires_in = await self.fetch_token()
                self._token = TokenCache(token, self.ctx.time() + float(expires_in))
            return self._token.token

    def forget_token(self, token: str) -> None:
        if self._token.token == token:
            self._token = TokenCache()

    async def fetch_token(self) -> tuple[str, float]:
        raise NotImplementedError

    async def deliver(self, token: str, message: Message) -> None:
        raise NotImplementedError

    def check(self, code: Any, text: str, what: str) -> None:
        """Raise for a non-zero vendor code: TokenExpired, permanent or retryable DeliveryError."""
        try:
            number = int(code)
        except (TypeError, ValueError):
            raise DeliveryError(f"{what}: no result code in the answer") from None
        if number == 0:
            return
        if number in self.TOKEN_CODES:
            raise TokenExpired(f"{number} {text}")
        if number in self.PERMANENT:
            raise DeliveryError(f"{what}: {number} {text} ({self.PERMANENT[number]})", permanent=True)
        raise DeliveryError(f"{what}: {number} {text}")

    async def send(self, message: Message) -> None:
        if not message.address:
            raise DeliveryError(f"{message.recipient} has no user id on {self.key}", permanent=True)
        for attempt in (1, 2):
            token = await self.token()
            try:
                await self.deliver(token, message)
                return
            except TokenExpired as exc:
                self.forget_token(token)
                if attempt == 2:
                    raise DeliveryError(f"access token refused twice: {exc}") from None


# -- WeCom -------------------------------------------------------------------------------------


class WeComAppOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    corpid: str
    agentid: int
    corpsecret_env: str | None = None  # the app's Secret (prefer the environment variable)
    corpsecret: str | None = None
    base_url: str = "https://qyapi.weixin.qq.com"
    timeout: float = 15.0


class WeComAppChannel(AppChannel):
    """``cgi-bin/gettoken`` then ``cgi-bin/message/send``: a text card (title, text, the alarm's
    link as its button) when the message has a link, plain text otherwise."""

    type_key: ClassVar[str] = "wecom_app"
    Options: ClassVar[type[msgspec.Struct]] = WeComAppOptions
    secret_field: ClassVar[str] = "corpsecret"
    vendor_limit: ClassVar[tuple[int, float] | None] = (30, 60.0)  # 每成员每分钟 30 条
    TOKEN_CODES = frozenset({40014, 42001, 40082})
    PERMANENT = {
        81013: "user not in the app's visible range or unknown",
        40003: "unknown user id",
        60111: "unknown user id",
        301002: "no permission for this member",
        44004: "empty text",
    }

    async def fetch_token(self) -> tuple[str, float]:
        o: WeComAppOptions = self.options
        try:
            r = await self.ctx.http.get(f"{o.base_url.rstrip('/')}/cgi-bin/gettoken",
                                        params={"corpid": o.corpid, "corpsecret": self.secret}, timeout=o.timeout)
        except Exception as exc:
            raise DeliveryError(f"gettoken: {type(exc).__name__}: {exc}") from exc
        body = _answer(r)
        if int(body.get("errcode", -1)) != 0 or not body.get("access_token"):
            raise DeliveryError(f"gettoken: {body.get('errcode')} {body.get('errmsg', '')}")
        return str(body["access_token"]), float(body.get("expires_in", 7200))

    def payload(self, message: Message) -> dict[str, Any]:
        o: WeComAppOptions = self.options
        base: dict[str, Any] = {"touser": message.address, "agentid": o.agentid, "safe": 0}
        still = public_still(message)
        if still is not None:
            # news (图文): the picture is fetched by WeCom from picurl; title ≤ 128 bytes, description
            # ≤ 512 bytes; url (the alarm, else the picture) is what a tap opens.
            return {**base, "msgtype": "news", "news": {"articles": [{
                "title": message.title[:60], "description": message.text[:240],
                "url": message.url or still["url"], "picurl": still["url"]}]}}
        lines = "".join(f"\n{line}" for line in media_lines(message))
        if message.url:
            # textcard: title ≤ 128 bytes, description ≤ 512 bytes (WeCom cuts, we cut first on characters).
            return {**base, "msgtype": "textcard", "textcard": {
                "title": message.title[:60], "description": message.text[:240], "url": message.url,
                "btntxt": "详情" if message.language == "zh" else "Open"}}
        return {**base, "msgtype": "text", "text": {"content": f"{message.title}\n{message.text}{lines}"[:2000]}}

    async def deliver(self, token: str, message: Message) -> None:
        o: WeComAppOptions = self.options
        r = await post_checked(self.ctx, f"{o.base_url.rstrip('/')}/cgi-bin/message/send?access_token={token}",
                               content=json_body(self.payload(message)), headers=_JSON, timeout=o.timeout)
        body = _answer(r)
        self.check(body.get("errcode"), str(body.get("errmsg", "")), "message/send")
        if body.get("invaliduser"):
            raise DeliveryError(f"WeCom does not know user {body['invaliduser']!r}", permanent=True)


# -- DingTalk ----------------------------------------------------------------------------------


class DingTalkAppOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    appkey: str
    agent_id: int
    appsecret_env: str | None = None
    appsecret: str | None = None
    base_url: str = "https://oapi.dingtalk.com"
    timeout: float = 15.0


class DingTalkAppChannel(AppChannel):
    """``gettoken`` then ``topapi/message/corpconversation/asyncsend_v2`` (work notification):
    an action card whose button opens the alarm's link, or markdown without one.

    DingTalk drops, while answering success, a message whose content the same user already
    got that day, and anything past 500 a day per user: every text names the alarm and step,
    and ``vendor_limit`` keeps a flood well under the daily cap (the rest goes into a digest).
    """

    type_key: ClassVar[str] = "dingtalk_app"
    Options: ClassVar[type[msgspec.Struct]] = DingTalkAppOptions
    secret_field: ClassVar[str] = "appsecret"
    vendor_limit: ClassVar[tuple[int, float] | None] = (60, 3600.0)
    TOKEN_CODES = frozenset({40014, 42001, 40001})
    PERMANENT = {33012: "unknown user id", 40035: "bad parameter", 60011: "no permission for this user"}

    async def fetch_token(self) -> tuple[str, float]:
        o: DingTalkAppOptions = self.options
        try:
            r = await self.ctx.http.get(f"{o.base_url.rstrip('/')}/gettoken",
                                        params={"appkey": o.appkey, "appsecret": self.secret}, timeout=o.timeout)
        except Exception as exc:
            raise DeliveryError(f"gettoken: {type(exc).__name__}: {exc}") from exc
        body = _answer(r)
        if int(body.get("errcode", -1)) != 0 or not body.get("access_token"):
            raise DeliveryError(f"gettoken: {body.get('errcode')} {body.get('errmsg', '')}")
        return str(body["access_token"]), float(body.get("expires_in", 7200))

    def payload(self, message: Message) -> dict[str, Any]:
        text = f"### {message.title}\n\n" + message.text.replace("\n", "\n\n")
        still = public_still(message)
        for m in public_media(message):  # the still as a picture, other media as links
            name = label(message.language, str(m["kind"]))
            text += f"\n\n![{name}]({m['url']})" if m is still else f"\n\n[{name}]({m['url']})"
        if message.url:
            msg = {"msgtype": "action_card", "action_card": {
                "title": message.title, "markdown": text,
                "single_title": "查看告警" if message.language == "zh" else "Open the alarm",
                "single_url": message.url}}
        else:
            msg = {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}
        return {"agent_id": self.options.agent_id, "userid_list": message.address, "msg": msg}

    async def deliver(self, token: str, message: Message) -> None:
        o: DingTalkAppOptions = self.options
        r = await post_checked(
            self.ctx, f"{o.base_url.rstrip('/')}/topapi/message/corpconversation/asyncsend_v2?access_token={token}",
            content=json_body(self.payload(message)), headers=_JSON, timeout=o.timeout)
        body = _answer(r)
        self.check(body.get("errcode"), str(body.get("errmsg", "")), "asyncsend_v2")


# -- Feishu / Lark -----------------------------------------------------------------------------


class FeishuAppOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    app_id: str
    app_secret_env: str | None = None
    app_secret: str | None = None
    receive_id_type: str = "user_id"  # or open_id, union_id, email
    base_url: str = "https://open.feishu.cn"  # Lark: https://open.larksuite.com
    timeout: float = 15.0


class FeishuAppChannel(AppChannel):
    """``auth/v3/tenant_access_token/internal`` then ``im/v1/messages``: a rich-text post with the
    alarm's link.  ``uuid`` is the outbox id, so Feishu itself drops a retried duplicate."""

    type_key: ClassVar[str] = "feishu_app"
    Options: ClassVar[type[msgspec.Struct]] = FeishuAppOptions
    secret_field: ClassVar[str] = "app_secret"
    vendor_limit: ClassVar[tuple[int, float] | None] = (30, 60.0)
    TOKEN_CODES = frozenset({99991661, 99991663, 99991668})
    PERMANENT = {
        230001: "bad parameter",
        230006: "the bot ability is not enabled for the app",
        230013: "the user is outside the app's availability",
        99992361: "unknown user id",
        99992364: "unknown user id",
    }

    async def fetch_token(self) -> tuple[str, float]:
        o: FeishuAppOptions = self.options
        r = await post_checked(self.ctx, f"{o.base_url.rstrip('/')}/open-apis/auth/v3/tenant_access_token/internal",
                               content=json_body({"app_id": o.app_id, "app_secret": self.secret}), headers=_JSON,
                               timeout=o.timeout)
        body = _answer(r)
        if int(body.get("code", -1)) != 0 or not body.get("tenant_access_token"):
            raise DeliveryError(f"tenant_access_token: {body.get('code')} {body.get('msg', '')}")
        return str(body["tenant_access_token"]), float(body.get("expire", 7200))

    def payload(self, message: Message) -> dict[str, Any]:
        lines: list[list[dict[str, Any]]] = [[{"tag": "text", "text": line}] for line in message.text.splitlines()]
        lines += [[{"tag": "a", "text": label(message.language, str(m["kind"])), "href": m["url"]}]
                  for m in public_media(message)]
        if message.url:
            lines.append([{"tag": "a", "text": "查看告警" if message.language == "zh" else "Open the alarm",
                           "href": message.url}])
        lang = "zh_cn" if message.language == "zh" else "en_us"
        content = {lang: {"title": message.title, "content": lines}}
        return {"receive_id": message.address, "msg_type": "post", "uuid": message.id[:50],
                "content": json.dumps(content, ensure_ascii=False)}

    async def deliver(self, token: str, message: Message) -> None:
        import httpx

        o: FeishuAppOptions = self.options
        url = f"{o.base_url.rstrip('/')}/open-apis/im/v1/messages?receive_id_type={o.receive_id_type}"
        try:
            r = await self.ctx.http.post(url, content=json_body(self.payload(message)), timeout=o.timeout,
                                         headers={**_JSON, "Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc or 'no answer'}") from exc
        # Feishu answers 4xx with the reason in the body (400 for a bad user id, 429 for limits).
        body = _answer(r) if r.headers.get("content-type", "").startswith("application/json") else {}
        if "code" not in body:
            raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200]}")
        self.check(body.get("code"), str(body.get("msg", "")), "im/v1/messages")
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200]}")
