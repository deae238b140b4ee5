"""examples/firebus-acme: an external vendor package, built as a wheel and installed next to
firebus in a fresh virtualenv, is discovered and run by an unchanged core and earns its level."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, Venv

ACME = REPO / "examples" / "firebus-acme"


@pytest.fixture(scope="module")
def acme_venv(sdk_venv: Venv, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    src = tmp_path_factory.mktemp("acme-src") / "firebus-acme"
    shutil.copytree(ACME, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "dist"))
    dist = src.parent / "dist"
    subprocess.run([sys.executable, "-m", "pip", "-q", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(src)], check=True, env={**os.environ, "PIP_NO_INDEX": "1"})
    wheel = next(dist.glob("firebus_acme-1.2.0-*.whl"))
    sdk_venv.install(wheel)
    return sdk_venv


def test_the_core_discovers_the_installed_plugin(acme_venv: Venv) -> None:
    result = acme_venv.run("-m", "firebus.core.cli", "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    acme = rows["acme"]
    assert acme["status"] == "loaded", acme
    assert (acme["version"], acme["distribution"]) == ("1.2.0", "firebus-acme")
    assert acme["hooks"] == ["firebus_register_drivers", "firebus_register_point_classes"]
    assert acme["requires_sdk"] == ">=1.0,<2"
    # the copy in the venv, not the source tree
    where = acme_venv.run("-c", "import firebus_acme, firebus.sdk; print(firebus_acme.__file__, firebus.sdk.__file__)")
    assert str(acme_venv.site) in where.stdout and str(REPO) not in where.stdout


RUN_SITE = """
import anyio
from firebus.core.runtime import running_core
from firebus.core.sim.modbus import ModbusSimulator, SimDevice
from firebus.sdk.modbus import load_profile_resource

async def main():
    profile = load_profile_resource("firebus_acme.profiles", "acme_rcm200.yaml")
    device = SimDevice(3, profile)
    device.set("residual_current", 212)
    device.set("temperature", 36.5)
    sim = ModbusSimulator([device])
    async with sim:
        site = f'''
storage: {{path: acme.db}}
units: [{{key: u, buildings: [{{key: b, floors: [{{key: f, locations: [{{key: room}}]}}]}}]}}]
transports:
  - {{key: gw, type: modbus_tcp, options: {{host: 127.0.0.1, port: {sim.port}, timeout: 0.5, retries: 0}}}}
devices:
  - {{key: rcm, driver: acme.rcm200, transport: gw, location: room, options: {{unit: 3, poll_interval: 0.1}}}}
'''
        async with running_core(site) as core:  # autoload on: entry points, as on a site
            with anyio.fail_after(30):
                while True:
                    await core.storage.barrier()
                    rows = dict(await core.storage.fetchall(
                        "SELECT p.key, r.value FROM readings r JOIN points p ON p.id = r.point_id"))
                    if {"residual_current", "temperature"} <= set(rows):
                        break
                    await anyio.sleep(0.05)
            print(rows)

anyio.run(main)
"""


def test_a_site_runs_the_plugin_against_the_modbus_simulator(acme_venv: Venv, tmp_path: Path) -> None:
    result = acme_venv.run("-c", RUN_SITE, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    stored = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 — our own script's dict
    assert stored["residual_current"] == 212
    assert stored["temperature"] == 36.5


def test_its_own_tests_pass_with_the_contract_suite_at_gold(acme_venv: Venv, tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    shutil.copytree(ACME / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    result = acme_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "firebus quality: TestAcmeRcm200Contract: gold (11/11)" in result.stdout


def test_sdk_check_passes(sdk_venv: Venv) -> None:
    result = sdk_venv.run("-m", "firebus.sdk.tools", "sdk", "check", str(ACME))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "firebus sdk check passed" in result.stdout
