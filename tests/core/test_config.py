"""Site file: errors name file, line and field path; secrets come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebus.core.config import ConfigError, load_file, load_text

BASE = """\
site:
  name: Test school
units:
  - key: school
    buildings:
      - key: A
        floors:
          - key: A-1F
            level: 1
            locations:
              - {key: A-1F-kitchen, name: Kitchen}
transports:
  - key: line1
    type: modbus_tcp
    options: {host: 127.0.0.1, port: 5020}
devices:
  - key: rc-1
    driver: leakage.modbus
    transport: line1
    location: A-1F-kitchen
    options: {unit: 1}
"""


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(text, "site.yaml", env or {})
    return str(info.value)


def test_valid_file_loads() -> None:
    site = load_text(BASE, "site.yaml", {}).site
    assert site.site.name == "Test school"
    assert site.units[0].buildings[0].floors[0].locations[0].name == "Kitchen"
    assert site.devices[0].options == {"unit": 1}


def test_wrong_type_names_file_line_and_path() -> None:
    text = BASE.replace("location: A-1F-kitchen", "location: A-1F-kitchen\n    enabled: 50x")
    assert error_of(text) == "site.yaml:21: devices[0].enabled: expected bool, got '50x'"


def test_nested_wrong_type_in_places() -> None:
    text = BASE.replace("level: 1", "level: first")
    assert error_of(text) == "site.yaml:9: units[0].buildings[0].floors[0].level: expected int | null, got 'first'"


def test_unknown_field_points_at_the_key() -> None:
    text = BASE.replace("    transport: line1\n", "    transprt: line1\n")
    msg = error_of(text)
    assert msg.startswith("site.yaml:19: devices[0].transprt: unknown field")


def test_missing_required_field() -> None:
    text = BASE.replace("    driver: leakage.modbus\n", "")
    assert error_of(text) == "site.yaml:17: devices[0]: object missing required field driver"


def test_dangling_references_are_errors() -> None:
    assert error_of(BASE.replace("transport: line1", "transport: line9")) == (
        "site.yaml:19: devices[0].transport: no transport with key 'line9'"
    )
    assert "no unit/building/floor/location with key 'B-9F'" in error_of(BASE.replace("location: A-1F-kitchen", "location: B-9F"))


def test_duplicate_keys_are_errors() -> None:
    text = BASE + "  - key: rc-1\n    driver: leakage.modbus\n"
    assert error_of(text) == "site.yaml:22: devices[1].key: duplicate key 'rc-1' (first at devices[0])"


def test_yaml_syntax_error_has_a_line() -> None:
    assert error_of("units:\n  - key: [unclosed\n").startswith("site.yaml:3: YAML syntax")


def test_secrets_from_environment() -> None:
    text = BASE.replace(
        "options: {host: 127.0.0.1, port: 5020}",
        "options:\n      host: 127.0.0.1\n      port: ${MODBUS_PORT}\n      password: ${SECRET}",
    )
    site = load_text(text, "site.yaml", {"MODBUS_PORT": "5021", "SECRET": "s3cr3t"}).site
    assert site.transports[0].options == {"host": "127.0.0.1", "port": 5021, "password": "s3cr3t"}
    assert error_of(text, {"MODBUS_PORT": "1"}) == "site.yaml:18: environment variable SECRET is not set"
    defaulted = BASE.replace("options: {host: 127.0.0.1, port: 5020}", "options:\n      port: ${MODBUS_PORT:-502}")
    assert load_text(defaulted, "site.yaml", {}).site.transports[0].options["port"] == 502


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")


def test_example_site_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "site.yaml"
    site = load_file(example, env={}).site
    classes = {d.driver.split(".")[0] for d in site.devices}
    school = site.units[0]
    assert len(school.buildings) == 2
    assert {"leakage", "smoke", "gas", "water"} <= classes


def test_firebus_check_validates_with_plugins_and_reports_lines(tmp_path: Path) -> None:
    """The CLI loads the real plugins: driver options and the notify section are checked too."""
    import subprocess
    import sys

    example = Path(__file__).parents[2] / "examples" / "site.yaml"
    ok = subprocess.run([sys.executable, "-m", "firebus.core.cli", "check", str(example)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    text = example.read_text()
    broken = tmp_path / "site.yaml"
    broken.write_text(text.replace("unit: 12\n", "unit: twelve\n", 1))
    bad = subprocess.run([sys.executable, "-m", "firebus.core.cli", "check", str(broken)], capture_output=True, text=True)
    assert bad.returncode == 2
    line = text[: text.index("unit: 12\n")].count("\n") + 1
    assert f"{broken}:{line}: devices[1].options.unit" in bad.stderr, bad.stderr
    broken.write_text(text.replace("channels: [duty-room]", "channels: [nowhere]"))
    bad = subprocess.run([sys.executable, "-m", "firebus.core.cli", "check", str(broken)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert f"{broken}:" in bad.stderr and "notify.routes[0]" in bad.stderr, bad.stderr


def test_push_device_without_transport_is_a_config_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    text = (Path(__file__).parents[2] / "examples" / "site.yaml").read_text()
    broken = tmp_path / "site.yaml"
    broken.write_text(text.replace("driver: smoke.generic, transport: broker,", "driver: smoke.generic,", 1))
    bad = subprocess.run([sys.executable, "-m", "firebus.core.cli", "check", str(broken)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "devices[4]: driver 'smoke.generic' receives pushed messages: give it a transport" in bad.stderr, bad.stderr
