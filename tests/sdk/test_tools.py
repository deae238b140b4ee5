"""``firebus sdk check`` finds each kind of mistake with a clear message; ``sdk new`` output
installs into a fresh virtualenv and passes its own tests as generated."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path

import pytest

from firebus.sdk import API_VERSION
from firebus.sdk.tools import check_package, exact_pin, main, new_package, print_report

from .conftest import REPO, Venv

ACME = REPO / "examples" / "firebus-acme"


@pytest.fixture
def acme_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "firebus-acme"
    shutil.copytree(ACME, dst, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return dst


def errors(root: Path) -> list[str]:
    return [str(p) for p in check_package(root).errors]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_the_example_passes_and_its_report_says_what_was_checked(acme_copy: Path) -> None:
    report = check_package(acme_copy)
    assert report.problems == []
    out = io.StringIO()
    assert print_report(report, out) == 0
    text = out.getvalue()
    for what in ("entry point acme -> firebus_acme", "manifest: acme requires SDK >=1.0,<2",
                 "hooks: firebus_register_drivers, firebus_register_point_classes", "profiles: 1 parse",
                 "contract suite", "firebus sdk check passed"):
        assert what in text


def test_missing_entry_point(acme_copy: Path) -> None:
    edit(acme_copy / "pyproject.toml", 'acme = "firebus_acme"', "")
    assert any('no [project.entry-points."firebus.plugins"]' in e for e in errors(acme_copy))


def test_exact_pin_on_a_core_dependency(acme_copy: Path) -> None:
    edit(acme_copy / "pyproject.toml", '"firebus>=0.1"', '"firebus>=0.1", "pymodbus==3.7.0", "crcmod==1.7"')
    found = errors(acme_copy)
    assert any("'pymodbus==3.7.0' pins pymodbus exactly" in e for e in found), found
    assert not any("crcmod" in e for e in found)  # the core does not use it: the vendor's business


def test_exact_pin_parsing() -> None:
    assert exact_pin("paho-mqtt==2.1.0") == ("paho-mqtt", "==2.1.0")
    assert exact_pin("PyYAML ===6.0") == ("pyyaml", "===6.0")
    assert exact_pin("anyio>=4,<5") is None
    assert exact_pin("anyio==4.*") is None
    assert exact_pin("msgspec>=0.18,==0.18.6 ; python_version>'3.10'") == ("msgspec", "==0.18.6")


def test_manifest_excluding_this_sdk(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", 'requires_sdk=">=1.0,<2"', 'requires_sdk=">=2.0,<3"')
    assert any(f"requires_sdk '>=2.0,<3' excludes this SDK ({API_VERSION})" in e for e in errors(acme_copy))


def test_malformed_manifest_range(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", 'requires_sdk=">=1.0,<2"', 'requires_sdk="~1.0"')
    assert any("bad requires_sdk clause '~1.0'" in e for e in errors(acme_copy))


def test_missing_manifest(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", "FIREBUS_MANIFEST = Manifest(", "MANIFEST = Manifest(")
    assert any("no FIREBUS_MANIFEST" in e for e in errors(acme_copy))


def test_misspelled_hook(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", "def firebus_register_drivers(", "def firebus_register_driver(")
    assert any("firebus_register_driver is not a firebus hook" in e for e in errors(acme_copy))


def test_hook_with_an_argument_the_spec_does_not_have(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", "def firebus_register_drivers(core: Any)",
         "def firebus_register_drivers(core: Any, site: Any)")
    found = errors(acme_copy)
    assert any("hook signatures:" in e and "site" in e for e in found), found


def test_hook_parameter_with_a_default(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", "def firebus_register_drivers(core: Any)",
         "def firebus_register_drivers(core: Any = None)")
    assert any("must not have defaults" in e for e in errors(acme_copy))


def test_hook_without_the_marker(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/__init__.py", "@hookimpl\ndef firebus_register_point_classes",
         "def firebus_register_point_classes")
    assert any("firebus_register_point_classes is not decorated with @firebus.sdk.hookimpl" in e
               for e in errors(acme_copy))


def test_broken_import(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/driver.py", "from firebus.sdk.modbus import",
         "import firebus_acme_missing_dependency\nfrom firebus.sdk.modbus import")
    assert any("import failed: ModuleNotFoundError" in e for e in errors(acme_copy))


def test_bad_modbus_profile(acme_copy: Path) -> None:
    shutil.copy(acme_copy / "src/firebus_acme/profiles/acme_rcm200.yaml", acme_copy / "src/firebus_acme/profiles/b.yaml")
    edit(acme_copy / "src/firebus_acme/profiles/b.yaml", "dtype: int16, scale: 0.1", "dtype: int17, scale: 0.1")
    found = errors(acme_copy)
    assert any(e.startswith("error: src/firebus_acme/profiles/b.yaml:") and "int17" in e for e in found), found


def test_bad_json_payload_map(acme_copy: Path) -> None:
    (acme_copy / "src/firebus_acme/profiles/cloud.yaml").write_text(textwrap.dedent("""\
        name: acme_cloud
        topics: ["acme/+/up"]
        identity: []
        points: {rc: {path: data.rc, point_class: residual_current}}
        """))
    found = errors(acme_copy)
    assert any("cloud.yaml" in e and "identity must name at least one identifier" in e for e in found), found


def test_no_tests(acme_copy: Path) -> None:
    shutil.rmtree(acme_copy / "tests")
    assert any("no tests" in e for e in errors(acme_copy))


def test_cli_exit_codes(acme_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sdk", "check", str(acme_copy)]) == 0
    assert main(["sdk", "check", str(tmp_path / "nowhere")]) == 1
    assert "no pyproject.toml" in capsys.readouterr().out
    assert main(["sdk", "new", "Bad-Name", "--dest", str(tmp_path)]) == 2
    assert "use lowercase letters" in capsys.readouterr().err
    assert main(["sdk", "new", "tidy", "--dest", str(tmp_path)]) == 0
    assert main(["sdk", "new", "tidy", "--dest", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_new_package_installs_and_passes_its_own_tests(sdk_venv: Venv, tmp_path: Path) -> None:
    root = new_package("hotline", tmp_path)
    assert check_package(root).problems == []
    sdk_venv.install(root)
    result = sdk_venv.run("-m", "firebus.core.cli", "plugins", "--json")
    assert '"name": "hotline"' in result.stdout and '"status": "loaded"' in result.stdout, result.stdout
    # run from a copy of tests/ only, so the installed package is what gets imported
    shutil.copytree(root / "tests", tmp_path / "run" / "tests")
    result = sdk_venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=tmp_path / "run")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "13 passed" in result.stdout
    assert "firebus quality: TestHotlineContract: gold (11/11)" in result.stdout
    check = sdk_venv.run("-m", "firebus.sdk.tools", "sdk", "check", str(root))
    assert check.returncode == 0, check.stdout


def test_profile_that_is_not_yaml(acme_copy: Path) -> None:
    (acme_copy / "src/firebus_acme/profiles/c.yaml").write_text("name: [unclosed\n")
    assert any(e.startswith("error: src/firebus_acme/profiles/c.yaml: does not parse") for e in errors(acme_copy))


def test_declarations_are_checked(acme_copy: Path) -> None:
    edit(acme_copy / "src/firebus_acme/driver.py", 'type_key = "acme.rcm200"', 'type_key = "rcm200"')
    report = check_package(acme_copy)
    assert any("type_key 'rcm200' is not namespaced: use 'acme.rcm200'" in str(p) for p in report.problems)
    edit(acme_copy / "src/firebus_acme/__init__.py", "return [AcmeRcmDriver]", "return [AcmeRcmDriver, 42]")
    assert any("returned 42, which has no string type_key" in e for e in errors(acme_copy))


def test_profiles_left_out_of_the_wheel(acme_copy: Path) -> None:
    edit(acme_copy / "pyproject.toml", '"firebus_acme.profiles" = ["*.yaml"]', '"firebus_acme.profiles" = ["*.toml"]')
    assert any("profiles/acme_rcm200.yaml: not in the wheel" in e and '"firebus_acme.profiles" = ["*.yaml"]' in e
               for e in errors(acme_copy))
    edit(acme_copy / "pyproject.toml", '"firebus_acme.profiles" = ["*.toml"]', '"firebus_acme" = ["profiles/*.yaml"]')
    assert errors(acme_copy) == []


def test_new_package_with_an_underscore_name_checks_clean(tmp_path: Path) -> None:
    root = new_package("fire_pump", tmp_path)
    assert root.name == "firebus-fire-pump"
    assert check_package(root).problems == []
    assert "class FirePumpDriver(ModbusProfileDriver)" in (root / "src/firebus_fire_pump/driver.py").read_text()
