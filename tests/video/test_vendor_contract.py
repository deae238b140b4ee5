"""A vendor detector written against the SDK passes the contract suite; a flawed one fails where it should.

Both are real packages written to a temporary folder and tested by a separate pytest run,
as a vendor would run the suite in their own repository.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

GOOD = '''
import msgspec
import numpy as np
from firebus.sdk.detector import Detection, Label, VideoDetector


class RedOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    min_share: float = 0.01


class RedFlame(VideoDetector):
    """Bright red-orange pixels → fire (a toy, but it keeps the contract)."""

    type_key = "acme.red"
    Options = RedOptions

    def detect(self, image, ts):
        b, g, r = image[..., 0].astype(int), image[..., 1].astype(int), image[..., 2].astype(int)
        hot = (r > 200) & (g < 150) & (b < 90)
        share = float(hot.mean()) if hot.size else 0.0
        if share < self.options.min_share:
            return []
        ys, xs = np.nonzero(hot)
        h, w = hot.shape
        box = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
        return [Detection(label=Label.FIRE, score=min(1.0, share * 10), box=tuple(float(v) for v in box))]
'''

FLAWED = '''
import time
import numpy as np
import onnxruntime  # heavy stack imported at module level (a stub here)
from firebus.sdk.detector import Detection, Label, VideoDetector


class PixelFlame(VideoDetector):
    type_key = "acme.pixel"

    def detect(self, image, ts):
        time.sleep(0.12)                      # too slow for its budget
        corner = image[4, 4]                  # IndexError on tiny frames
        if image[..., 2].max() > 200:
            h, w = image.shape[:2]
            return [Detection(label=Label.FIRE, score=0.9, box=(10.0, 10.0, float(w), float(h)))]  # pixels
        return []
'''

SUITE = '''
import numpy as np
from firebus.sdk.testing.detector_contract import VideoDetectorContract
from {module} import {cls}


def clip(red):
    frames = []
    for i in range(12):
        f = np.full((240, 320, 3), 90, np.uint8)
        if red:
            f[100:160, 140:200] = (40, 100 + 5 * (i % 4), 240)
        frames.append(f)
    return frames


class TestVendor(VideoDetectorContract):
    detector_class = {cls}
    clips = [(clip(True), 0.1, {{"fire"}}), (clip(False), 0.1, set())]
    budget_ms = 50.0
    wait_s = 30.0
'''


def run_suite(tmp: Path, module: str, cls: str, source: str, deselect: str = "") -> dict[str, bool]:
    pkg = tmp / "acme_video"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / f"{module}.py").write_text(textwrap.dedent(source))
    stub = tmp / "onnxruntime"
    stub.mkdir(exist_ok=True)
    (stub / "__init__.py").write_text("# stand-in for a heavy numeric stack\n")
    test = tmp / f"test_{module}.py"
    test.write_text(SUITE.format(module=f"acme_video.{module}", cls=cls))
    xml = tmp / f"{module}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test), f"--junitxml={xml}",
           "--rootdir", str(tmp)]
    if deselect:
        cmd += ["-k", deselect]
    env = {"PYTHONPATH": str(tmp), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300, env=env)
    results = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        results[case.get("name")] = not failed
    assert results, out.stdout[-3000:] + out.stderr[-3000:]
    results["_output"] = out.stdout  # type: ignore[assignment]
    return results


def test_a_vendor_detector_passes_the_contract_suite(tmp_path: Path) -> None:
    r = run_suite(tmp_path, "good", "RedFlame", GOOD)
    out = r.pop("_output")
    assert all(r.values()), {k: v for k, v in r.items() if not v}
    assert len(r) == 12
    assert "firebus quality: TestVendor: gold (12/12)" in out


def test_a_flawed_detector_fails_in_the_expected_ways(tmp_path: Path) -> None:
    r = run_suite(tmp_path, "flawed", "PixelFlame", FLAWED, deselect="not worker")
    out = r.pop("_output")
    failed = {k for k, ok in r.items() if not ok}
    assert failed == {
        "test_output_has_the_fixed_shape",      # pixel boxes
        "test_odd_frames_do_not_raise",         # IndexError on 1x1 / 2x2
        "test_clips_report_what_they_show",     # its output never passes the checks
        "test_reset_forgets_the_past",          # same
        "test_speed_budget",                    # 120 ms > 50 ms
        "test_module_import_keeps_heavy_stacks_out",  # onnxruntime at module level
    }, r
    assert "test_declaration" in r and r["test_declaration"]
    assert "test_boxes_outside_the_contract_are_withheld_and_reported" in r
    assert "firebus quality: TestVendor: none" in out
