"""The ``federation:`` section of the site file, as a typed Struct with named errors.

    federation:
      site_id: school-01                 # required; letters, digits, - and _ (a NATS subject token)
      servers: [nats://centre.example:4222]   # required; nats:// or tls:// URLs
      credentials: /etc/firebus/site.creds    # optional; a NATS .creds file (must exist)
      stream: FIREBUS                    # the JetStream stream the centre created
      max_unacked: 10000                 # entries in flight to NATS before telemetry waits in the journal
      ack_timeout_s: 5.0                 # a publish not acknowledged by then is sent again
      batch_max: 1000                    # journal entries per delivery to the publisher
      commands: [acknowledge, silence, clear]   # alarm actions the centre may ask for ([]: none)
      command_stream: FIREBUS_CMD        # the JetStream stream of centre → site commands
      command_max_age_s: 86400           # a command older than this when it arrives is refused
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

from firebus.sdk.core_api import AlarmAction

SUBJECT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DEFAULT_STREAM = "FIREBUS"


class FederationConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    site_id: str
    servers: list[str]
    credentials: str | None = None
    stream: str = DEFAULT_STREAM
    max_unacked: int = 10_000
    ack_timeout_s: float = 5.0
    batch_max: int = 1000
    commands: list[AlarmAction] = msgspec.field(default_factory=lambda: list(AlarmAction))
    command_stream: str = "FIREBUS_CMD"
    command_max_age_s: float = 24 * 3600.0


class FederationConfigError(ValueError):
    """``path: message`` (path like ``federation.servers[0]``), in English and Chinese."""

    def __init__(self, path: str, en: str, zh: str) -> None:
        super().__init__(f"{path}: {en}")
        self.path, self.en, self.zh = path, en, zh


def load_config(section: dict[str, Any], base_dir: str | Path | None = None) -> FederationConfig:
    if not isinstance(section, dict):
        raise FederationConfigError("federation", "must be a mapping", "必须是映射（键: 值）")
    try:
        cfg = msgspec.convert(section, FederationConfig)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = re.search(r"at `\$\.?([^`]*)`", msg)
        where = "federation" + (("." + m.group(1)) if m and m.group(1) and not m.group(1).startswith("[")
                                else (m.group(1) if m else ""))
        unknown = re.match(r"Object contains unknown field `([^`]*)`", msg)
        if unknown:
            raise FederationConfigError(f"{where}.{unknown.group(1)}" if where != "federation" else
                                        f"federation.{unknown.group(1)}",
                                        "unknown field (see docs/federation.md)",
                                        "未知字段（见 docs/federation.md）") from None
        missing = re.match(r"Object missing required field `([^`]*)`", msg)
        if missing:
            raise FederationConfigError(f"federation.{missing.group(1)}", "required",
                                        "必填") from None
        raise FederationConfigError(where, msg.split(" - at ")[0], "类型或取值不对：" + msg.split(" - at ")[0]) from None
    if not SUBJECT_TOKEN.match(cfg.site_id):
        raise FederationConfigError("federation.site_id",
                                    "1–64 letters, digits, '-' or '_' (it is a NATS subject token)",
                                    "1–64 个字母、数字、'-' 或 '_'（用作 NATS 主题的一段）")
    if not cfg.servers:
        raise FederationConfigError("federation.servers", "at least one server URL", "至少一个服务器地址")
    for i, url in enumerate(cfg.servers):
        if not re.match(r"^(nats|tls)://[^\s/]+(:\d+)?/?$", url):
            raise FederationConfigError(f"federation.servers[{i}]", f"not a nats:// or tls:// URL: {url!r}",
                                        f"不是 nats:// 或 tls:// 地址：{url!r}")
    if cfg.credentials is not None:
        path = Path(cfg.credentials)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file() or not os.access(path, os.R_OK):
            raise FederationConfigError("federation.credentials", f"no readable file {str(path)!r}",
                                        f"文件不存在或不可读：{str(path)!r}")
        cfg = msgspec.structs.replace(cfg, credentials=str(path))
    for key in ("stream", "command_stream"):
        if not STREAM_NAME.match(getattr(cfg, key)):
            raise FederationConfigError(f"federation.{key}", "1–32 letters, digits, '-' or '_'",
                                        "1–32 个字母、数字、'-' 或 '_'")
    if not cfg.command_max_age_s > 0:
        raise FederationConfigError("federation.command_max_age_s", "must be > 0 (seconds)", "必须 > 0（秒）")
    for name, low in (("max_unacked", 1), ("batch_max", 1)):
        if getattr(cfg, name) < low:
            raise FederationConfigError(f"federation.{name}", f"must be ≥ {low}", f"必须 ≥ {low}")
    if not cfg.ack_timeout_s > 0:
        raise FederationConfigError("federation.ack_timeout_s", "must be > 0 (seconds)", "必须 > 0（秒）")
    return cfg
