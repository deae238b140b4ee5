"""Cold start with a large registry: process start → API serving and MQTT subscribed; memory.

    .venv/bin/python bench/coldstart.py --devices 10000 --json

Each start is a fresh Python process (imports included) running the real core
(SQLite, registry, alarm engine with every default rule, MQTT transport to a
real Mosquitto) and the real web app (uvicorn + Starlette).  Times are
measured by this parent from just before it spawns the process:

* ``first_start_s``: an empty database and a site file with N devices — the
  registry is created (every device resolved and written);  the run then gives
  each device 4 points with a latest value, through the registry and ingest;
* ``serving_s`` (the figure): a restart on that database — until
  ``GET /api/health`` answers 200 to this parent; ``subscribed_s``: until the
  core reported started with its MQTT session connected and subscribed (the
  core subscribes before the web server starts, so it is ≤ ``serving_s``);
* ``serving_without_config_cache_s``: the same restart with the parsed-site-file cache
  off (``FIREBUS_NO_CONFIG_CACHE=1``), i.e. parsing the YAML as before the cache;
* ``rss_mb``: resident memory of the restarted core process at steady state;
  ``registry_rss_mb``: minus the same process with 0 devices; ``after_values_rss_mb``:
  the first start's process once every point has had a value (what a site that has run
  a while holds: every point's PointInfo, rule plan and guards);
* ``installed_plugins``: the same restart with every installed plugin loaded as well, as
  ``firebus run`` does (the figures above load only the bench's own driver plugin):
  ``serving_s``, ``rss_mb``, how many plugins, and which heavy libraries (numpy, OpenCV,
  PyAV, matplotlib, WeasyPrint, …) start-up imported although no camera or report runs;
* ``cpu_s`` (per run): CPU time of the core process until it served (all its threads),
  less sensitive than wall time to other load on the box.

Every start runs with compiled bytecode (written by the first start into the run's
folder), as an installed firebus does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HERE, PYTHON, emit, machine, progress, site_yaml  # noqa: E402

from firebus.sdk.testing.mosquitto import Mosquitto, free_port  # noqa: E402


class CoreProcess:
    def __init__(self, site: Path, populate: int = 0, *, config_cache: bool = True,
                 installed_plugins: bool = False) -> None:
        self.port = free_port()
        self.lines: list[dict] = []
        self.t0 = time.time()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
        # The parsed-site-file cache of this run only (the first start writes it).
        env["FIREBUS_CACHE_DIR"] = str(site.parent / "config-cache")
        # Compiled bytecode, as an installed firebus has it (pip compiles on install): the
        # first start compiles into this run's folder, restarts load it.  Without it a
        # PYTHONDONTWRITEBYTECODE environment (CI, this VM) made every start compile the
        # ~100 firebus modules of an editable install again: 0.15 s of each restart.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(site.parent / "pycache")
        if not config_cache:
            env["FIREBUS_NO_CONFIG_CACHE"] = "1"
        self.proc = subprocess.Popen(
            [PYTHON, str(HERE / "_coldstart_core.py"), str(site), "--t0", repr(self.t0), "--port", str(self.port),
             "--populate", str(populate), *(["--installed-plugins"] if installed_plugins else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def stage(self, name: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line["stage"] == name:
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"core exited ({self.proc.returncode}): {self.proc.stderr.read()[-3000:]}")
            time.sleep(0.01)
        raise TimeoutError(f"no {name!r} within {timeout}s")

    def wait_http(self, timeout: float = 600) -> float:
        """Seconds from spawn until /api/health answers 200 (polled every 10 ms)."""
        url = f"http://127.0.0.1:{self.port}/api/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.time() - self.t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"core exited ({self.proc.returncode}): {self.proc.stderr.read()[-3000:]}")
            time.sleep(0.01)
        raise TimeoutError("API not serving")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="fb-coldstart-") as tmpdir:
        tmp = Path(tmpdir)
        with Mosquitto(tmp / "broker") as broker:
            serials = [f"d{i}" for i in range(args.devices)]
            site = tmp / "site.yaml"
            site.write_text(site_yaml(tmp / "fb.db", broker.port, serials))
            progress(f"first start: creating a registry of {args.devices:,} devices")
            first = CoreProcess(site, populate=4)
            first_serving = first.wait_http()
            populated = first.stage("populated")
            first_steady = first.stage("steady")
            first.stop()
            progress(f"  serving after {first_serving:.2f} s; 4 points + latest value per device in "
                     f"{populated['seconds']} s")
            runs = []
            for i in range(args.repeat):
                proc = CoreProcess(site)
                serving = proc.wait_http()
                subscribed = proc.stage("subscribed")
                steady = proc.stage("steady")
                proc.stop()
                serving_stage = proc.stage("serving")
                runs.append({"serving_s": round(serving, 3), "subscribed_s": subscribed["s"],
                             "cpu_s": serving_stage.get("cpu_s"),
                             "python_start_s": subscribed["python_start_s"], "rss_mb": steady["rss_mb"],
                             "devices": steady["devices"]})
                progress(f"restart {i + 1}/{args.repeat}: serving {serving:.2f} s, subscribed {subscribed['s']:.2f} s, "
                         f"cpu {serving_stage.get('cpu_s')} s, rss {steady['rss_mb']} MB")
            # The same restart parsing the site file (no cache): what the cache saves, same run.
            uncached = []
            for _ in range(args.repeat):
                proc = CoreProcess(site, config_cache=False)
                uncached.append(proc.wait_http())
                proc.stage("steady")
                proc.stop()
            progress(f"restarts parsing the site file (no cache): serving {statistics.median(uncached):.2f} s")
            # The same restart as `firebus run` makes it: every installed plugin loaded too.
            with_plugins = []
            for _ in range(args.repeat):
                proc = CoreProcess(site, installed_plugins=True)
                serving = proc.wait_http()
                steady = proc.stage("steady")
                proc.stop()
                with_plugins.append({"serving_s": round(serving, 3), "rss_mb": steady["rss_mb"],
                                     "plugins": steady["plugins"], "heavy_imports": steady["heavy"]})
            progress(f"restarts with the installed plugins: serving "
                     f"{statistics.median(r['serving_s'] for r in with_plugins):.2f} s, rss "
                     f"{statistics.median(r['rss_mb'] for r in with_plugins)} MB, heavy imports "
                     f"{with_plugins[0]['heavy_imports']}")
            empty_site = tmp / "empty.yaml"
            empty_site.write_text(site_yaml(tmp / "empty.db", broker.port, []))
            base = CoreProcess(empty_site)
            base_serving = base.wait_http()
            base_steady = base.stage("steady")
            base_cpu = base.stage("serving").get("cpu_s")
            base.stop()
            if args.keep:
                import shutil

                args.keep.mkdir(parents=True, exist_ok=True)
                for name in ("fb.db", "site.yaml"):
                    shutil.copy(tmp / name, args.keep / name)
                (args.keep / "site.yaml").write_text((tmp / "site.yaml").read_text().replace(str(tmp / "fb.db"),
                                                                                          str(args.keep / "fb.db")))
    best = min(runs, key=lambda r: r["serving_s"])
    result = {
        "bench": "coldstart",
        "devices": args.devices,
        "points_per_device": 4,
        "serving_s": round(statistics.median(r["serving_s"] for r in runs), 3),
        "subscribed_s": round(statistics.median(r["subscribed_s"] for r in runs), 3),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "serving_without_config_cache_s": round(statistics.median(uncached), 3),
        "what": "process spawn → GET /api/health 200 (core started, MQTT subscribed, web serving)",
        "rss_mb": round(statistics.median(r["rss_mb"] for r in runs), 1),
        "registry_rss_mb": round(statistics.median(r["rss_mb"] for r in runs) - base_steady["rss_mb"], 1),
        "empty_core_rss_mb": base_steady["rss_mb"],
        "installed_plugins": {
            "serving_s": round(statistics.median(r["serving_s"] for r in with_plugins), 3),
            "rss_mb": round(statistics.median(r["rss_mb"] for r in with_plugins), 1),
            "plugins": with_plugins[0]["plugins"],
            "heavy_imports": with_plugins[0]["heavy_imports"],
        },
        "empty_core_serving_s": round(base_serving, 3),
        "empty_core_cpu_s": base_cpu,
        "python_start_s": best["python_start_s"],
        "first_start_s": round(first_serving, 3),
        "populate_s": populated["seconds"],
        # the first start's process once every point has had a value (PointInfo, rule plans
        # and guards of every point built, as on a site that has been running a while)
        "after_values_rss_mb": first_steady["rss_mb"],
        "runs": runs,
        "machine": machine(),
    }
    emit(result, one_line=args.json)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keep", type=Path, help="copy the populated database and site file here (for profiling)")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse())
