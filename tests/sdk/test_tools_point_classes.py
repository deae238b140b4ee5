"""``firebus sdk check`` runs the contract suites' point-class rule (issue 23: a plugin whose
point class was missing from its manifest passed ``check`` while its own contract test failed),
and ``--tests`` runs the suites themselves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from firebus.sdk.tools import check_package, main

from .conftest import REPO

ACME = REPO / "examples" / "firebus-acme"


@pytest.fixture
def acme_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "firebus-acme"
    shutil.copytree(ACME, dst, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return dst


def undeclare(acme: Path) -> None:
    """The profile keeps ``acme_alarm_output``; the manifest and the hook stop declaring it."""
    driver = acme / "src/firebus_acme/driver.py"
    driver.write_text(driver.read_text().replace('POINT_CLASSES = ("acme_alarm_output",)', "POINT_CLASSES = ()"))


def test_an_undeclared_point_class_fails_check(acme_copy: Path) -> None:
    undeclare(acme_copy)
    found = [str(p) for p in check_package(acme_copy).errors]
    assert any("acme.rcm200: point class 'acme_alarm_output' is not a firebus.sdk.PointClass" in e
               for e in found), found
    assert any(e.startswith("error: src/firebus_acme/profiles/acme_rcm200.yaml: profile: point class "
                            "'acme_alarm_output'") for e in found), found


def test_a_profile_file_with_an_unknown_point_class_fails_check(acme_copy: Path) -> None:
    profile = acme_copy / "src/firebus_acme/profiles/acme_rcm200.yaml"
    profile.write_text(profile.read_text().replace("point_class: fault", "point_class: transformer_trouble"))
    assert any("point class 'transformer_trouble'" in str(p) for p in check_package(acme_copy).errors)


def test_the_example_still_passes() -> None:
    assert check_package(ACME).problems == []


def test_check_tests_runs_the_contract_suite(acme_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Only the contract suite of the example (a core run is test_acme.py's job elsewhere).
    tests = acme_copy / "tests" / "test_acme.py"
    text = tests.read_text()
    tests.write_text(text[: text.index("def device(")])
    assert main(["sdk", "check", str(acme_copy), "--tests"]) == 0
    assert "ok: tests pass:" in capsys.readouterr().out
    # A failing test fails check --tests, named.
    (acme_copy / "tests" / "test_more.py").write_text(
        "def test_the_relay_is_inverted():\n    assert 1 == 2, 'relay polarity'\n")
    assert main(["sdk", "check", str(acme_copy), "--tests"]) == 1
    out = capsys.readouterr().out
    assert "error: tests/: FAILED tests/test_more.py::test_the_relay_is_inverted" in out, out
    assert "the plugin's tests fail: 1 failed" in out, out
