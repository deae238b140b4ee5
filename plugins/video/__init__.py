"""Video flame and smoke recognition on CPU, and cameras as devices of a place.

* ``cascade.CpuDetector`` (``video.cpu``) — the built-in detector: motion gate, colour
  candidates, a shipped gradient-boosted cell classifier (``model/``, numpy inference),
  blob tracking with flicker / motion cues and K-of-N persistence; flame and smoke apart;
* ``supervisor.DetectorSupervisor`` + ``worker`` — every detector (built-in or a vendor's
  ``firebus.sdk.VideoDetector``) runs in its own process: frames over shared memory,
  results as msgspec messages, restarts with backoff, faults reported;
* ``sources.CameraSource`` and ``ringbuf.RingBuffer`` — RTSP / MJPEG / snapshot / file
  cameras with reconnect and stall detection; still and clip of an alarm's moment;
* ``camera.CameraDriver`` (``video.camera``) — a camera as a device of a place (a
  ``ServiceDriver``): flame / smoke alarm points through the core's rules, the still and
  the clip stored with the alarm (``core.media``), detector faults as a fault point;
* ``web`` — live view (``/-/plugins/video/cameras/<id>/snapshot.jpg``, ``live.mjpeg``);
* ``firebus video eval PATH [--json]`` — frame- and clip-level figures on labelled data.

See docs/plugins/video.md.  Heavy imports (PyAV, OpenCV, numpy) stay out of module level
so loading the plugin is cheap.
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

FIREBUS_MANIFEST = Manifest(
    name="video",
    description="Video flame and smoke recognition on CPU; cameras as devices with alarm stills, clips and live view",
    documentation="docs/plugins/video.md",
)


@hookimpl
def firebus_register_detectors(core: Any) -> list[type]:
    # The declaration, not cascade.CpuDetector: that imports numpy and OpenCV (21 MB of RSS
    # of every start, cameras or not); the detector worker imports it.
    from .options import CpuDetectorDeclared

    return [CpuDetectorDeclared]


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    from .camera import CameraDriver

    return [CameraDriver]


@hookimpl
def firebus_register_routes(core: Any) -> list[Any]:
    from .web import routes

    return routes(core)


@hookimpl
def firebus_register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
