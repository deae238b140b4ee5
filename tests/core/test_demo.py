"""README's promise: `firebus demo` runs the whole site — simulators, core, panel — and alarms flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from firebus.sdk.testing.mosquitto import free_port


@pytest.mark.slow
def test_demo_serves_the_panel_and_delivers_a_fire_alarm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "firebus.core.cli", "demo", "--port", str(port), "--data", str(tmp_path / "data")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + 90
        text = ""
        while "[duty-room display] 火警" not in text:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no fire alarm reached the duty room:\n{text[-3000:]}"
            time.sleep(0.5)
            text = log.read_text(errors="replace")
        assert "demo login: demo / " in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as response:
            assert b"<form" in response.read()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "the demo left its broker running"
