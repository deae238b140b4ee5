"""Signed alarm links: the URL in every alarm message that opens the alarm in the app.

The key is the core's secret ``links``, read once at start; a link names its
recipient (a firebus user name, or ``*`` for a group channel) and expires after
``links.ttl``.  ``with_link`` appends the link to a message whose template left
it out, so no alarm message goes without one.
"""

from __future__ import annotations

import logging
from typing import Any

from firebus.sdk import links

from .config import NotifyConfig

LINK_LABEL = {"zh": "查看告警：", "en": "Open the alarm: "}


class AlarmLinks:
    def __init__(self, core: Any, cfg: NotifyConfig, clock: Any, log: logging.Logger | Any) -> None:
        self.core = core
        self.cfg = cfg
        self.clock = clock
        self.log = log
        self._key: bytes | None = None  # core.secret("links"), read once at start

    async def load_key(self) -> None:
        if not self.cfg.links.base_url:
            return
        secret = getattr(self.core, "secret", None)
        if secret is None:
            self.log.error("notify: links.base_url is set but this core offers no secret(); messages carry no link")
            return
        self._key = await secret("links")

    def link(self, alarm_id: str, recipient: str) -> str:
        """The signed link that opens ``alarm_id`` in the app for ``recipient`` (a firebus user name,
        or ``*`` for a group channel), or "" when the site has no ``links.base_url``."""
        if self._key is None or not alarm_id or not self.cfg.links.base_url:
            return ""
        expires = self.clock.time() + self.cfg.links.ttl_s
        token = links.sign(self._key, alarm_id, recipient, expires)
        return self.cfg.links.base_url.rstrip("/") + links.link_path(token)


def with_link(text: str, url: str, language: str) -> str:
    """Every alarm message carries its link, whatever a site's template says (unless it has it already)."""
    if not url or url in text:
        return text
    return f"{text}\n{LINK_LABEL.get(language, LINK_LABEL['en'])}{url}"
