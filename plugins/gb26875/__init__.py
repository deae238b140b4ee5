"""GB/T 26875.3-2011 city monitoring link (城市消防远程监控系统 报警传输网络通信协议).

Phase 2 (in the running core): the uplink (``uplink``: a journal consumer feeding
the UITD client, section ``gb26875.uplink`` of the site file), the ``gb26875.centre``
transport and the ``gb26875.gateway`` push driver (``centre``), the ``gb26875.fire`` rule.

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
    description="GB/T 26875.3-2011 city monitoring link: uplink to a monitoring centre from the journal, "
                "centre listener as a transport, codec, CLI and simulators",
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


# ------------------------------------------------------------------ phase 2: in the core

_uplinks: dict[int, Any] = {}


@hookimpl
def firebus_register_transports(core: Any) -> list[type]:
    from .centre import CentreTransport

    return [CentreTransport]


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    from .centre import GatewayDriver

    return [GatewayDriver]


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    from .centre import FireRule

    return [FireRule]


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    from .centre import POINT_CLASSES

    return list(POINT_CLASSES)


@hookimpl
def firebus_register_migrations(core: Any) -> list[Any]:
    from firebus.sdk import Migration

    from .uplink import MIGRATIONS_SQL

    return [Migration(component="gb26875", version=1, sql=MIGRATIONS_SQL,
                      description="uplink: stable device and point numbers (component addresses)")]


@hookimpl
def firebus_validate_site(core: Any, site: dict[str, Any]) -> list[Any]:
    """The ``gb26875:`` section, and the gateway devices' identifiers (file:line: field)."""
    from firebus.sdk import SiteProblem

    from .centre import GATEWAYS, GatewayDriver, gateway_addresses
    from .siteconfig import load_section, problem_path

    problems: list[Any] = []
    section = site.get("gb26875")
    if section is not None:
        if not isinstance(section, dict):
            problems.append(SiteProblem(path="gb26875", message="expected a mapping with an 'uplink' key"))
        else:
            try:
                load_section(section)
            except (ValueError, TypeError) as exc:  # msgspec.ValidationError is a ValueError
                import msgspec

                if isinstance(exc, msgspec.ValidationError):
                    path, message = problem_path(exc, "gb26875")
                else:
                    path, message = "gb26875", str(exc)
                problems.append(SiteProblem(path=path, message=message))
    for i, device in enumerate(site.get("devices") or []):
        if not isinstance(device, dict) or device.get("driver") != GatewayDriver.type_key:
            continue
        ident = (device.get("identifiers") or {}).get("gb26875")
        try:
            ok = isinstance(ident, str) and len(bytes.fromhex(ident)) == 6
        except ValueError:
            ok = False
        if not ok:
            problems.append(SiteProblem(
                path=f"devices[{i}].identifiers",
                message="a gb26875.gateway device needs identifiers.gb26875: its 6-byte address as 12 hex "
                        "digits in wire order (e.g. '790300000000' for address 889)"))
    GATEWAYS.clear()
    GATEWAYS.update(gateway_addresses(site))
    return problems


@hookimpl
def firebus_startup(core: Any) -> Any:
    from .siteconfig import load_section
    from .uplink import Uplink

    section = core.plugin_config("gb26875")
    if not section:
        return None
    cfg = load_section(section).uplink
    if cfg is None or not cfg.enabled:
        return None
    uplink = Uplink(core, cfg)
    _uplinks[id(core)] = uplink
    return uplink.start()


@hookimpl
def firebus_shutdown(core: Any) -> Any:
    uplink = _uplinks.pop(id(core), None)
    return uplink.stop() if uplink is not None else None


def uplink_for(core: Any) -> Any:
    """The running uplink of ``core`` (tests, the panel's duty-check answer), or None."""
    return _uplinks.get(id(core))
