"""``firebus sdk new NAME``: a plugin package that installs and passes its own tests as generated.

``new_package`` writes ``firebus-NAME/``: a pyproject with the entry point, ranges (never
pins) and package data, a manifest and a hook, a ``ModbusProfileDriver`` with its register
map, the contract suite and a test of a real core against a simulator, and a README.
The files are the templates in ``_files`` below (f-strings, dedented when written).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..manifest import API_VERSION
from .check import NAME_RE


def _files(name: str) -> dict[str, str]:
    mod = f"firebus_{name}"
    title = name.replace("_", " ").title()
    return {
        "pyproject.toml": f'''\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "firebus-{name.replace('_', '-')}"
            version = "0.1.0"
            description = "firebus plugin: {title} detectors over Modbus"
            readme = "README.md"
            requires-python = ">=3.11"
            # Ranges, never exact pins: the core and every plugin share one environment.
            dependencies = ["firebus>=0.1"]

            [project.optional-dependencies]
            test = ["pytest>=8", "anyio>=4.4"]

            [project.entry-points."firebus.plugins"]
            {name} = "{mod}"

            [tool.setuptools.packages.find]
            where = ["src"]

            [tool.setuptools.package-data]
            "{mod}.profiles" = ["*.yaml", "*.toml"]

            [tool.pytest.ini_options]
            testpaths = ["tests"]
            ''',
        f"src/{mod}/__init__.py": f'''\
            """firebus plugin: {title} detectors over Modbus (imports only ``firebus.sdk``)."""

            from __future__ import annotations

            from typing import Any

            from firebus.sdk import Manifest, hookimpl

            from .driver import {title.replace(" ", "")}Driver

            FIREBUS_MANIFEST = Manifest(
                name="{name}",
                description="{title} detectors over Modbus",
                requires_sdk=">={API_VERSION},<{int(API_VERSION.split('.')[0]) + 1}",
                point_classes=("residual_current", "temperature"),
                transports=("modbus_tcp", "modbus_rtu"),
            )


            @hookimpl
            def firebus_register_drivers(core: Any) -> list[type]:
                return [{title.replace(" ", "")}Driver]
            ''',
        f"src/{mod}/driver.py": f'''\
            """The {title} driver: the SDK's generic Modbus driver with this model's register map.

            Everything model-specific lives in ``profiles/{name}_detector.yaml``; override
            ``setup`` or ``poll`` only for what a register map cannot say.
            """

            from __future__ import annotations

            from firebus.sdk.modbus import ModbusProfileDriver, load_profile_resource


            class {title.replace(" ", "")}Driver(ModbusProfileDriver):
                type_key = "{name}.detector"
                profile = load_profile_resource("{mod}.profiles", "{name}_detector.yaml")
                poll_interval = 5.0
            ''',
        f"src/{mod}/profiles/__init__.py": "",
        f"src/{mod}/profiles/{name}_detector.yaml": f'''\
            # {title} detector register map (replace with the model's manual).
            # Holding registers (FC03), big-endian words.
            #  0x0000 residual current, uint16 mA   (0xFFFF: sensor fault)
            #  0x0001 temperature, int16 0.1 °C
            name: {name}_detector
            manufacturer: {title}
            model: detector
            points:
              - {{point_key: residual_current, point_class: residual_current, unit: mA, table: holding, address: 0x0000, dtype: uint16, sentinels: {{0xFFFF: sensor_fault}}}}
              - {{point_key: temperature, point_class: temperature, unit: "°C", table: holding, address: 0x0001, dtype: int16, scale: 0.1, precision: 1}}
            ''',
        "tests/conftest.py": '''\
            import pytest


            @pytest.fixture
            def anyio_backend() -> str:
                return "asyncio"  # firebus runs on asyncio
            ''',
        f"tests/test_{name}.py": f'''\
            """Contract suite (quality level) and a real core polling a simulated device."""

            from __future__ import annotations

            import pytest

            import {mod}
            from firebus.sdk import StateChanged
            from firebus.sdk.testing.contracts import ModbusDriverContract
            from {mod}.driver import {title.replace(" ", "")}Driver


            class Test{title.replace(" ", "")}Contract(ModbusDriverContract):
                driver_class = {title.replace(" ", "")}Driver
                manifest = {mod}.FIREBUS_MANIFEST
                plugin = {mod}
                options = {{"unit": 1}}
                values = {{"residual_current": 42, "temperature": 25.5}}


            @pytest.mark.anyio
            async def test_core_stores_readings(firebus_core, firebus_modbus_sim, firebus_recorder, firebus_site_yaml):
                async with firebus_modbus_sim({{1: {title.replace(" ", "")}Driver.profile}},
                                              values={{1: {{"residual_current": 42}}}}) as sim:
                    devices = ("  - {{key: det-1, driver: {name}.detector, transport: gw, location: room, "
                               "options: {{unit: 1, poll_interval: 0.1}}}}\\n")
                    site = firebus_site_yaml(modbus_port=sim.port, devices=devices)
                    async with firebus_core(site, plugins={{"{name}": {mod}}}) as core:
                        await firebus_recorder.wait_for(StateChanged, point_key="residual_current", new_value=42)
                        await core.storage.barrier()
                        rows = await core.storage.fetchall("SELECT value FROM readings")
                        assert 42 in [r[0] for r in rows]


            @pytest.mark.anyio
            async def test_plugin_is_listed_by_the_panel(firebus_core, firebus_panel_client, firebus_site_yaml):
                async with firebus_core(firebus_site_yaml(), plugins={{"{name}": {mod}}}) as core:
                    async with firebus_panel_client(core) as http:
                        listing = (await http.get("/api/plugins")).json()["items"]
                rows = {{row["name"]: row for row in listing}}
                assert rows["{name}"]["status"] == "loaded"
            ''',
        "README.md": f'''\
            # firebus-{name.replace('_', '-')}

            A firebus plugin: {title} detectors over Modbus RTU/TCP.

                pip install -e '.[test]'
                pytest                 # contract suite (quality level) + a real core against a simulator
                firebus sdk check .    # manifest, entry point, hooks, pins, profiles, tests

            Site file:

            ```yaml
            devices:
              - {{key: det-1, driver: {name}.detector, transport: gw, location: room, options: {{unit: 1}}}}
            ```

            The register map is `src/{mod}/profiles/{name}_detector.yaml`.
            See the firebus SDK guide (docs/sdk.md) for publishing.
            ''',
    }


def new_package(name: str, dest: str | Path = ".") -> Path:
    """Write ``firebus-NAME/`` under ``dest``; ``ValueError`` for a bad name or an existing folder."""
    if not NAME_RE.match(name):
        raise ValueError(f"plugin name {name!r}: use lowercase letters, digits and _ (e.g. acme)")
    root = Path(dest) / f"firebus-{name.replace('_', '-')}"
    if root.exists():
        raise ValueError(f"{root} already exists")
    for rel, body in _files(name).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body), encoding="utf-8")
    return root
