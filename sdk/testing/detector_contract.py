"""Contract suite for video detectors (``firebus.sdk.detector.VideoDetector``).

Subclass it in your plugin's tests, name the subclass ``Test…`` and set::

    from firebus.sdk.testing.detector_contract import VideoDetectorContract

    class TestAcmeFlame(VideoDetectorContract):
        detector_class = AcmeFlame
        options = {"model": "small"}
        # clips: (frames, timestamps step, labels that must be reported at some point)
        clips = [(fire_frames, 0.1, {"fire"}), (empty_frames, 0.1, set())]
        budget_ms = 50.0

Levels (printed as ``firebus quality: TestAcmeFlame: gold (n/n)``):

* bronze — the fixed shape: a namespaced ``type_key``, ``Options`` that round-trip, output
  that passes ``check_detections`` (a list of ``Detection``, labels ``fire|smoke``, scores
  in 0..1, boxes normalised and ordered) on every clip frame, and no exception on black,
  white, noise, 1×1, 2×2, odd-sized and large frames.
* silver — it recognises: every clip reports the labels it should (and a clip with no
  fire reports none), ``reset`` forgets the past, and the median time per frame at the
  analysis size stays within ``budget_ms``.
* gold — it behaves under the out-of-process worker: results come back through a real
  worker process; importing the detector's module does not import a heavy numeric stack
  into the host; and the supervisor detects and reports a worker that crashes, hangs,
  gets slow, or returns boxes outside the contract, restarting the first two — while
  ``submit`` never blocks the caller.

The gold checks drive your detector through :class:`ChaosDetector`, a wrapper that
misbehaves on purpose after a few frames; your detector itself is not modified.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar

import msgspec
import numpy as np
import pytest

from firebus.sdk.detector import (Detection, DetectionError, DetectorSetup, Label, NoDetectorOptions,
                                  VideoDetector, check_detections)

from .contracts import Level, level

HEAVY_MODULES = ("torch", "tensorflow", "onnxruntime", "jax", "paddle", "mxnet", "openvino", "tflite_runtime")


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def module_root(cls: type) -> str:
    """The folder a worker must have on its path to import ``cls``'s module (tests outside a package)."""
    mod = sys.modules[cls.__module__]
    path = os.path.abspath(getattr(mod, "__file__", "") or ".")
    for _ in cls.__module__.split("."):
        path = os.path.dirname(path)
    return path


def odd_frames(rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Frames every detector must survive without an exception."""
    rng = rng or np.random.default_rng(0)
    return {
        "black 240x320": np.zeros((240, 320, 3), np.uint8),
        "white 240x320": np.full((240, 320, 3), 255, np.uint8),
        "noise 240x320": rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
        "1x1": np.full((1, 1, 3), 128, np.uint8),
        "2x2": rng.integers(0, 256, (2, 2, 3), dtype=np.uint8),
        "odd 17x331": rng.integers(0, 256, (17, 331, 3), dtype=np.uint8),
        "tall 401x33": rng.integers(0, 256, (401, 33, 3), dtype=np.uint8),
        "large 720x1280": rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8),
    }


# --------------------------------------------------------------------------- the chaos wrapper


class ChaosMode(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    target: str = ""
    target_options: dict = {}
    #: none | crash | hang | slow | bad_boxes | raise
    mode: str = "none"
    #: frames answered normally before misbehaving
    after: int = 2
    slow_ms: float = 400.0
    #: crash / hang only in the first worker process (a file marks that it happened)
    once_marker: str = ""


class ChaosDetector(VideoDetector):
    """Wraps a detector and misbehaves on purpose (contract tests only)."""

    type_key = "contract.chaos"
    Options = ChaosMode

    def __init__(self, options: ChaosMode | None = None, setup: DetectorSetup | None = None) -> None:
        super().__init__(options, setup)
        o = self.options
        assert isinstance(o, ChaosMode)
        self.inner: VideoDetector | None = None
        if o.target:
            module, _, name = o.target.partition(":")
            cls = getattr(importlib.import_module(module), name)
            self.inner = cls(msgspec.convert(o.target_options, cls.Options), setup)
        self.frames = 0

    def _armed(self) -> bool:
        o = self.options
        assert isinstance(o, ChaosMode)
        if self.frames <= o.after:
            return False
        if o.once_marker:
            if os.path.exists(o.once_marker):
                return False
            with open(o.once_marker, "w") as fh:
                fh.write(str(os.getpid()))
        return True

    def detect(self, image: np.ndarray, ts: float) -> list[Detection]:
        self.frames += 1
        o = self.options
        assert isinstance(o, ChaosMode)
        out = self.inner.detect(image, ts) if self.inner is not None else []
        if o.mode == "slow":
            time.sleep(o.slow_ms / 1000.0)
        elif self._armed():
            if o.mode == "crash":
                os._exit(70)
            if o.mode == "hang":
                while True:
                    time.sleep(3600)
            if o.mode == "raise":
                raise RuntimeError("chaos: detect() failed on purpose")
            if o.mode == "bad_boxes":
                h, w = image.shape[:2]
                return [Detection(label=Label.FIRE, score=0.9, box=(10.0, 20.0, float(w), float(h)))]
        return out


class _Collector:
    """Results and faults from a supervisor, with waits on a condition (no sleeps)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.results: list[Any] = []
        self.faults: list[Any] = []

    def on_result(self, r: Any) -> None:
        with self.cond:
            self.results.append(r)
            self.cond.notify_all()

    def on_fault(self, f: Any) -> None:
        with self.cond:
            self.faults.append(f)
            self.cond.notify_all()

    def wait(self, pred: Any, timeout: float, feed: Any = None) -> bool:
        """Wait until ``pred()``; ``feed()`` (submitting frames) runs between short waits."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if feed is not None:
                    self.cond.release()
                    try:
                        feed()
                    finally:
                        self.cond.acquire()
                self.cond.wait(min(left, 0.05))
        return True

    def fault(self, kind: str, raised: bool = True) -> bool:
        return any(str(f.kind) == kind and f.raised == raised for f in self.faults)


# --------------------------------------------------------------------------- the suite


class VideoDetectorContract:
    """Subclass with ``detector_class``, ``options`` and ``clips``."""

    detector_class: ClassVar[type[VideoDetector]]
    options: ClassVar[dict[str, Any]] = {}
    #: (frames, seconds between frames, labels that must be reported at least once)
    clips: ClassVar[list[tuple[list[np.ndarray], float, set[str]]]] = []
    #: median milliseconds per analysis-size frame allowed
    budget_ms: ClassVar[float] = 100.0
    #: analysis frame size the host hands over (width, height)
    analysis_size: ClassVar[tuple[int, int]] = (320, 240)
    #: seconds the gold checks wait for a fault, a restart or a result
    wait_s: ClassVar[float] = 30.0
    setup: ClassVar[DetectorSetup] = DetectorSetup(camera="contract")

    # -- helpers ----------------------------------------------------------------------------

    def make(self) -> VideoDetector:
        cls = self.detector_class
        return cls(msgspec.convert(self.options, cls.Options), self.setup)

    def run_clip(self, det: VideoDetector, frames: list[np.ndarray], step: float,
                 t0: float = 1_700_000_000.0) -> list[list[Detection]]:
        out = []
        for i, f in enumerate(frames):
            got = det.detect(f, t0 + i * step)
            out.append(check_detections(got))
        return out

    def supervisor(self, options: dict[str, Any], collector: _Collector, **sup: Any) -> Any:
        from firebus.plugins.video.supervisor import DetectorSupervisor, SupervisorOptions

        base: dict[str, Any] = {"frame_timeout_s": 2.0, "start_timeout_s": 60.0, "backoff_initial_s": 0.2,
                "backoff_max_s": 1.0, "healthy_after_s": 0.5, "slow_window_s": 3.0, "slow_min_frames": 8,
                "max_streams": 2}
        base.update(sup)
        base.setdefault("pythonpath", [module_root(self.detector_class)])
        return DetectorSupervisor(f"contract-{self.detector_class.type_key}", class_path(ChaosDetector), options,
                                  SupervisorOptions(**base), on_result=collector.on_result,
                                  on_fault=collector.on_fault)

    def chaos(self, mode: str, **extra: Any) -> dict[str, Any]:
        return {"target": class_path(self.detector_class), "target_options": dict(self.options), "mode": mode,
                **extra}

    def sample_frame(self) -> np.ndarray:
        if self.clips and self.clips[0][0]:
            import cv2

            return cv2.resize(self.clips[0][0][0], self.analysis_size)
        return np.random.default_rng(1).integers(0, 256, (self.analysis_size[1], self.analysis_size[0], 3),
                                                 dtype=np.uint8)

    # -- bronze -----------------------------------------------------------------------------

    @level(Level.BRONZE)
    def test_declaration(self) -> None:
        cls = self.detector_class
        key = getattr(cls, "type_key", None)
        assert isinstance(key, str) and "." in key, "type_key must be a namespaced string (plugin.name)"
        assert issubclass(cls, VideoDetector), "subclass firebus.sdk.VideoDetector"
        assert isinstance(cls.Options, type) and issubclass(cls.Options, msgspec.Struct), "Options must be a msgspec Struct"
        opts = msgspec.convert(self.options, cls.Options)
        assert msgspec.convert(msgspec.to_builtins(opts), cls.Options) == opts, "Options do not round-trip"
        assert cls.Options is NoDetectorOptions or cls.Options.__struct_config__.forbid_unknown_fields, (
            "Options should forbid unknown fields (a typo in the site file must be an error)")

    @level(Level.BRONZE)
    def test_output_has_the_fixed_shape(self) -> None:
        assert self.clips, "give at least one clip"
        for frames, step, _ in self.clips:
            det = self.make()
            for i, f in enumerate(frames):
                try:
                    check_detections(det.detect(f, 1_700_000_000.0 + i * step))
                except DetectionError as exc:
                    pytest.fail(f"frame {i}: {exc}")

    @level(Level.BRONZE)
    def test_odd_frames_do_not_raise(self) -> None:
        det = self.make()
        problems = []
        for i, (name, frame) in enumerate(odd_frames().items()):
            try:
                check_detections(det.detect(frame, 1_700_000_000.0 + i * 0.1))
            except Exception as exc:  # noqa: BLE001 — the point of the check
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        assert not problems, "detect() failed on: " + "; ".join(problems)

    # -- silver -----------------------------------------------------------------------------

    @level(Level.SILVER)
    def test_clips_report_what_they_show(self) -> None:
        assert any(not want for _, _, want in self.clips), "add a clip with neither fire nor smoke"
        for k, (frames, step, want) in enumerate(self.clips):
            got = {str(d.label) for out in self.run_clip(self.make(), frames, step) for d in out}
            assert got == {str(w) for w in want}, f"clip {k}: reported {sorted(got)}, expected {sorted(want)}"

    @level(Level.SILVER)
    def test_reset_forgets_the_past(self) -> None:
        frames, step, _ = next(((f, s, w) for f, s, w in self.clips if w), self.clips[0])
        det = self.make()
        first = [[(d.label, d.box) for d in out] for out in self.run_clip(det, frames, step)]
        det.reset()
        again = [[(d.label, d.box) for d in out] for out in self.run_clip(det, frames, step)]
        assert first == again, "after reset() the same clip gives other detections"

    @level(Level.SILVER)
    def test_speed_budget(self) -> None:
        frame = self.sample_frame()
        det = self.make()
        for i in range(3):  # warm-up
            det.detect(frame, 1_700_000_000.0 + i * 0.1)
        times = []
        for i in range(15):
            t0 = time.perf_counter()
            det.detect(frame, 1_700_000_001.0 + i * 0.1)
            times.append((time.perf_counter() - t0) * 1000)
        med = float(np.median(times))
        assert med <= self.budget_ms, f"median {med:.1f} ms per {self.analysis_size} frame > budget {self.budget_ms} ms"

    # -- gold -------------------------------------------------------------------------------

    @level(Level.GOLD)
    def test_module_import_keeps_heavy_stacks_out(self) -> None:
        code = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
                f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code, self.detector_class.__module__], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        heavy = out.stdout.strip()
        assert not heavy, (f"importing {self.detector_class.__module__} imports {heavy}: import it inside "
                           "__init__ so it stays in the worker process")

    @level(Level.GOLD)
    def test_results_through_the_worker(self) -> None:
        c = _Collector()
        sup = self.supervisor(self.chaos("none"), c)
        frame = self.sample_frame()
        sup.start()
        try:
            sid = sup.open_stream(self.setup)
            n = [0]

            def feed() -> None:
                n[0] += 1
                sup.submit(sid, frame, 1_700_000_000.0 + n[0] * 0.1)

            assert c.wait(lambda: len(c.results) >= 3, self.wait_s, feed), (
                f"no results through the worker: {sup.status()}, faults {c.faults}")
            assert not c.faults, f"faults on a healthy run: {c.faults}"
        finally:
            sup.stop()

    def _misbehave(self, mode: str, fault: str, restarts: bool, tmp: str, **extra: Any) -> None:
        c = _Collector()
        marker = os.path.join(tmp, f"chaos-{mode}") if restarts else ""
        sup = self.supervisor(self.chaos(mode, once_marker=marker, **extra), c)
        frame = self.sample_frame()
        sup.start()
        try:
            sid = sup.open_stream(self.setup)
            n = [0]
            worst = [0.0]

            def feed() -> None:
                n[0] += 1
                t0 = time.perf_counter()
                sup.submit(sid, frame, 1_700_000_000.0 + n[0] * 0.1)
                worst[0] = max(worst[0], time.perf_counter() - t0)

            assert c.wait(lambda: c.fault(fault), self.wait_s, feed), (
                f"{mode}: no '{fault}' fault reported ({sup.status()}, faults {c.faults})")
            if restarts:
                first_pid = int(open(marker).read())
                got = len(c.results)
                assert c.wait(lambda: len(c.results) > got and sup.pid not in (None, first_pid), self.wait_s, feed), (
                    f"{mode}: the worker was not restarted ({sup.status()})")
                assert c.wait(lambda: c.fault(fault, raised=False), self.wait_s, feed), (
                    f"{mode}: the fault was not cleared after the restart ({sup.status()})")
            assert worst[0] < 0.05, f"submit() blocked the caller for {worst[0] * 1000:.0f} ms"
            if mode == "bad_boxes":
                for r in c.results:
                    check_detections(r.detections)
        finally:
            sup.stop()

    @level(Level.GOLD)
    def test_a_crashing_worker_is_reported_and_restarted(self, tmp_path: Any) -> None:
        self._misbehave("crash", "crashed", True, str(tmp_path))

    @level(Level.GOLD)
    def test_a_hanging_worker_is_reported_and_restarted(self, tmp_path: Any) -> None:
        self._misbehave("hang", "hung", True, str(tmp_path))

    @level(Level.GOLD)
    def test_a_slow_worker_drops_frames_and_is_reported(self, tmp_path: Any) -> None:
        self._misbehave("slow", "slow", False, str(tmp_path), slow_ms=300.0)

    @level(Level.GOLD)
    def test_boxes_outside_the_contract_are_withheld_and_reported(self, tmp_path: Any) -> None:
        self._misbehave("bad_boxes", "invalid_output", False, str(tmp_path))


__all__ = ["ChaosDetector", "ChaosMode", "HEAVY_MODULES", "VideoDetectorContract", "class_path", "odd_frames"]
