"""A cache of parsed site files: an unchanged file starts without YAML.

Parsing is most of a large site's cold start (10,000 devices: libyaml composes
~100 k nodes, seconds on a small box), and the file rarely changes between
starts.  What is cached is the document as Python data after ``${VAR}``
substitution — exactly what ``load_text`` would build — as msgpack, under a key
that covers everything it depends on:

* the file's bytes;
* the value (or absence) of every environment variable the file names;
* the firebus version and the shape of the site file's schema (``SiteConfig``).

The typed conversion and the cross-field checks still run on every start (they
are cheap); only the parse is skipped.  A document msgpack cannot carry exactly
(sets, odd YAML tags) is not cached.  The cache holds substituted values, so
secrets passed through the environment: files are created mode 0600 in a 0700
folder.  Any failure here (read-only home, a corrupt entry) only means the file
is parsed as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger("firebus.config")

#: entries kept (newest first); a box usually runs one site file.
KEEP = 8
ENV_DIR = "FIREBUS_CACHE_DIR"
ENV_OFF = "FIREBUS_NO_CONFIG_CACHE"


def cache_dir() -> Path | None:
    if os.environ.get(ENV_OFF):
        return None
    configured = os.environ.get(ENV_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "firebus" / "site"


@lru_cache(maxsize=1)
def _schema_fingerprint() -> bytes:
    from importlib.metadata import PackageNotFoundError, version

    from .config import SiteConfig

    try:
        release = version("firebus")
    except PackageNotFoundError:
        release = "source"
    schema = msgspec.json.encode(msgspec.json.schema(SiteConfig))
    return hashlib.sha256(release.encode() + b"\0" + schema).digest()


def key(text: str, env: dict[str, str]) -> str:
    from .config import _ENV

    h = hashlib.sha256(_schema_fingerprint())
    h.update(text.encode("utf-8"))
    for name in sorted({m.group(1) for m in _ENV.finditer(text)}):
        value = env.get(name)
        h.update(b"\0" + name.encode() + (b"\1" + value.encode("utf-8", "surrogateescape") if value is not None else b"\2"))
    return h.hexdigest()


def read(text: str, env: dict[str, str]) -> dict[str, Any] | None:
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"{key(text, env)}.msgpack"
    try:
        data = msgspec.msgpack.decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        log.debug("config cache: cannot read %s (%s); parsing the file", path, exc)
        return None
    if not isinstance(data, dict):
        return None
    try:
        os.utime(path)  # newest first when pruning
    except OSError:
        pass
    return data


def write(text: str, env: dict[str, str], raw: dict[str, Any]) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        blob = msgspec.msgpack.encode(raw)
        if msgspec.msgpack.decode(blob) != raw:
            return  # not carried exactly (sets, tuples, custom tags): parse each time
    except (TypeError, ValueError, msgspec.EncodeError):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, folder / f"{key(text, env)}.msgpack")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(folder)
    except OSError as exc:
        log.debug("config cache: cannot write in %s (%s)", folder, exc)


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.msgpack"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)
