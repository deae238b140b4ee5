"""Camera faults on a real core: a killed detector worker, a camera that stops sending frames.

* Killing the worker process (SIGKILL) mid-stream makes the camera's ``detector_fault``
  point true — a fault alarm through the standard rules — and the supervisor starts a new
  worker; once it has answered for ``healthy_after_s`` the point and the alarm clear.
* An MJPEG camera (a real HTTP server) that keeps its connection open but stops sending
  frames is shown unavailable after ``stall_timeout_s``, which the offline rule turns into
  a communication-fault alarm; frames again clear it.
"""

from __future__ import annotations

import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator

import cv2
import numpy as np
import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.plugins import video
from firebus.plugins.video.camera import cameras_of
from firebus.sdk import AlarmCategory, Availability

from .camera_site import wait_until
from .conftest import write_clip

pytestmark = pytest.mark.anyio


class PausingMjpeg:
    """A real MJPEG server whose stream can be paused (connection held open, no frames)."""

    def __init__(self) -> None:
        self.flowing = threading.Event()
        self.flowing.set()
        self.closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=ffserver")
                self.end_headers()
                i = 0
                try:
                    while not outer.closing.is_set():
                        if not outer.flowing.wait(0.1):
                            continue
                        img = np.full((120, 160, 3), 60, np.uint8)
                        cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
                        data = cv2.imencode(".jpg", img)[1].tobytes()
                        self.wfile.write(b"--ffserver\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        i += 1
                        outer.closing.wait(0.1)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def site_yaml(db: Path, clip: Path, mjpeg: str) -> str:
    return f"""
site: {{name: Camera faults, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: plant-a
    name: Plant A
    buildings:
      - key: a-main
        name: Main hall
        floors: [{{key: a-f1, name: F1, level: 1, locations: [{{key: hall-a, name: Hall A}}]}}]
devices:
  - key: cam-kill
    driver: video.camera
    location: hall-a
    identifiers: {{serial: CAM-KILL-1}}
    options: {{url: "{clip}", loop: true,
               worker: {{healthy_after_s: 1, backoff_initial_s: 0.2, backoff_max_s: 1}}}}
  - key: cam-stall
    driver: video.camera
    location: hall-a
    identifiers: {{serial: CAM-STALL-1}}
    options: {{url: "{mjpeg}", stall_timeout_s: 1.0, analysis_fps: 5, timeout_s: 30}}
"""


def quiet_scene(path: Path, seconds: float = 4.0, fps: int = 10) -> Path:
    """A grey room with sensor noise and a dark shape walking across (no shared data needed)."""
    rng = np.random.default_rng(3)
    frames = []
    for i in range(int(seconds * fps)):
        f = np.full((240, 320, 3), 110, np.int16) + rng.normal(0, 3, (240, 320, 3)).astype(np.int16)
        f[120:200, 20 + i * 5: 50 + i * 5] = (60, 60, 70)
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return write_clip(path, frames, fps)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Any, PausingMjpeg]]:
    server = PausingMjpeg()
    loaded = load_text(site_yaml(tmp_path / "fb.db", quiet_scene(tmp_path / "quiet.mp4"), server.url), "site.yaml")
    try:
        async with running_core(loaded, extra_plugins={"video": video}, autoload=False) as core:
            yield core, server
    finally:
        server.close()


def _alarms(core: Any, device_id: str, category: AlarmCategory, active: bool = True) -> list[Any]:
    return [a for a in core.alarms.open_alarms()
            if a.device_id == device_id and a.category is category and a.active is active]


async def test_killing_the_worker_raises_a_detector_fault_and_the_worker_comes_back(running: Any) -> None:
    core, _ = running
    device = core.device_ids["cam-kill"]
    fault_point = core.registry.point(device, "detector_fault").id
    await wait_until(lambda: device in cameras_of(core), timeout=20)
    camera = cameras_of(core)[device]
    await wait_until(lambda: camera.counters["results"] >= 5, timeout=40)
    await wait_until(lambda: core.ingest.states.get(fault_point) is not None, timeout=10)
    assert core.ingest.states[fault_point].value is False
    first = camera.supervisor.pid
    os.kill(first, signal.SIGKILL)

    await wait_until(lambda: _alarms(core, device, AlarmCategory.FAULT), timeout=15)
    (alarm,) = _alarms(core, device, AlarmCategory.FAULT)
    assert alarm.point_id == fault_point
    assert core.ingest.states[fault_point].value is True

    # A new worker answers (new pid, results flow again), then the fault and its alarm clear.
    before = camera.counters["results"]
    await wait_until(lambda: camera.supervisor.pid not in (None, first) and camera.counters["results"] > before + 5,
                     timeout=40)
    await wait_until(lambda: core.ingest.states[fault_point].value is False, timeout=20)
    await wait_until(lambda: not _alarms(core, device, AlarmCategory.FAULT), timeout=10)
    assert camera.supervisor.status().restarts == 1
    assert camera.status()["detector_fault"] is False


async def test_a_stalled_camera_is_unavailable_and_raises_an_offline_fault(running: Any) -> None:
    core, server = running
    device = core.device_ids["cam-stall"]
    await wait_until(lambda: device in cameras_of(core), timeout=20)
    camera = cameras_of(core)[device]
    await wait_until(lambda: camera.state == "streaming" and camera.snapshot() is not None, timeout=20)
    assert core.availability.get(device) is Availability.AVAILABLE

    server.flowing.clear()  # connection open, no frames
    await wait_until(lambda: core.availability.get(device) is Availability.UNAVAILABLE, timeout=10)
    await wait_until(lambda: _alarms(core, device, AlarmCategory.OFFLINE), timeout=10)
    (alarm,) = _alarms(core, device, AlarmCategory.OFFLINE)
    assert "stalled" in alarm.message

    server.flowing.set()
    await wait_until(lambda: core.availability.get(device) is Availability.AVAILABLE, timeout=15)
    await wait_until(lambda: not _alarms(core, device, AlarmCategory.OFFLINE), timeout=10)
