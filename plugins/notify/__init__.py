"""firebus notify plugin: alarm notifications with routing, escalation and a durable outbox.

Channel types (``firebus_register_notifiers``): ``webhook``, ``email``,
``mqtt``, ``sms``, ``wecom``, ``dingtalk``, ``feishu`` (group robots), ``wecom_app``,
``dingtalk_app``, ``feishu_app`` (app messages to named people), ``ntfy`` (a push stream
firebus serves itself) and ``webpush``.  The ``notify:``
section of the site file configures channels, people, routes and templates
(see ``docs/plugins/notify.md``).  Imports only ``firebus.sdk``.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import ActorKind, Context, Manifest, SiteProblem, hookimpl

from .channel import Channel
from .channels_http import SmsChannel, WebhookChannel
from .channels_other import EmailChannel, MqttChannel
from .channels_apps import DingTalkAppChannel, FeishuAppChannel, WeComAppChannel
from .channels_robots import DingTalkChannel, FeishuChannel, WeComChannel
from .config import NotifyConfig, NotifyConfigError, load_config
from .health import NotifyChannelChanged
from .message import DeliveryError, Message
from .ntfy import NtfyChannel
from .webpush import WebPushChannel
from .schema import NOTIFY_MIGRATIONS
from .service import NotifyService

FIREBUS_MANIFEST = Manifest(
    name="notify",
    description="Alarm notifications: e-mail, webhook, MQTT, SMS gateway, WeCom/DingTalk/Feishu robots and "
    "app messages, an ntfy-compatible push stream, web push; signed alarm links; role-based routing, "
    "escalation, durable outbox",
    documentation="docs/plugins/notify.md",
)

CHANNELS: list[type[Channel]] = [
    WebhookChannel,
    EmailChannel,
    MqttChannel,
    SmsChannel,
    WeComChannel,
    DingTalkChannel,
    FeishuChannel,
    NtfyChannel,
    WeComAppChannel,
    DingTalkAppChannel,
    FeishuAppChannel,
    WebPushChannel,
]

_services: "WeakKeyDictionary[Any, NotifyService]" = WeakKeyDictionary()

__all__ = [
    "CHANNELS", "Channel", "DeliveryError", "Message", "NotifyChannelChanged", "NotifyConfig",
    "NotifyConfigError", "NotifyService", "load_config", "service_for",
]


@hookimpl
def firebus_register_notifiers(core: Any) -> list[type]:
    return list(CHANNELS)


@hookimpl
def firebus_register_routes(core: Any) -> list[Any]:
    from .web import routes

    return routes(lambda: service_for(core))


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    return list(NOTIFY_MIGRATIONS)


def service_for(core: Any) -> NotifyService | None:
    """The running notify service of ``core`` (the panel reads channel health and the outbox through it)."""
    return _services.get(core)


def config_section(core: Any) -> dict[str, Any]:
    """The ``notify:`` section of the site file."""
    return core.plugin_config("notify") or {}


def notifier_types(core: Any) -> dict[str, type]:
    """Every notifier type the core knows (other plugins may add some), and ours."""
    known: dict[str, type] = {cls.type_key: cls for cls in CHANNELS}
    known.update(core.declared_types("notifier"))
    return known


def mqtt_publisher(core: Any, cfg: NotifyConfig) -> Any:
    """The core's MQTT publish, bound to the transport the MQTT channel names (if any)."""
    wanted = next((ch.options.get("transport") for ch in cfg.channels if ch.type == "mqtt"), None)

    async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if wanted is None:
            await core.mqtt_publish(topic, payload, qos, retain)
        else:
            await core.mqtt_publish(topic, payload, qos, retain, transport=wanted)

    return publish


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[SiteProblem]:
    """Refuse to start with an invalid ``notify:`` section, naming its line."""
    section = site.get("notify") or {}
    if not section:
        return []
    types: dict[str, type] = {cls.type_key: cls for cls in CHANNELS}
    if core is not None:
        types.update(core.declared_types("notifier"))
    try:
        load_config(section, types)
    except NotifyConfigError as exc:
        path, _, message = str(exc).partition(": ")
        if not path.startswith("notify"):
            path, message = "notify", str(exc)
        return [SiteProblem(path=path, message=message)]
    return []


async def start(core: Any, section: dict[str, Any] | None = None, **kwargs: Any) -> NotifyService | None:
    """Validate the section, subscribe and start the service in the core's task group."""
    section = config_section(core) if section is None else section
    if not section:
        return None  # the plugin is installed but the site does not notify anyone
    try:
        cfg = load_config(section, notifier_types(core))
        kwargs.setdefault("mqtt_publish", mqtt_publisher(core, cfg))
        service = NotifyService(core, cfg, notifier_types(core), **kwargs)
    except NotifyConfigError as exc:
        # The core only logs a failing startup hook; make it visible where alarms are watched too.
        logging.getLogger("firebus.plugin.notify").error("notify: not started: %s", exc)
        core.bus.publish(
            NotifyChannelChanged(channel="*", channel_type="config", state="down", reason=str(exc)),
            Context(actor=ActorKind.PLUGIN, actor_id="notify"),
        )
        raise
    service.subscribe()
    _services[core] = service
    core.start_task(service.run, name="notify")
    return service


@hookimpl
def firebus_startup(core: Any) -> Any:
    return start(core)


@hookimpl
def firebus_shutdown(core: Any) -> Any:
    service = _services.pop(core, None)
    if service is None:
        return None

    async def stop() -> None:
        service.stop()
        await service.stopped.wait()

    return stop()
