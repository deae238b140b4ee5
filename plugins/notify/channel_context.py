"""What a channel instance is given by the notify service (``firebus.sdk.notify.ChannelContext``).

Read through the service at each use, so a channel sees the HTTP client that
``NotifyService.run`` opens after the channels are made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .message import MqttPublish
from .ntfy import NtfyHub

if TYPE_CHECKING:
    from .media import NotifyMedia
    from .policy import SendPacer
    from .service import NotifyService


class NotifyChannelContext:
    def __init__(self, service: "NotifyService", key: str) -> None:
        self._service = service
        self._key = key
        self.logger = logging.getLogger(f"firebus.plugin.notify.{key}")

    def time(self) -> float:
        return self._service.clock.time()

    @property
    def http(self) -> Any:
        return self._service.http

    @property
    def mqtt_publish(self) -> MqttPublish | None:
        return self._service.mqtt_publish

    @property
    def storage(self) -> Any:
        """The core's storage (channels that keep state: the ntfy stream, web push subscriptions)."""
        return self._service.core.storage

    @property
    def service(self) -> "NotifyService":
        return self._service

    @property
    def ntfy_hub(self) -> NtfyHub:
        return self._service.ntfy_hub

    @property
    def pacer(self) -> "SendPacer | None":
        """The channel's request limit (``send_limit``), for requests beyond the message (a WeCom image)."""
        entry = self._service.channels.get(self._key)
        return entry.pacer if entry is not None else None

    @property
    def media(self) -> "NotifyMedia":
        """The alarm's media: ``read`` a still's bytes for an attachment (e-mail)."""
        return self._service.media
