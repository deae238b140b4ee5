"""Camera sources against real inputs: a local file, and a local HTTP MJPEG / snapshot server."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2
import numpy as np

from firebus.plugins.video.ringbuf import RingBuffer, RingOptions
from firebus.plugins.video.sources import CameraOptions, CameraSource, CameraState, SourceKind

from .conftest import FURG, needs_furg, write_clip


class Events:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.frames: list = []
        self.analysed: list = []
        self.states: list[CameraState] = []

    def on_frame(self, f) -> None:
        with self.cond:
            self.frames.append(f)
            self.cond.notify_all()

    def on_analysis(self, f) -> None:
        with self.cond:
            self.analysed.append(f)
            self.cond.notify_all()

    def on_state(self, name, state, detail) -> None:
        with self.cond:
            self.states.append(state)
            self.cond.notify_all()

    def wait(self, pred, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(pred, timeout)


def frame(i: int) -> np.ndarray:
    f = np.full((120, 160, 3), 40, np.uint8)
    cv2.putText(f, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return f


class MjpegServer:
    """A real HTTP server on 127.0.0.1: /stream (multipart MJPEG at ~fps) and /snap.jpg."""

    def __init__(self, fps: float = 20.0, port: int = 0) -> None:
        self.fps = fps
        self.stop_event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/snap.jpg":
                    data = cv2.imencode(".jpg", frame(0))[1].tobytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=ffserver")
                self.end_headers()
                i = 0
                try:
                    while not outer.stop_event.is_set():
                        data = cv2.imencode(".jpg", frame(i))[1].tobytes()
                        self.wfile.write(b"--ffserver\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        i += 1
                        if outer.stop_event.wait(1.0 / outer.fps):
                            break
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_file_source_decimates_and_ends(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "count.mp4", [frame(i) for i in range(30)], fps=30)
    ev = Events()
    src = CameraSource("file", CameraOptions(url=str(path), analysis_fps=10, realtime=False),
                       on_frame=ev.on_frame, on_analysis=ev.on_analysis, on_state=ev.on_state)
    src.start()
    try:
        assert ev.wait(lambda: CameraState.ENDED in ev.states, 20), ev.states
    finally:
        src.stop()
    assert src.kind == SourceKind.FILE
    assert len(ev.frames) == 30
    assert 9 <= len(ev.analysed) <= 11  # 1 s of 30 fps at 10 analysed fps
    ts = [f.ts for f in ev.frames]
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert ev.states[:2] == [CameraState.CONNECTING, CameraState.STREAMING]


def test_mjpeg_over_http_reconnects_after_the_server_goes_away() -> None:
    server = MjpegServer(fps=20)
    port = server.port
    ev = Events()
    opts = CameraOptions(url=f"http://127.0.0.1:{port}/stream", analysis_fps=5, stall_timeout_s=1.0,
                         reconnect_initial_s=0.2, reconnect_max_s=0.5, timeout_s=2.0)
    src = CameraSource("mjpeg", opts, on_frame=ev.on_frame, on_analysis=ev.on_analysis, on_state=ev.on_state)
    src.start()
    try:
        assert ev.wait(lambda: len(ev.frames) >= 10, 20), (ev.states, src.last_error)
        assert src.kind == SourceKind.MJPEG and ev.frames[0].image.shape == (120, 160, 3)
        assert len(ev.analysed) < len(ev.frames)  # decimated
        server.close()
        assert ev.wait(lambda: CameraState.STALLED in ev.states, 20), ev.states
        n = len(ev.frames)
        server = MjpegServer(fps=20, port=port)  # the camera comes back on the same address
        assert ev.wait(lambda: len(ev.frames) > n + 5 and ev.states[-1] == CameraState.STREAMING, 30), (
            ev.states, src.last_error)
        assert src.counters["reconnects"] >= 1
    finally:
        src.stop()
        server.close()


def test_a_snapshot_url_is_polled() -> None:
    server = MjpegServer()
    ev = Events()
    src = CameraSource("snap", CameraOptions(url=f"http://127.0.0.1:{server.port}/snap.jpg",
                                             snapshot_interval_s=0.05), on_frame=ev.on_frame)
    src.start()
    try:
        assert ev.wait(lambda: len(ev.frames) >= 3, 20), src.last_error
        assert src.kind == SourceKind.SNAPSHOT
    finally:
        src.stop()
        server.close()


def test_an_unreachable_camera_keeps_retrying_without_crashing() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    ev = Events()
    src = CameraSource("dead", CameraOptions(url=f"http://127.0.0.1:{port}/stream", stall_timeout_s=0.5,
                                             reconnect_initial_s=0.1, reconnect_max_s=0.2, timeout_s=1.0),
                       on_state=ev.on_state)
    src.start()
    try:
        assert ev.wait(lambda: CameraState.STALLED in ev.states and src.counters["reconnects"] >= 2, 20)
        assert "cannot open" in src.last_error
    finally:
        src.stop()


@needs_furg
def test_ring_buffer_writes_the_still_and_a_clip_around_an_alarm(tmp_path: Path) -> None:
    ring = RingBuffer("house6", RingOptions(pre_s=1.0, post_s=1.0, clip_fps=10))
    done = threading.Event()
    got: list = []
    with av.open(str(FURG)) as c:
        for k, fr in enumerate(c.decode(video=0)):
            t = float(fr.time)
            ring.push(fr.to_ndarray(format="bgr24"), 1000.0 + t)
            if k == 60:  # the alarm at ~2 s
                alarm_ts = 1000.0 + t
                ring.request_clip(alarm_ts, tmp_path / "alarm.mp4", lambda info, err: (got.append((info, err)),
                                                                                       done.set()))
                still = ring.snapshot(alarm_ts)
            if t > 3.5:
                break
    assert done.wait(30), "clip not written"
    info, err = got[0]
    assert err == "" and info.codec in ("libx264", "mpeg4")
    assert 18 <= info.frames <= 22 and info.start_ts >= alarm_ts - 1.0 - 1e-6 and info.end_ts <= alarm_ts + 1.0
    with av.open(info.path) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert decoded == info.frames
    img = cv2.imdecode(np.frombuffer(still, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 426, 3)
