"""The product as a user installs it: build the wheel, install it (not editable) into a fresh
venv, run ``firebus demo`` from an unrelated folder until a fire alarm shows in the HTTP API,
then stop it with Ctrl-C.

Nothing is downloaded: the wheel is built with the suite's setuptools (no build isolation)
and firebus' dependencies come from the suite's site-packages through a folder of links
that leaves out every ``firebus`` file, so only the wheel can provide ``firebus``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from firebus.core.backup import backups_in, verify
from firebus.sdk.testing.mosquitto import free_port

REPO = Path(__file__).resolve().parents[2]


def source_copy(dst: Path) -> Path:
    """The checkout's files as git sees them (tracked or new, not ignored): no build/ leftovers."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


def build_wheel(tmp: Path) -> tuple[Path, str]:
    src = source_copy(tmp / "src")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("firebus-*.whl")
    return wheel, done.stdout + done.stderr


def deps_overlay(dst: Path) -> Path:
    """Links to everything in the suite's site-packages except firebus itself."""
    dst.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("firebus", "__editable__", "_suite_")) or name.endswith(".pth"):
            continue
        (dst / entry.name).symlink_to(entry)
    return dst


class Demo:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert self.proc.poll() is None, f"the demo exited:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}"
            time.sleep(0.2)


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_the_wheel_installs_and_its_demo_raises_a_fire_alarm(tmp_path: Path) -> None:
    wheel, build_log = build_wheel(tmp_path)
    # Metadata setuptools accepts without deprecation warnings (issue 23).
    warnings = sorted({m for m in re.findall(r"\b\w*(?:Deprecation|Backend)Warning\b.*", build_log)})
    assert not warnings, warnings

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    tops = {n.split("/")[0] for n in names}
    assert "firebus" in tops and all(n.endswith(".dist-info") for n in tops - {"firebus"}), tops
    assert not any(n.split("/")[0] in ("core", "sdk", "plugins", "examples", "tests") for n in names)
    for shipped in ("firebus/examples/site.yaml", "firebus/plugins/leakage/profiles/demo.scenario.yaml",
                    "firebus/plugins/gas/profiles/demo.scenario.yaml",
                    "firebus/plugins/water/profiles/demo.scenario.yaml", "firebus/core/web/templates/login.html"):
        assert shipped in names, f"{shipped} not in the wheel"
    assert not any("firebus-acme" in n or "/tests/" in n for n in names)
    assert "License-Expression: Apache-2.0" in metadata
    # Every committed package (folder with __init__.py) is listed in pyproject.toml's packages.
    tracked = subprocess.run(["git", "ls-files", "core", "sdk", "plugins"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.split()
    missing = [f"firebus/{n}" for n in tracked if n.endswith("/__init__.py") and f"firebus/{n}" not in names]
    assert not missing, f"packages left out of the wheel (add them to pyproject.toml): {missing}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "_suite_deps.pth").write_text(f"{deps_overlay(tmp_path / 'deps')}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FIREBUS_", "PYTEST_", "VIRTUAL_ENV")) and k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "-q", "install", "--no-deps",
                    "--no-index", str(wheel)], check=True, env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    where = json.loads(subprocess.check_output([str(python), "-c", (
        "import json, importlib.metadata as m, firebus.core;"
        "print(json.dumps([firebus.core.__file__, str(m.distribution('firebus').locate_file(''))]))")],
        text=True, env=env, cwd=tmp_path))
    assert all(p.startswith(str(venv)) for p in where), where

    work = tmp_path / "elsewhere"  # not the checkout: nothing may be found relative to it
    work.mkdir()
    port = free_port()
    log = tmp_path / "demo.log"
    proc = subprocess.Popen([str(venv / "bin" / "firebus"), "demo", "--port", str(port), "--data", "demo-data"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=work)
    demo = Demo(proc, log)
    try:
        demo.wait_for(r"demo login: demo / \S+", timeout=60)
        demo.wait_for(r"Panel:\s+http://", timeout=10)
        assert "Fresh database" in demo.text() and "全新数据库" in demo.text()
        token = subprocess.run([str(venv / "bin" / "firebus"), "token", "create", "demo", "--label", "wheel-test",
                                "--data", "demo-data"], capture_output=True, text=True, env=env, cwd=work,
                               timeout=60)
        assert token.returncode == 0, token.stderr
        raw = token.stdout.strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60  # the scenario's first fire alarm is at 30 s
        fire: list[dict] = []
        while not fire:
            assert proc.poll() is None, demo.text()[-3000:]
            assert time.monotonic() < deadline, f"no fire alarm in the API:\n{demo.text()[-3000:]}"
            status, body = get(f"{base}/api/alarms?status=all&category=fire", raw)
            assert status == 200
            fire = json.loads(body)["items"]
            if not fire:
                time.sleep(0.5)
        demo.wait_for(r"\[duty-room display\] 火警", timeout=30)  # and notify delivered it
        # The example site's `backup:` line: the first copy is taken when the core starts.
        demo.wait_for(r"backup: \S+firebus-\S+\.db \(.*integrity ok\)", timeout=30)
        (copy,) = backups_in(work / "demo-data" / "backups")
        assert verify(copy)["core"] >= 1
        assert get(f"{base}/api/health")[0] == 200
        assert b"<form" in get(f"{base}/login")[1]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    text = demo.text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and "AttributeError" not in text, text[-3000:]
    sims = (work / "demo-data" / "simulators.log").read_text(errors="replace")
    assert "Traceback" not in sims, sims[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", str(work / "demo-data")], capture_output=True, text=True).stdout
    assert leftovers.strip() == "", "the demo left a process running"
