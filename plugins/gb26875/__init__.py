"""GB/T 26875.3-2011 city monitoring link (城市消防远程监控系统 报警传输网络通信协议).

Phase 1: the codec (``codec``, ``model``, ``tables``, ``jsonfmt``), the stream framer
(``framer``), the asyncio session layer used by both roles (``session``), the centre
listener (``server``) and the UITD client (``client``), the ``firebus gb26875`` CLI and
the ``firebus sim uitd`` / ``firebus sim centre`` simulators.  The codec imports nothing
but the standard library and msgspec, so other tools can use it on its own::

    from firebus.plugins.gb26875.codec import decode, encode

See docs/plugins/gb26875.md.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="gb26875",
    description="GB/T 26875.3-2011 city monitoring link: codec, framer, session, centre listener, "
                "UITD client, CLI and simulators",
    documentation="docs/plugins/gb26875.md",
)


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)


@hookimpl
def firebus_register_simulators(sim: Any) -> None:
    from .sim import add_simulators

    add_simulators(sim)
