"""Video flame and smoke recognition on CPU (phase 1: detection, evaluation, worker, sources).

* ``cascade.CpuDetector`` (``video.cpu``) — the built-in detector: motion gate, colour
  candidates, a shipped gradient-boosted cell classifier (``model/``, numpy inference),
  blob tracking with flicker / motion cues and K-of-N persistence; flame and smoke apart;
* ``supervisor.DetectorSupervisor`` + ``worker`` — every detector (built-in or a vendor's
  ``firebus.sdk.VideoDetector``) runs in its own process: frames over shared memory,
  results as msgspec messages, restarts with backoff, faults reported;
* ``sources.CameraSource`` and ``ringbuf.RingBuffer`` — RTSP / MJPEG / snapshot / file
  cameras with reconnect and stall detection; still and clip of an alarm's moment;
* ``firebus video eval PATH [--json]`` — frame- and clip-level figures on labelled data.

Camera devices, video alarms and media in the panel (phase 2) need core APIs: see
docs/plugins/video.md.  Heavy imports stay inside the hooks so loading the plugin is cheap.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="video",
    description="Video flame and smoke recognition on CPU; out-of-process detectors; camera sources",
    documentation="docs/plugins/video.md",
)


@hookimpl
def firebus_register_detectors(core: Any) -> list[type]:
    from .cascade import CpuDetector

    return [CpuDetector]


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
