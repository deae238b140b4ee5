"""Channels that do not speak HTTP: SMTP e-mail and MQTT publish."""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any, ClassVar, Literal

import anyio
import msgspec

from .channel import Channel, json_body, message_json, secret_from
from .media import file_name, label, media_lines, stills_of
from .message import ChannelContext, DeliveryError, Message


class EmailOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str
    port: int | None = None  # default: 465 for ssl, 587 for starttls, 25 otherwise
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # environment variable holding the password
    sender: str  # From: address
    sender_name: str = "firebus"
    verify_tls: bool = True  # off only for a lab relay with a self-signed certificate
    timeout: float = 30.0


class EmailChannel(Channel):
    """E-mail over SMTP (stdlib ``smtplib`` in a worker thread): plain text, and with the alarm's
    still also an HTML part showing it inline (``multipart/related``, ``cid:``) and the still as an
    attachment.

    The Message-ID is derived from the outbox id, so a retried mail that did
    reach the server the first time is recognisable as the same mail.
    """

    type_key: ClassVar[str] = "email"
    Options: ClassVar[type[msgspec.Struct]] = EmailOptions

    def __init__(self, key: str, options: EmailOptions, ctx: ChannelContext) -> None:
        super().__init__(key, options, ctx)
        self.password = secret_from(options, "password") if options.password_env else ""
        if options.username and not self.password:
            raise ValueError("username is set but password_env is not")

    def build(self, message: Message, images: list[tuple[dict[str, Any], bytes]] | None = None) -> EmailMessage:
        """The mail; ``images``: (media item, bytes) of the stills to show and attach."""
        opts: EmailOptions = self.options
        mail = EmailMessage()
        mail["From"] = formataddr((opts.sender_name, opts.sender))
        mail["To"] = message.address
        mail["Subject"] = message.title
        mail["Date"] = formatdate(self.ctx.time(), localtime=False)
        mail["Message-ID"] = f"<{message.id}@firebus.notify>"
        mail["X-Firebus-Alarm-Id"] = message.alarm_id
        images = images or []
        # Media not attached (a clip, a still too large) are linked; the attached ones are named.
        lines = media_lines(message, skip=frozenset(item["id"] for item, _ in images), public_only=False)
        if images:
            sep = "：" if message.language == "zh" else ": "
            lines.insert(0, label(message.language, "attached") + sep + ", ".join(file_name(i) for i, _ in images))
        text = message.text + ("\n\n" + "\n".join(lines) if lines else "")
        mail.set_content(text)
        if not images:
            return mail
        cids = [make_msgid(domain="firebus.notify") for _ in images]
        alt = html.escape(label(message.language, "still"))
        figures = "".join(f'<p><img src="cid:{cid[1:-1]}" alt="{alt}" style="max-width:100%"></p>' for cid in cids)
        mail.add_alternative(
            f'<!doctype html><html lang="{"zh-CN" if message.language == "zh" else "en"}"><head><meta charset="utf-8">'
            f"</head><body><p style=\"white-space:pre-wrap\">{html.escape(text)}</p>{figures}</body></html>",
            subtype="html")
        html_part = mail.get_payload()[1]
        for (item, data), cid in zip(images, cids):
            maintype, _, subtype = str(item["content_type"]).partition("/")
            html_part.add_related(data, maintype, subtype, cid=cid, disposition="inline", filename=file_name(item))
        for item, data in images:
            maintype, _, subtype = str(item["content_type"]).partition("/")
            mail.add_attachment(data, maintype, subtype, filename=file_name(item))
        return mail

    async def images(self, message: Message) -> list[tuple[dict[str, Any], bytes]]:
        """The stills to attach, read through the service (a still that cannot be read is skipped)."""
        reader = getattr(self.ctx, "media", None)
        stills = stills_of(message)
        if reader is None or not stills:
            return []
        out = []
        for item in stills[: reader.opts.max_images]:
            data = await reader.read(item)
            if data is not None:
                out.append((item, data))
        reader.attached += len(out)
        return out

    async def send(self, message: Message) -> None:
        if not message.address:
            raise DeliveryError(f"{message.recipient} has no e-mail address on {self.key}", permanent=True)
        mail = self.build(message, await self.images(message))
        try:
            await anyio.to_thread.run_sync(self._send_blocking, mail, abandon_on_cancel=True)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from exc

    def _send_blocking(self, mail: EmailMessage) -> None:
        opts: EmailOptions = self.options
        context = ssl.create_default_context()
        if not opts.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if opts.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(opts.host, opts.port or 465, timeout=opts.timeout, context=context)
        else:
            smtp = smtplib.SMTP(opts.host, opts.port or (587 if opts.security == "starttls" else 25), timeout=opts.timeout)
        with smtp:
            smtp.ehlo()
            if opts.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if opts.username:
                smtp.login(opts.username, self.password)
            refused = smtp.send_message(mail)
            if refused:
                raise DeliveryError(f"SMTP refused recipients: {refused}")


class MqttOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Python format string over recipient, channel, alarm_id, kind, category, unit.
    topic: str = "firebus/notify/{channel}"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False
    transport: str | None = None  # which MQTT transport of the site (when it has several)


class MqttChannel(Channel):
    """Publishes the message as JSON through the core's MQTT connection.

    The channel never opens a broker connection itself: it is handed a
    ``publish(topic, payload, qos, retain)`` coroutine function, so it stays
    independent of the broker client and shares the site's session.
    """

    type_key: ClassVar[str] = "mqtt"
    Options: ClassVar[type[msgspec.Struct]] = MqttOptions
    group: ClassVar[bool] = True

    def topic(self, message: Message) -> str:
        fields = {"recipient": message.recipient, "channel": message.channel, "alarm_id": message.alarm_id,
                  "kind": message.kind, "category": message.category, "unit": message.data.get("unit_id") or ""}
        try:
            return self.options.topic.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise DeliveryError(f"topic template {self.options.topic!r}: {exc}", permanent=True) from exc

    async def send(self, message: Message) -> None:
        publish = self.ctx.mqtt_publish
        if publish is None:
            raise DeliveryError("the core offers no MQTT publish (no MQTT transport configured?)")
        try:
            await publish(self.topic(message), json_body(message_json(message)), self.options.qos, self.options.retain)
        except DeliveryError:
            raise
        except Exception as exc:
            raise DeliveryError(f"MQTT publish: {type(exc).__name__}: {exc}") from exc
