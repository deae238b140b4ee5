"""The web panel, the HTTP API and access control (firebus.core.web).

Entry points for the runner:

* ``WEB_MIGRATIONS``: the ``web`` tables; apply them with the core's migrations.
* ``await ensure_first_admin(core.storage)``: on first start creates ``admin`` and
  returns its one-time password (None afterwards) for the runner to print.
* ``await task_group.start(serve, core, host, port)``: the panel and API.
* ``await demo_credentials(core.storage)``: ``firebus demo``'s admin and a fresh password.
* ``create_app(core)``: the Starlette app alone (tests, embedding).
* ``add_web_commands(subparsers)``: ``firebus user …`` and ``firebus token …``.
"""

from __future__ import annotations

from firebus.sdk import hookimpl

from .app import create_app
from .auth import WEB_MIGRATIONS, AuthStore, Role, demo_credentials, ensure_first_admin
from .cli import add_web_commands
from .server import WebServer, serve

__all__ = [
    "WEB_MIGRATIONS",
    "AuthStore",
    "Role",
    "WebServer",
    "add_web_commands",
    "create_app",
    "demo_credentials",
    "ensure_first_admin",
    "serve",
    "web_plugin",
]


class _WebPlugin:
    """Registers the web tables through the plugin hook, for cores that do not list
    ``WEB_MIGRATIONS`` themselves (tests: ``extra_plugins={"web": web_plugin}``)."""

    @hookimpl
    def firebus_register_migrations(self, core):  # noqa: ANN001 - pluggy hook
        return list(WEB_MIGRATIONS)


web_plugin = _WebPlugin()
