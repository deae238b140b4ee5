"""Video detector figures: CPU per analysed frame, streams per core, frame → event latency, FURG latency.

    .venv/bin/python bench/video.py [--seconds 30] [--eval-roboflow]

Prints one JSON object:

* ``decode``: PyAV decode of FURG house6 (426×240 H.264) in CPU ms per frame, and of a
  640×480 H.264 clip made from it (the camera resolution the targets assume);
* ``detector``: the built-in ``video.cpu`` detector's CPU ms per analysed 320×240 frame
  (process CPU time, ``time.process_time``, one thread), median and p90, on house6 frames;
  ``streams_per_core_at_10fps`` = 1000 / (10 × mean ms);
* ``worker``: the same frames through the out-of-process worker (``DetectorSupervisor``):
  submit → result latency (frame → event path) median / p90 / max;
* ``furg``: first flame event on house6 at 10 analysed fps, seconds after the first frame
  (every frame of house6 has flame boxes, so onset = 0 s);
* ``roboflow`` (``--eval-roboflow``): ``firebus video eval`` figures on the Roboflow frames
  exported as fire/ smoke/ none/ folders.  These frames are the training data: the honest
  frame-level figures are the nested cross-validation ones in the model's
  ``operating_point.json`` (also printed here as ``cross_validated``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FIREBUS_SHARED", ROOT.parent / "shared")) / "data" / "video"
FURG = DATA / "furg_fire_dataset" / "videos" / "house6.mp4"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


def decode_ms(path: Path) -> dict:
    frames = 0
    t0 = time.process_time()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "SLICE"  # one core: figures per core, not per machine
        for f in c.decode(s):
            f.to_ndarray(format="bgr24")
            frames += 1
    cpu = time.process_time() - t0
    return {"frames": frames, "cpu_ms_per_frame": round(cpu / frames * 1000, 3)}


def make_640(path: Path, out: Path) -> Path:
    with av.open(str(path)) as c, av.open(str(out), "w", format="mp4") as o:
        st = o.add_stream("libx264", rate=29)
        st.width, st.height, st.pix_fmt = 640, 480, "yuv420p"
        st.options = {"preset": "veryfast"}
        for f in c.decode(video=0):
            img = cv2.resize(f.to_ndarray(format="bgr24"), (640, 480))
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                o.mux(p)
        for p in st.encode():
            o.mux(p)
    return out


def furg_frames(seconds: float, fps: float = 10.0) -> list[tuple[float, np.ndarray]]:
    out, last = [], -1e9
    with av.open(str(FURG)) as c:
        for f in c.decode(video=0):
            t = float(f.time)
            if t > seconds:
                break
            if t - last >= 1 / fps - 1e-6:
                last = t
                out.append((t, f.to_ndarray(format="bgr24")))
    return out


def detector_cpu(frames: list[tuple[float, np.ndarray]]) -> tuple[dict, dict]:
    from firebus.plugins.video.cascade import CpuDetector
    from firebus.plugins.video.features import to_analysis
    from firebus.sdk.detector import EventKind, Label, Tracker

    cv2.setNumThreads(1)
    det = CpuDetector()
    tracker = Tracker("house6", confirms=True)
    analysis = [(t, to_analysis(img)) for t, img in frames]
    ms, first = [], None
    for t, img in analysis:
        c0 = time.process_time()
        dets = det.detect(img, 1_700_000_000.0 + t)
        ms.append((time.process_time() - c0) * 1000)
        for e in tracker.update(dets, 1_700_000_000.0 + t):
            if e.kind == EventKind.NEW and e.after.label == Label.FIRE and first is None:
                first = t
    warm = ms[5:] or ms
    mean = statistics.fmean(warm)
    cpu = {"frames": len(warm), "analysis_size": [320, 240], "cpu_ms_median": pct(warm, 50),
           "cpu_ms_p90": pct(warm, 90), "cpu_ms_mean": round(mean, 3),
           "streams_per_core_at_10fps": round(1000 / (10 * mean), 2)}
    furg = {"analysed_fps": 10, "first_flame_event_s": None if first is None else round(first, 2),
            "onset_s": 0.0, "seconds_played": round(frames[-1][0], 1) if frames else 0}
    return cpu, furg


def worker_latency(frames: list[tuple[float, np.ndarray]]) -> dict:
    from firebus.plugins.video.features import to_analysis
    from firebus.plugins.video.supervisor import DetectorSupervisor, SupervisorOptions

    cond = threading.Condition()
    got: dict[float, float] = {}

    def on_result(r) -> None:
        with cond:
            got[r.ts] = time.perf_counter()
            cond.notify_all()

    sup = DetectorSupervisor("bench", "firebus.plugins.video.cascade:CpuDetector", {},
                             SupervisorOptions(), on_result=on_result)
    sup.start()
    lat = []
    try:
        sid = sup.open_stream()
        warm = to_analysis(frames[0][1])
        sup.submit(sid, warm, 0.5)
        with cond:
            cond.wait_for(lambda: 0.5 in got, 60)
        for t, img in frames:
            a = to_analysis(img)
            ts = 1_700_000_000.0 + t
            t0 = time.perf_counter()
            sup.submit(sid, a, ts)
            with cond:
                cond.wait_for(lambda: ts in got, 10)
            if ts in got:
                lat.append((got[ts] - t0) * 1000)
            # pace at 10 analysed fps, as a camera would
            left = 0.1 - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)
        status = sup.status()
    finally:
        sup.stop()
    return {"frames": len(lat), "submit_to_result_ms_median": pct(lat, 50), "p90": pct(lat, 90),
            "max": round(max(lat), 3), "dropped": status.dropped_busy, "worker_mean_detect_ms": status.mean_ms}


def roboflow_eval() -> dict:
    import csv
    import shutil
    import subprocess

    base = DATA / "roboflow_cctv_fire_smoke_v8"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for lab in ("fire", "smoke", "none"):
            (root / lab).mkdir()
        with open(base / "manifest.csv", newline="") as fh:
            for k, r in enumerate(csv.DictReader(fh)):
                lab = {"negative": "none"}.get(r["frame_label"], r["frame_label"])
                os.symlink(base / r["path"], root / lab / f"{k}.jpg")
        code = "import sys; from firebus.core.cli import main; sys.exit(main(sys.argv[1:]))"
        out = subprocess.run([sys.executable, "-c", code, "video", "eval", str(root), "--json", "--no-progress"],
                             capture_output=True, text=True, timeout=3600)
        shutil.rmtree(root, ignore_errors=True)
    r = json.loads(out.stdout)
    return {k: r[k] for k in ("fire", "smoke", "any")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of house6 to analyse (≤ 31)")
    ap.add_argument("--eval-roboflow", action="store_true")
    args = ap.parse_args()
    from firebus.plugins.video.classifier import shipped

    meta = shipped().meta["training"]
    result: dict = {"bench": "video", "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                                "cpu": next((ln.split(":", 1)[1].strip() for ln in
                                             Path("/proc/cpuinfo").read_text().splitlines()
                                             if ln.startswith("model name")), platform.processor()),
                                "load_avg_1m": round(os.getloadavg()[0], 2)}}
    log("decode")
    with tempfile.TemporaryDirectory() as tmp:
        big = make_640(FURG, Path(tmp) / "house6_640.mp4")
        result["decode"] = {"house6_426x240_h264": decode_ms(FURG), "house6_640x480_h264": decode_ms(big)}
    frames = furg_frames(args.seconds)
    log(f"detector on {len(frames)} frames")
    result["detector"], result["furg"] = detector_cpu(frames)
    log("worker")
    result["worker"] = worker_latency(frames[:100])
    result["cross_validated"] = {h: {"nested": v["nested"], "oof_at_threshold": v["oof_at_threshold"],
                                     "threshold": v["threshold"]} for h, v in meta["heads"].items()}
    result["model_trained"] = meta["date"]
    if args.eval_roboflow:
        log("roboflow eval (training data: not a generalisation figure)")
        result["roboflow_training_frames"] = roboflow_eval()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
