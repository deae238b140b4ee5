"""What ``firebus report`` needs from the site file, read without the core.

The same rules as the core's loader (core/config.py) for the parts used here:
``${NAME}`` / ``${NAME:-default}`` from the environment, ``storage.path``
relative to the site file's folder (default ``data/firebus.db``),
``site.timezone`` (default Asia/Shanghai), ``site.language``; plus
``alarms`` (threshold settings), the devices' names and the ``reports:`` section.
The site file is not validated here (``firebus check`` does that).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from .config import ReportsConfig, load_config

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DB_NAME = "firebus.db"


class SiteFileError(Exception):
    """The site file cannot be read; the message names the file and what is wrong."""


class SiteFacts(msgspec.Struct, frozen=True):
    path: str
    database: str
    timezone: str = "Asia/Shanghai"
    language: str = "zh"
    alarms: dict[str, Any] = {}
    device_names: dict[str, str] = {}
    reports: ReportsConfig = ReportsConfig()


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            got = os.environ.get(m.group(1))
            if got is None:
                if m.group(2) is None:
                    raise SiteFileError(f"environment variable {m.group(1)} is not set")
                return m.group(2)
            return got

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise SiteFileError(f"{name}: expected a mapping")
    return value


def read_site(path: str | Path) -> SiteFacts:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SiteFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SiteFileError(f"{path}: expected a mapping at the top")
    try:
        data = _expand(data)
    except SiteFileError as exc:
        raise SiteFileError(f"{path}: {exc}") from None
    site, storage = _section(data, "site"), _section(data, "storage")
    db = Path(str(storage.get("path") or "data/firebus.db"))
    if not db.is_absolute():
        db = path.parent / db
    names = {}
    for d in data.get("devices") or []:
        if isinstance(d, dict) and d.get("key") and d.get("name"):
            names[str(d["key"])] = str(d["name"])
    try:
        reports = load_config(_section(data, "reports"))
    except msgspec.ValidationError as exc:
        raise SiteFileError(f"{path}: reports: {exc}") from None
    return SiteFacts(str(path), str(db), str(site.get("timezone") or "Asia/Shanghai"), str(site.get("language") or "zh"),
                     _section(data, "alarms"), names, reports)


def database_path(data: str | None, db: str | None, facts: SiteFacts | None) -> Path:
    """--db PATH, else --data DIR (its firebus.db, or the file it names), else the site file's storage.path."""
    if db:
        return Path(db)
    if data:
        p = Path(data)
        return p / DB_NAME if p.is_dir() or not p.suffix else p
    if facts is not None:
        return Path(facts.database)
    raise SiteFileError("say where the site database is: --config SITE.yaml, --data DIR or --db PATH")
