"""The out-of-process worker under the built-in detector: killed mid-stream, hanging, never stalling."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from firebus.plugins.video.supervisor import DetectorSupervisor, FaultKind, Submit, SupervisorOptions
from firebus.sdk.detector import DetectorSetup
from firebus.sdk.testing.detector_contract import _Collector, class_path, ChaosDetector

from .conftest import furg_frames, needs_furg

FAST = dict(frame_timeout_s=1.5, backoff_initial_s=0.2, backoff_max_s=1.0, healthy_after_s=0.5)


@needs_furg
def test_killing_the_worker_mid_stream_raises_a_fault_and_restarts_it() -> None:
    frames = [f for _, f in furg_frames(3.0)]
    c = _Collector()
    sup = DetectorSupervisor("cpu", "firebus.plugins.video.cascade:CpuDetector", {},
                             SupervisorOptions(**FAST), on_result=c.on_result, on_fault=c.on_fault)
    sup.start()
    try:
        sid = sup.open_stream(DetectorSetup(camera="house6"))
        k = [0]

        def feed() -> None:
            k[0] += 1
            sup.submit(sid, frames[k[0] % len(frames)], 1_700_000_000.0 + k[0] * 0.1)

        assert c.wait(lambda: len(c.results) >= 5, 60, feed), sup.status()
        first = sup.pid
        os.kill(first, signal.SIGKILL)
        assert c.wait(lambda: c.fault("crashed"), 10, feed), c.faults
        crash = next(f for f in c.faults if f.kind == FaultKind.CRASHED)
        assert "SIGKILL" in crash.detail
        n = len(c.results)
        assert c.wait(lambda: len(c.results) > n + 3 and sup.pid not in (None, first), 60, feed), sup.status()
        assert c.wait(lambda: c.fault("crashed", raised=False), 10, feed), c.faults
        st = sup.status()
        assert st.restarts == 1 and st.faults == [] and st.state == "running"
    finally:
        sup.stop()


def test_a_hanging_worker_is_detected_killed_and_frames_never_wait(tmp_path) -> None:
    c = _Collector()
    marker = str(tmp_path / "hung-once")
    sup = DetectorSupervisor("hang", class_path(ChaosDetector), {"mode": "hang", "after": 2, "once_marker": marker},
                             SupervisorOptions(**FAST), on_result=c.on_result, on_fault=c.on_fault)
    img = np.zeros((240, 320, 3), np.uint8)
    sup.start()
    try:
        sid = sup.open_stream()
        worst = [0.0]
        k = [0]

        def feed() -> None:
            k[0] += 1
            t0 = time.perf_counter()
            sup.submit(sid, img, float(k[0]))
            worst[0] = max(worst[0], time.perf_counter() - t0)

        assert c.wait(lambda: c.fault("hung"), 20, feed), (sup.status(), c.faults)
        hung_pid = int(open(marker).read())
        assert c.wait(lambda: sup.pid not in (None, hung_pid) and len(c.results) > 3, 20, feed), sup.status()
        with pytest.raises(ProcessLookupError):
            os.kill(hung_pid, 0)  # the hung worker was killed, not left behind
        assert not c.fault("slow"), "a hung worker is reported as hung, not slow"
        assert worst[0] < 0.05, f"submit blocked for {worst[0] * 1000:.0f} ms"
        assert sup.status().dropped_busy > 0
    finally:
        sup.stop()


def test_bad_frames_are_rejected_and_counted() -> None:
    sup = DetectorSupervisor("rej", class_path(ChaosDetector), {}, SupervisorOptions(max_frame_bytes=1000))
    try:
        sid = sup.open_stream()
        assert sup.submit(sid, np.zeros((10, 10), np.uint8), 0.0) == Submit.REJECTED
        assert sup.submit(sid, np.zeros((10, 10, 3), np.float32), 0.0) == Submit.REJECTED
        assert sup.submit(sid, np.zeros((100, 100, 3), np.uint8), 0.0) == Submit.REJECTED  # > one slot
        assert sup.submit(sid, np.zeros((10, 10, 3), np.uint8), 0.0) == Submit.DROPPED_DOWN  # not started
        st = sup.status()
        assert st.rejected == 3 and st.dropped_down == 1
    finally:
        sup.stop()
        sup.stop()  # idempotent


def test_a_failed_start_is_a_fault_with_the_reason() -> None:
    c = _Collector()
    sup = DetectorSupervisor("nope", "no.such.module:Detector", {}, SupervisorOptions(**FAST),
                             on_fault=c.on_fault)
    sup.start()
    try:
        assert c.wait(lambda: c.fault("start_failed"), 30)
        f = next(f for f in c.faults if f.kind == FaultKind.START_FAILED)
        assert "No module named 'no'" in f.detail
    finally:
        sup.stop()
