"""firebus notify plugin: alarm notifications with routing, escalation and a durable outbox.

Channel types (``firebus_register_notifiers``): ``webhook``, ``email``,
``mqtt``, ``sms``, ``wecom``, ``dingtalk``, ``feishu``.  The ``notify:``
section of the site file configures channels, people, routes and templates
(see ``docs/plugins/notify.md``).  Imports only ``firebus.sdk``.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import ActorKind, Context, Manifest, hookimpl

from .channel import Channel
from .channels_http import SmsChannel, WebhookChannel
from .channels_other import EmailChannel, MqttChannel
from .channels_robots import DingTalkChannel, FeishuChannel, WeComChannel
from .config import NotifyConfig, NotifyConfigError, load_config
from .health import NotifyChannelChanged
from .message import DeliveryError, Message
from .schema import NOTIFY_MIGRATIONS
from .service import NotifyService

FIREBUS_MANIFEST = Manifest(
    name="notify",
    description="Alarm notifications: e-mail, webhook, MQTT, SMS gateway, WeCom/DingTalk/Feishu robots; "
    "role-based routing, escalation, durable outbox",
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
    """The ``notify:`` section of the site file.

    Preferred: ``core.plugin_config("notify")`` (requested from the core);
    until then the ``notify`` attribute of ``core.site``.
    """
    getter = getattr(core, "plugin_config", None)
    if callable(getter):
        return getter("notify") or {}
    site = getattr(core, "site", None)
    return dict(getattr(site, "notify", None) or {})


def notifier_types(core: Any) -> dict[str, type]:
    """Every notifier type the core knows (other plugins may add some), else ours."""
    known: dict[str, type] = {cls.type_key: cls for cls in CHANNELS}
    lookup = getattr(core, "notifier_types", None)
    if callable(lookup):
        known.update(lookup())
    else:  # interim: the core's plugin host (declarations of every loaded plugin)
        declared = getattr(getattr(core, "plugins", None), "declarations", {}) or {}
        for key, decl in (declared.get("notifier") or {}).items():
            known[key] = getattr(decl, "cls", decl)
    return known


def mqtt_publisher(core: Any, cfg: NotifyConfig) -> Any:
    """The core's MQTT publish function for the MQTT channel.

    Preferred: ``core.mqtt_publish(topic, payload, qos, retain)`` (requested
    from the core).  Until then: the ``publish`` of the site's MQTT transport
    named by the channel's ``transport`` option, or the only one there is.
    """
    direct = getattr(core, "mqtt_publish", None)
    if callable(direct):
        return direct
    transports = getattr(core, "transports", None) or {}
    wanted = [ch.options.get("transport") for ch in cfg.channels if ch.type == "mqtt"]
    candidates = [t for k, t in transports.items() if hasattr(t, "publish") and (k in wanted or None in wanted)]
    if not candidates:
        return None
    transport = candidates[0]

    async def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        await transport.publish(topic, payload, qos=qos, retain=retain)

    return publish


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
