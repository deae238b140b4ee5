"""Start the real pieces a plugin test needs: a core, a Modbus simulator, a panel client.

This is test-time tooling shipped with the SDK.  Plugins themselves import only
``firebus.sdk``; the harness reaches into ``firebus.core`` (runtime, simulator,
web app), always lazily inside the functions, so importing the SDK (or loading
the pytest plugin) never imports the core.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

from firebus.sdk.modbus import ModbusProfile, load_profile

from .recorder import EventRecorder

#: A minimal place tree: devices go in location ``room``.
PLACES_YAML = """\
units:
  - key: site
    name: Test site
    buildings:
      - key: b
        name: Building
        floors:
          - key: f1
            name: F1
            locations:
              - {key: room, name: Room 101}
"""


def site_yaml(db: str | Path, *, transports: str = "", devices: str = "", extra: str = "") -> str:
    """A site file with a place tree, storage at ``db`` and the given YAML sections (already indented)."""
    out = f"storage: {{path: {db}}}\n" + PLACES_YAML
    if transports:
        out += "transports:\n" + transports
    if devices:
        out += "devices:\n" + devices
    return out + extra


def modbus_transport_yaml(key: str, port: int, *, host: str = "127.0.0.1", timeout: float = 0.5) -> str:
    """A ``modbus_tcp`` transport entry with short timeouts (a test waits seconds, not minutes)."""
    return (
        f"  - key: {key}\n    type: modbus_tcp\n"
        f"    options: {{host: {host}, port: {port}, timeout: {timeout}, retries: 0, "
        f"reconnect_delay: 0.1, reconnect_delay_max: 0.5}}\n"
    )


@asynccontextmanager
async def start_core(
    site: str,
    *,
    plugins: Mapping[str, object] | None = None,
    autoload: bool = False,
    clock: Any = None,
    recorder: EventRecorder | None = None,
    base_dir: Path | None = None,
) -> AsyncIterator[Any]:
    """A running core with only the plugins named in ``plugins`` (plus the core's own).

    Entry-point autoload is off unless asked for, so a test sees exactly the
    plugins it chose, whatever else is installed.  ``recorder`` is subscribed
    before anything starts, so it sees the first reading too.
    """
    from firebus.core.config import load_text
    from firebus.core.runtime import running_core

    async with running_core(
        load_text(site, "site.yaml"),
        extra_plugins=dict(plugins or {}),
        autoload=autoload,
        clock=clock,
        base_dir=base_dir,
        before_start=(lambda core: recorder.attach(core.bus)) if recorder is not None else None,
    ) as core:
        yield core


def as_profile(profile: ModbusProfile | str | Path) -> ModbusProfile:
    return profile if isinstance(profile, ModbusProfile) else load_profile(profile)


@asynccontextmanager
async def modbus_simulator(
    devices: Mapping[int, ModbusProfile | str | Path],
    *,
    values: Mapping[int, Mapping[str, Any]] | None = None,
    latency: float = 0.0,
    device_cls: type | None = None,
) -> AsyncIterator[Any]:
    """A real pymodbus TCP server on 127.0.0.1 (free port) serving ``{unit: profile}``.

    ``values`` sets point values per unit (engineering units, as the profile
    decodes them).  The yielded ``ModbusSimulator`` has ``port``,
    ``devices[unit].set(point, value)``, ``devices[unit].forced_silent = True``
    (the unit stops answering: a timeout) and ``requests`` (what was asked).
    ``device_cls`` is a ``SimDevice`` subclass for a unit that behaves unlike a
    register map (one that clamps a written value, say).
    """
    from firebus.core.sim.modbus import ModbusSimulator, SimDevice  # test-time only, see module doc

    cls = device_cls or SimDevice
    sim = ModbusSimulator([cls(unit, as_profile(p)) for unit, p in devices.items()], latency=latency)
    for unit, points in (values or {}).items():
        for key, value in points.items():
            sim.devices[unit].set(key, value)
    async with sim:
        yield sim


def open_connections(sim: Any) -> int:
    """Client connections the simulator currently holds (0 once every client has closed)."""
    server = getattr(sim, "_server", None)
    return len(getattr(server, "active_connections", {}) or {}) if server is not None else 0


@asynccontextmanager
async def panel_client(core: Any, *, role: str = "admin", units: Sequence[str] = ()) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to the core's panel app in process, logged in as ``role``."""
    import httpx

    from firebus.core.web import AuthStore, create_app

    auth = AuthStore(core.storage)
    name = f"sdk-test-{role}"
    if await auth.get_user(name) is None:
        await auth.create_user(name, role, units=list(units), password=os.urandom(12).hex() + "Aa1!")
    token, _ = await auth.create_token(name, label="firebus sdk test")
    app = create_app(core)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
