"""Federation: many sites, one centre, over NATS JetStream into PostgreSQL.

Site side (in the running core, section ``federation:`` of the site file): the
journal, read from a stored cursor, published to JetStream (``site``), and the
centre's commands applied to alarms (``site_commands``).  Centre
side (``firebus federation centre --pg DSN --nats URL``): durable pull
consumers writing into PostgreSQL (``centre``, ``schema``).  ``servers`` starts a
throw-away nats-server and PostgreSQL for tests and the bench.

nats-py and psycopg are imported only when federation is used (extra
``firebus[federation]``).  Imports only ``firebus.sdk``.  See docs/federation.md.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from firebus.sdk import Manifest, SiteProblem, hookimpl

from .config import FederationConfig, FederationConfigError, load_config

FIREBUS_MANIFEST = Manifest(
    name="federation",
    description="Site → centre replication of the journal over NATS JetStream; the centre stores on PostgreSQL",
    documentation="docs/federation.md",
)

_publishers: "WeakKeyDictionary[Any, Any]" = WeakKeyDictionary()
_commands: "WeakKeyDictionary[Any, Any]" = WeakKeyDictionary()

__all__ = ["FederationConfig", "FederationConfigError", "commands_for", "load_config", "publisher_for", "start"]


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[SiteProblem]:
    section = site.get("federation")
    if not section:
        return []
    try:
        load_config(section, getattr(core, "base_dir", None))
    except FederationConfigError as exc:
        return [SiteProblem(path=exc.path, message=f"{exc.en} / {exc.zh}")]
    return []


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    from .site_commands import MIGRATIONS

    return list(MIGRATIONS)


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)


def publisher_for(core: Any) -> Any:
    """The running site publisher of ``core`` (metrics, tests)."""
    return _publishers.get(core)


def commands_for(core: Any) -> Any:
    """The running consumer of the centre's commands of ``core`` (metrics, tests)."""
    return _commands.get(core)


async def start(core: Any, section: dict[str, Any] | None = None) -> Any:
    section = core.plugin_config("federation") if section is None else section
    if not section:
        return None
    cfg = load_config(section, getattr(core, "base_dir", None))
    try:
        import nats  # noqa: F401
    except ImportError:
        logging.getLogger("firebus.plugin.federation").error(
            "federation: not started: nats-py is missing (pip install 'firebus[federation]') / "
            "未启动：缺少 nats-py（pip install 'firebus[federation]'）")
        raise
    from .site import SitePublisher
    from .site_commands import SiteCommands

    pub = SitePublisher(core, cfg)
    pub.subscribe()
    _publishers[core] = pub
    core.start_task(pub.run, name="federation")
    cmds = _commands[core] = SiteCommands(core, cfg)
    core.start_task(cmds.run, name="federation-commands")
    return pub


@hookimpl
def firebus_startup(core: Any) -> Any:
    return start(core)


@hookimpl
def firebus_shutdown(core: Any) -> Any:
    pub = _publishers.pop(core, None)
    if pub is not None and pub.consumer is not None:
        pub.consumer.save()
    return None
