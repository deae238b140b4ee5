"""Plugin loading: isolation of broken plugins, duplicate keys, manifests, real entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from firebus.sdk import API_VERSION
from firebus.core.plugins import PluginError, PluginHost, PluginStatus
from firebus.sdk import Manifest, NoOptions, PolledDriver, hookimpl, sdk_compatible

REPO = Path(__file__).parents[2]


def driver_class(key: str) -> type:
    return type(f"D_{key.replace('.', '_')}", (PolledDriver,), {"type_key": key, "Options": NoOptions, "transports": ()})


class Vendor:
    def __init__(self, *keys: str) -> None:
        self.keys = keys

    @hookimpl
    def firebus_register_drivers(self, core):
        return [driver_class(k) for k in self.keys]


def host() -> PluginHost:
    return PluginHost(autoload=False, strict=False)


def test_duplicate_type_keys_fail_start_up_naming_both_plugins() -> None:
    h = host()
    h.register(Vendor("acme.rc", "acme.temp"), name="acme")
    h.register(Vendor("acme.rc"), name="copycat")
    with pytest.raises(PluginError, match=r"duplicate driver type key 'acme.rc'.*'acme'.*'copycat'"):
        h.collect_declarations(None)


def test_a_raising_register_hook_unloads_only_that_plugin() -> None:
    class Broken:
        @hookimpl
        def firebus_register_drivers(self, core):
            raise RuntimeError("boom")

    h = host()
    h.register(Vendor("good.rc"), name="good")
    h.register(Broken(), name="broken")
    h.collect_declarations(None)
    assert h.lookup("driver", "good.rc").type_key == "good.rc"
    assert h.records["broken"].status is PluginStatus.FAILED
    assert "boom" in h.records["broken"].error
    assert h.records["good"].status is PluginStatus.LOADED


def test_declaration_without_type_key_is_a_plugin_failure() -> None:
    class NoKey:
        @hookimpl
        def firebus_register_drivers(self, core):
            return [object]

    h = host()
    h.register(NoKey(), name="nokey")
    h.collect_declarations(None)
    assert h.records["nokey"].status is PluginStatus.FAILED
    assert "type_key" in h.records["nokey"].error


def test_incompatible_sdk_range_is_refused_with_both_versions() -> None:
    class Future:
        FIREBUS_MANIFEST = Manifest(name="future", requires_sdk=">=2.0")

        @hookimpl
        def firebus_register_drivers(self, core):
            return [driver_class("future.rc")]

    h = host()
    record = h.register(Future(), name="future")
    assert record.status is PluginStatus.INCOMPATIBLE
    assert record.error == f"requires firebus SDK >=2.0, this core provides {API_VERSION}"
    h.collect_declarations(None)
    assert "future.rc" not in h.declarations["driver"]


def test_sdk_range_parsing() -> None:
    assert sdk_compatible(">=1.0,<2", "1.0")
    assert not sdk_compatible(">=1.1", "1.0")
    assert sdk_compatible("==1", "1.0.0")
    with pytest.raises(ValueError, match="bad requires_sdk clause"):
        sdk_compatible("~1.0", "1.0")


def test_bad_hook_signature_is_reported_not_raised() -> None:
    class Misspelled:
        @hookimpl
        def firebus_register_drivers(self, core, extra_argument):
            return []

    h = host()
    record = h.register(Misspelled(), name="misspelled")
    assert record.status is PluginStatus.FAILED
    assert "registration failed" in record.error


def test_strict_mode_turns_failures_into_errors() -> None:
    class Future:
        FIREBUS_MANIFEST = Manifest(name="future", requires_sdk=">=9")

    h = PluginHost(autoload=False, strict=True)
    with pytest.raises(PluginError, match="requires firebus SDK >=9"):
        h.register(Future(), name="future")


# -- real entry points installed in a temporary virtualenv ------------------------------------


def _write_plugin(root: Path, name: str, body: str) -> Path:
    pkg = root / name
    (pkg / name).mkdir(parents=True)
    (pkg / name / "__init__.py").write_text(textwrap.dedent(body))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "{name.replace('_', '-')}"
            version = "0.3.1"
            [project.entry-points."firebus.plugins"]
            {name} = "{name}"
            """
        )
    )
    return pkg


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with firebus installed non-editable (``pip install .``) plus two plugins.

    Third-party dependencies come from the suite's own environment through a
    .pth file, so no network is needed; firebus and the plugins are real installs.
    """
    root = tmp_path_factory.mktemp("plugin-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.check_output(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    deps = sysconfig.get_paths()["purelib"]
    (site / "_suite_deps.pth").write_text(deps + "\n")
    good = _write_plugin(
        root,
        "firebus_goodvendor",
        """
        from firebus.sdk import Manifest, NoOptions, PolledDriver, hookimpl
        FIREBUS_MANIFEST = Manifest(name="goodvendor", description="works")
        class Rc(PolledDriver):
            type_key = "goodvendor.rc"
            Options = NoOptions
            transports = ("modbus_tcp",)
        @hookimpl
        def firebus_register_drivers(core):
            return [Rc]
        """,
    )
    broken = _write_plugin(
        root,
        "firebus_brokenvendor",
        """
        import firebus_dependency_that_does_not_exist  # noqa: F401
        """,
    )
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    for pkg in (REPO, good, broken):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
             "--target", str(site), str(pkg)],
            check=True, env=env, cwd=root,
        )
    return venv


def _firebus(venv: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
    run_env.update(env or {})
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "firebus.core.cli", *args],
        capture_output=True, text=True, env=run_env, cwd=venv.parent,
    )


def test_installed_package_has_only_namespaced_imports(plugin_venv: Path) -> None:
    site = next((plugin_venv / "lib").glob("python*/site-packages"))
    top_level = {p.name for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", "__pycache__"))}
    assert "firebus" in top_level
    assert not {"core", "sdk", "plugins"} & top_level
    result = subprocess.run(
        [str(plugin_venv / "bin" / "python"), "-c",
         "import firebus.core.runtime, firebus.sdk, firebus.plugins, firebus.core\n"
         "print(firebus.core.__file__)"],
        capture_output=True, text=True, cwd=plugin_venv.parent,
    )
    assert result.returncode == 0, result.stderr
    assert str(site) in result.stdout  # the installed copy, not the source tree


def test_broken_entry_point_is_reported_and_others_still_load(plugin_venv: Path) -> None:
    result = _firebus(plugin_venv, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["firebus_goodvendor"]["status"] == "loaded"
    assert rows["firebus_goodvendor"]["version"] == "0.3.1"
    assert rows["firebus_goodvendor"]["distribution"] == "firebus-goodvendor"
    assert rows["firebus_goodvendor"]["hooks"] == ["firebus_register_drivers"]
    assert rows["firebus_brokenvendor"]["status"] == "failed"
    assert "firebus_dependency_that_does_not_exist" in rows["firebus_brokenvendor"]["error"]


def test_strict_env_makes_a_broken_plugin_fatal(plugin_venv: Path) -> None:
    result = _firebus(plugin_venv, "plugins", env={"FIREBUS_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert "firebus_brokenvendor" in result.stderr and "import failed" in result.stderr


def test_block_list_skips_a_plugin(plugin_venv: Path) -> None:
    result = _firebus(plugin_venv, "plugins", "--json", env={"FIREBUS_BLOCK_PLUGINS": "firebus_brokenvendor"})
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["firebus_brokenvendor"]["status"] == "blocked"
    assert rows["firebus_goodvendor"]["status"] == "loaded"
    result = _firebus(plugin_venv, "plugins", "--json", env={"FIREBUS_PLUGINS": "firebus_goodvendor"})
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["firebus_brokenvendor"]["status"] == "blocked"
