"""``firebus demo``'s parts: a fresh database unless --keep, a scenario that repeats, a guide
in both languages, and only runtime system packages.  The whole demo, run from an installed
wheel to a fire alarm in the HTTP API, is tests/product/test_wheel.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from firebus.core.demo import (
    CYCLE_S,
    HYDRANT_EVENTS,
    MARKER,
    SITE,
    SMOKE_EVENTS,
    guide,
    prepare_data,
    repeated,
    scenario,
)
from firebus.core.sim.cli import looping_clock

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_site_and_scenarios_are_package_files() -> None:
    assert SITE.is_file() and SITE.parent.name == "examples"
    for plugin in ("leakage", "gas", "water"):
        assert scenario(plugin).is_file()


def test_a_fresh_start_empties_the_demo_folder(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert prepare_data(data, keep=False) is None
    (data / "firebus.db").write_bytes(b"old")
    (data / "broker").mkdir()
    assert prepare_data(data, keep=False) is None
    assert sorted(p.name for p in data.iterdir()) == [MARKER]


def test_keep_resumes_the_last_database(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    prepare_data(data, keep=False)
    (data / "firebus.db").write_bytes(b"last")
    assert prepare_data(data, keep=True) is None
    assert (data / "firebus.db").read_bytes() == b"last"


def test_a_folder_holding_other_files_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "thesis.docx").write_bytes(b"precious")
    problem = prepare_data(tmp_path, keep=False)
    assert problem and "thesis.docx" in problem and "--data" in problem
    assert (tmp_path / "thesis.docx").read_bytes() == b"precious"
    (tmp_path / "afile").write_text("x")
    assert "is a file" in (prepare_data(tmp_path / "afile", keep=False) or "")


def test_scripted_events_repeat_every_cycle() -> None:
    flags = repeated(["30:0:alarm:90", "120:2:tamper:60"], "--alarm", cycle=300, horizon=700)
    assert flags == ["--alarm", "30:0:alarm:90", "--alarm", "120:2:tamper:60",
                     "--alarm", "330:0:alarm:90", "--alarm", "420:2:tamper:60",
                     "--alarm", "630:0:alarm:90"]
    assert all(float(s.split(":")[0]) < CYCLE_S for s in SMOKE_EVENTS + HYDRANT_EVENTS)


def test_the_modbus_scenario_loops_and_forgets_writes() -> None:
    wall = [100.0]
    device = SimpleNamespace(written={("coil", 1): True}, write_log={"valve_close": [(140.0, True)]})
    sim = SimpleNamespace(devices={21: device})
    clock = looping_clock(300, 1.0, lambda: sim, now=lambda: wall[0])
    wall[0] = 250.0
    assert clock() == 150.0 and device.written  # first round: writes stand
    wall[0] = 100.0 + 310
    assert clock() == 10.0
    assert device.written == {} and device.write_log == {}  # a new round: the valve reopens


def test_the_guide_says_where_who_and_when_in_both_languages() -> None:
    text = guide("http://127.0.0.1:8080", ("demo", "pw-1"), resumed=False)
    assert "http://127.0.0.1:8080" in text and "demo / pw-1" in text
    assert "全新数据库" in text and "Fresh database" in text and "--keep" in text
    assert "火警" in text and "fire alarm" in text and "0:30" in text
    assert "repeats every 5 minutes" in text and "每 5 分钟" in text
    assert "Resumed" in guide("u", ("demo", "p"), resumed=True)


@pytest.mark.parametrize("mode, browser", [("runtime", False), ("test", True)])
def test_make_demo_needs_no_browser(mode: str, browser: bool) -> None:
    packages = subprocess.run(["bash", str(REPO / "scripts" / "ensure-system-deps.sh"), "--list", mode],
                              check=True, capture_output=True, text=True).stdout.split()
    assert "mosquitto" in packages
    assert ("chromium" in packages) is browser and ("chromium-driver" in packages) is browser
    dry = subprocess.run(["make", "-n", "demo"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    assert "ensure-system-deps.sh runtime" in dry and "ensure-system-deps.sh test" not in dry


def test_ctrl_c_while_the_demo_starts_stops_it_quietly(tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    data = tmp_path / "demo"
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
    proc = subprocess.Popen([sys.executable, "-m", "firebus.core.cli", "demo", "--port", "0", "--data", str(data)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not (data / "broker").exists():  # started: the broker's folder is being set up
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    text = log.read_text()
    assert code == 0 and "Traceback" not in text, text
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", leftovers
