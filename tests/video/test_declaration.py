"""The built-in detector is declared without numpy or OpenCV; the worker runs the real class."""

from __future__ import annotations

import subprocess
import sys

import msgspec
import pytest

from firebus.plugins.video.options import CpuDetectorDeclared
from firebus.sdk import DetectorDeclaration
from firebus.sdk.detector import worker_path


def test_loading_the_video_plugin_and_its_declarations_imports_no_numpy_or_opencv() -> None:
    code = (
        "import sys\n"
        "from firebus.core.plugins import PluginHost\n"
        "host = PluginHost()\n"
        "host.load_entry_points()\n"
        "host.collect_declarations(None)\n"
        "cls = host.lookup('detector', 'video.cpu')\n"
        "print(cls.__name__, sorted(m for m in ('numpy', 'cv2', 'av') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["CpuDetectorDeclared", "[]"]


def test_the_declaration_says_what_the_worker_class_is() -> None:
    from firebus.plugins.video.cascade import CpuDetector

    module, _, name = worker_path(CpuDetectorDeclared).partition(":")
    assert (module, name) == (CpuDetector.__module__, CpuDetector.__qualname__)
    assert CpuDetector.type_key == CpuDetectorDeclared.type_key
    assert CpuDetector.Options is CpuDetectorDeclared.Options
    assert CpuDetector.confirms is CpuDetectorDeclared.confirms
    # a detector class that detects by itself is its own worker class
    assert worker_path(CpuDetector) == "firebus.plugins.video.cascade:CpuDetector"


def test_a_declaration_without_a_module_and_class_is_refused_where_it_is_written() -> None:
    with pytest.raises(TypeError, match="worker_class must be 'package.module:Class'"):
        class Broken(DetectorDeclaration):  # noqa: F841 — the class statement itself raises
            type_key = "acme.broken"
            worker_class = "acme_detector"


def test_a_declaration_never_detects_in_the_core() -> None:
    class Declared(DetectorDeclaration):
        type_key = "acme.flame"
        Options = msgspec.Struct
        worker_class = "acme.flame:AcmeFlame"

    with pytest.raises(TypeError, match="only declares a detector; the worker runs acme.flame:AcmeFlame"):
        Declared(None).detect(None, 0.0)  # type: ignore[arg-type]
