"""SDK tests: a throwaway virtualenv with firebus installed for real (offline), as a vendor has it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


class Venv:
    """A venv whose site-packages hold a non-editable firebus; third-party packages come
    from the suite's environment through a .pth file, so nothing is downloaded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "venv" / "bin" / "python"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
        self.site = Path(subprocess.check_output(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
        (self.site / "_suite_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def install(self, target: Path | str) -> None:
        self.pip("install", "--no-deps", "--no-build-isolation", "--target", str(self.site), str(target))

    def pip(self, *args: str, cwd: Path | None = None) -> None:
        env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, env=env, cwd=cwd or self.root)

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FIREBUS_", "PYTEST_")) and k != "PYTHONPATH"}
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, env=env,
                              cwd=cwd or self.root, timeout=timeout)


@pytest.fixture(scope="session")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    venv = Venv(tmp_path_factory.mktemp("sdk-venv"))
    venv.install(REPO)
    return venv
