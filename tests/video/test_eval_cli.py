"""``firebus video eval`` on small labelled folders made by the test (the real CLI, in a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import needs_roboflow, negative_clip, roboflow_frames



def firebus(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from firebus.core.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    for label, src, n in (("fire", "fire", 4), ("smoke", "smoke", 3), ("none", "negative", 4)):
        (root / label).mkdir(parents=True)
        for k, p in enumerate(roboflow_frames(src, n, offset=40)):
            shutil.copy(p, root / label / f"{k}{p.suffix}")
    return root


@needs_roboflow
def test_eval_json_on_label_folders(labelled: Path) -> None:
    negative_clip(labelled / "none" / "corridor.mp4", seconds=4)
    (labelled / "fire" / "broken.jpg").write_bytes(b"not a jpeg")
    from PIL import Image  # a GIF (OpenCV cannot read it; the Pillow fallback does)

    first = sorted((labelled / "fire").glob("0.*"))[0]
    Image.open(first).save(labelled / "fire" / "as.gif")
    first.unlink()
    r = firebus("video", "eval", str(labelled), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for key in ("fire", "smoke"):
        m = out[key]
        assert {"tpr", "fpr", "f1", "n_pos", "n_neg", "roc_auc", "threshold"} <= set(m)
    assert out["fire"]["n_pos"] == 4 and out["smoke"]["n_pos"] == 3
    assert out["fire"]["n_neg"] == out["smoke"]["n_neg"] == 4 + 40  # 4 images + a 4 s clip at 10 fps
    assert out["clips"]["fire"]["n_neg"] == 1 and out["clips"]["fire"]["fp_rate"] == 0.0
    assert [u["path"].endswith("broken.jpg") for u in out["unreadable"]] == [True]
    assert "评估 evaluating" in r.stderr  # the progress bar


@needs_roboflow
def test_eval_manifest_and_human_output(labelled: Path) -> None:
    rows = ["path,label,group"]
    for p in sorted(labelled.rglob("*.jpg")):
        rows.append(f"{p.relative_to(labelled)},{p.parent.name},g{p.stem}")
    (labelled / "manifest.csv").write_text("\n".join(rows) + "\n")
    r = firebus("video", "eval", str(labelled / "manifest.csv"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "火焰 fire" in r.stdout and "烟雾 smoke" in r.stdout and "工作点 operating point" in r.stdout
    assert r.stderr == ""


def test_bad_paths_and_manifests_exit_2_with_a_reason(tmp_path: Path) -> None:
    r = firebus("video", "eval", str(tmp_path / "nope"), "--json")
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "不存在" in r.stderr
    assert json.loads(r.stdout)["error"]["en"].endswith("no such file or folder")
    (tmp_path / "empty").mkdir()
    r = firebus("video", "eval", str(tmp_path / "empty"))
    assert r.returncode == 2 and "no fire/, smoke/ or none/ sub-folder" in r.stderr
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.csv").write_text("path,label\nx.jpg,burning\n")
    r = firebus("video", "eval", str(tmp_path / "m"))
    assert r.returncode == 2 and "manifest.csv:2: label 'burning'" in r.stderr
    assert "Traceback" not in r.stderr
