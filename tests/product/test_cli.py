"""The CLI as a new user meets it: one clear line per mistake, never a traceback (issue 23)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from firebus.core.cli import build_parser, main
from firebus.core.config import load_file

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "examples" / "site.yaml"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firebus.core.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_a_mistyped_config_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    done = run("user", "add", "wang", "--role", "duty_officer", "--unit", "school",
               "--config", str(tmp_path / "sit.yaml"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'sit.yaml'}: cannot read: No such file or directory"


def test_data_must_name_an_existing_database_unless_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "dta"
    assert main(["user", "list", "--data", str(typo)]) == 2
    err = capsys.readouterr().err
    assert "no site database at" in err and "--init" in err
    assert not typo.exists()  # nothing created
    assert main(["user", "add", "wang", "--role", "admin", "--data", str(typo), "--init"]) == 0
    assert (typo / "firebus.db").is_file()
    assert main(["user", "list", "--data", str(typo)]) == 0


def test_cli_times_are_in_the_site_timezone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: {timezone: Asia/Shanghai}\nstorage: {path: db/firebus.db}\nunits: [{key: school}]\n")
    assert main(["user", "add", "wang", "--role", "admin", "--config", str(site)]) == 0
    capsys.readouterr()
    assert main(["user", "list", "--config", str(site)]) == 0
    assert re.search(r"wang .* \d{4}-\d\d-\d\d \d\d:\d\d \+0800", capsys.readouterr().out)


def broken_site(tmp_path: Path) -> Path:
    text = SITE.read_text()
    edits = [
        ("  timezone: Asia/Shanghai\n", "  timezone: Asia/Shanghai\n  colour: red\n"),  # unknown field
        ("    transport: gw-electrical\n    location: b1_switch_room\n", "    location: b1_switch_room\n"),
        ("transport: gw-gas\n    location: kitchen_2", "transport: gw-gaz\n    location: kitchen_2"),
        ("poll_interval: 2\n      circuits: {residual_current: AP2", "poll_interval: fast\n      circuits: "
                                                                      "{residual_current: AP2"),
    ]
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_check_reports_every_error_with_file_line_and_field(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = broken_site(tmp_path)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    lines_of = {n + 1: line for n, line in enumerate(path.read_text().splitlines())}
    expected = [
        ("site.colour", "unknown field", "colour: red"),
        ("devices[0]", "polls over modbus_tcp or modbus_rtu: give it a transport", "key: al1_board"),
        ("devices[1].options.poll_interval", "got 'fast'", "poll_interval: fast"),
        ("devices[2].transport", "no transport with key 'gw-gaz'", "transport: gw-gaz"),
    ]
    for field, message, source in expected:
        found = [line for line in lines if f": {field}: " in line and message in line]
        assert found, (field, lines)
        where = re.match(rf"error: {re.escape(str(path))}:(\d+): ", found[0])
        assert where, found[0]
        assert source in lines_of[int(where.group(1))] or source in lines_of[int(where.group(1)) + 1], found[0]
    assert lines[-1] == f"{path}: 4 error(s)"


def test_a_modbus_device_without_transport_fails_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("units: [{key: u, buildings: [{key: b, floors: [{key: f, locations: [{key: room}]}]}]}]\n"
                    "devices:\n  - {key: rcm, driver: leakage.modbus, location: room, "
                    "options: {unit: 1, profile: generic_rcd4t}}\n")
    assert main(["check", str(site)]) == 2
    assert "devices[0]: driver 'leakage.modbus' polls over modbus_tcp or modbus_rtu: give it a transport" \
        in capsys.readouterr().err


def test_the_example_site_checks_clean() -> None:
    assert main(["check", str(SITE)]) == 0


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_sim_smoke_options_all_have_help() -> None:
    smoke = subcommands(subcommands(cli_parser())["sim"])["smoke"]
    bare = [a.option_strings[0] for a in smoke._actions if a.option_strings and not (a.help or "").strip()]
    assert bare == []


def test_hydrant_simulator_is_under_sim() -> None:
    commands = subcommands(cli_parser())
    assert "hydrant-sim" not in commands
    assert "hydrant" in subcommands(commands["sim"])


def cli_parser() -> argparse.ArgumentParser:
    from firebus.core import builtin
    from firebus.core.plugins import PluginHost

    host = PluginHost()
    host.register(builtin, name="core")
    host.load_entry_points()
    return build_parser(host)


def test_sim_list_shows_every_profile_the_example_site_uses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list"]) == 0
    listing = capsys.readouterr().out
    plugin_of = {"leakage.modbus": "leakage", "gas.modbus": "gas"}
    used = {f"{plugin_of[d.driver]}:{d.options['profile']}" for d in load_file(SITE).site.devices
            if d.driver in plugin_of}
    assert used >= {"leakage:generic_rcd4t", "leakage:acrel_arcm", "gas:point_detector"}
    for name in used | {"water:level_transmitter", "water:pressure_transmitter", "water:pump_controller"}:
        assert re.search(rf"^  {re.escape(name)} ", listing, re.M), name
