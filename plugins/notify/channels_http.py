"""Generic HTTP channels: a signed JSON webhook, and an SMS gateway reached over HTTP."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import jinja2
import msgspec

from .channel import Channel, json_body, message_json, post_checked, secret_from
from .message import ChannelContext, DeliveryError, Message
from .signing import webhook_signature


class WebhookOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    secret_env: str | None = None  # name of the environment variable holding the HMAC key
    secret: str | None = None  # inline key (prefer secret_env: site files end up in tickets)
    signature_header: str = "X-Firebus-Signature"
    timestamp_header: str = "X-Firebus-Timestamp"
    headers: dict[str, str] = {}
    timeout: float = 15.0


class WebhookChannel(Channel):
    """POSTs the message as JSON; with a secret, signs it (see ``signing.webhook_signature``).

    ``X-Firebus-Notification-Id`` carries the outbox id: the same on every retry,
    so a receiver can drop duplicates.
    """

    type_key: ClassVar[str] = "webhook"
    Options: ClassVar[type[msgspec.Struct]] = WebhookOptions
    group: ClassVar[bool] = True

    def __init__(self, key: str, options: WebhookOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        self.secret = secret_from(options)

    async def send(self, message: Message) -> None:
        opts: WebhookOptions = self.options
        body = json_body(message_json(message))
        headers = {"Content-Type": "application/json; charset=utf-8", **opts.headers}
        headers["X-Firebus-Notification-Id"] = message.id
        if self.secret:
            ts = str(int(self.ctx.time()))
            headers[opts.timestamp_header] = ts
            headers[opts.signature_header] = webhook_signature(self.secret, ts, body)
        await post_checked(self.ctx, opts.url, content=body, headers=headers, timeout=opts.timeout)


class SmsOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An SMS gateway's HTTP API, described by templates (every vendor's differs).

    ``url`` and ``body`` are Jinja templates over ``phone``, ``text``, ``title``,
    ``id``, ``secret`` and the message fields; use ``|urlencode`` in URLs and
    ``|tojson`` in JSON bodies.  Gateways often answer 200 with an error in the
    body: ``success_regex`` must then match the answer for the send to count.
    """

    url: str
    method: Literal["GET", "POST", "PUT"] = "POST"
    body: str | None = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = {}
    secret_env: str | None = None  # exposed to templates as ``secret`` (API key, token)
    secret: str | None = None
    success_regex: str | None = None
    max_length: int = 500  # long texts are cut: SMS bills per 70-character segment
    timeout: float = 15.0


class SmsChannel(Channel):
    type_key: ClassVar[str] = "sms"
    Options: ClassVar[type[msgspec.Struct]] = SmsOptions

    def __init__(self, key: str, options: SmsOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
        try:
            self._url = env.from_string(options.url)
            self._body = env.from_string(options.body) if options.body is not None else None
            self._headers = {k: env.from_string(v) for k, v in options.headers.items()}
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"template syntax error: {exc}") from None
        self._success = re.compile(options.success_regex) if options.success_regex else None
        self.secret = secret_from(options)

    async def send(self, message: Message) -> None:
        if not message.address:
            raise DeliveryError(f"{message.recipient} has no phone number on {self.key}", permanent=True)
        opts: SmsOptions = self.options
        text = f"{message.title}\n{message.text}" if message.title else message.text
        if len(text) > opts.max_length:
            text = text[: opts.max_length - 1] + "…"
        values = {**message_json(message), "phone": message.address, "text": text, "secret": self.secret}
        try:
            url = self._url.render(values)
            body = self._body.render(values).encode() if self._body is not None else b""
            headers = {k: t.render(values) for k, t in self._headers.items()}
        except jinja2.TemplateError as exc:
            raise DeliveryError(f"template error: {exc}", permanent=True) from exc
        if self._body is not None:
            headers.setdefault("Content-Type", opts.content_type)
        response = await post_checked(self.ctx, url, content=body, headers=headers, method=opts.method,
                                      timeout=opts.timeout)
        if self._success is not None and not self._success.search(response.text):
            raise DeliveryError(f"gateway refused: {response.text[:200]}")
