"""Cameras as devices of a place: the ``video.camera`` service driver.

One device per camera in the site file::

    - key: cam-lobby
      driver: video.camera
      location: lobby
      identifiers: {serial: DS-2CD2043-E12345}     # the camera's serial or MAC, never its IP
      options: {url: "rtsp://10.0.0.21/stream1", analysis_fps: 10, detector: video.cpu,
                mask: [{rect: [0.7, 0, 1, 0.25]}], ring: {pre_s: 10, post_s: 20}}

Per camera: a ``CameraSource`` thread (decode, reconnect, stall watchdog), a ``RingBuffer``
(JPEG frames for the still, the clip and the live view), a ``DetectorSupervisor`` with
its own worker process (a crash or hang restarts it and is the ``detector_fault`` point),
and the host's ``Tracker`` (K-of-N events).  The threads post what happened onto one
queue; a single task on the core's event loop turns it into readings, in order:

* ``flame`` / ``smoke`` (alarm-class, alarm lane): true while a confirmed region of that
  label is tracked.  At the onset the still of that frame is stored first and goes with
  the reading (``Reading.media``), so the alarm the two-detector rule raises shows it; the
  clip (``ring.pre_s`` before to ``ring.post_s`` after) is written in the background and
  attached to the alarms the onset raised (learned from their ``AlarmEvent``);
* ``flame_score`` / ``smoke_score`` (telemetry): the highest score of the last
  ``score_interval_s``;
* ``detector_fault`` (class ``fault``): true while the worker is crashed, hung, failing,
  slow or giving invalid output;
* availability: unavailable while the camera is stalled (no frame for
  ``stall_timeout_s``) or a file has ended: the offline rule makes that a fault alarm.

Only ``firebus.sdk`` and this package are imported here; PyAV, OpenCV and numpy load in
``start`` (a core with the plugin and no camera never loads them).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from firebus.sdk import (
    AlarmCategory,
    AlarmEvent,
    AlarmTransition,
    Availability,
    Event,
    MediaKind,
    PointSpec,
    Reading,
    ServiceDriver,
    VideoTrackChanged,
)
from firebus.sdk.detector import Label, Mask, MaskRegion, TrackEvent, TrackerOptions

from .options import RingOptions, SourceKind, SupervisorOptions

log = logging.getLogger("firebus.plugin.video.camera")

#: core → device id → running camera (the plugin's routes find cameras here)
RUNNING: "weakref.WeakKeyDictionary[Any, dict[str, CameraDriver]]" = weakref.WeakKeyDictionary()

#: an alarm belongs to an onset when it is raised at most this long after it (on-delays)
EPISODE_WINDOW_S = 300.0


class CameraDeviceOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``options`` of a ``video.camera`` device (docs/plugins/video.md has the table)."""

    url: str
    kind: SourceKind | None = None
    analysis_fps: float = 10.0
    stall_timeout_s: float = 10.0
    rtsp_transport: str = "tcp"
    timeout_s: float = 10.0
    #: files: play at the file's own frame rate; start again at the end
    realtime: bool = True
    loop: bool = False
    mask: list[MaskRegion] = []
    #: a detector's type key (``firebus_register_detectors``)
    detector: str = "video.cpu"
    detector_options: dict[str, Any] = {}
    ring: RingOptions = RingOptions()
    tracker: TrackerOptions = TrackerOptions()
    worker: SupervisorOptions = SupervisorOptions()
    #: seconds between flame_score / smoke_score reports
    score_interval_s: float = 1.0
    #: frames are shrunk to at most this side before they go to the detector
    analysis_max_side: int = 640
    #: frames per second of the live MJPEG view
    live_fps: float = 5.0

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("url: give an rtsp://, http(s):// URL or a file path")
        if not 0 < self.analysis_fps <= 30:
            raise ValueError(f"analysis_fps must be in (0, 30], got {self.analysis_fps}")
        if self.stall_timeout_s <= 0 or self.score_interval_s <= 0 or not 0 < self.live_fps <= 25:
            raise ValueError("stall_timeout_s and score_interval_s must be > 0, live_fps in (0, 25]")
        if self.ring.pre_s < 0 or self.ring.post_s < 0 or self.ring.clip_fps <= 0:
            raise ValueError("ring: pre_s and post_s must be ≥ 0, clip_fps > 0")
        if not 64 <= self.analysis_max_side <= 640:
            raise ValueError("analysis_max_side must be 64 to 640 (the worker's frame slots hold 640×480)")
        for i, region in enumerate(self.mask):
            problem = region.problem()
            if problem:
                raise ValueError(f"mask[{i}]: {problem}")


POINTS = [
    PointSpec(key="flame", point_class="flame", name="Flame (video)"),
    PointSpec(key="smoke", point_class="smoke", name="Smoke (video)"),
    PointSpec(key="flame_score", point_class="flame_score", name="Flame score", alarm=False),
    PointSpec(key="smoke_score", point_class="smoke_score", name="Smoke score", alarm=False),
    PointSpec(key="detector_fault", point_class="fault", name="Detector fault"),
]
_LABEL_POINT = {Label.FIRE: "flame", Label.SMOKE: "smoke"}


@dataclass
class Episode:
    """One onset of flame or smoke: its still, its clip and the alarms it raised."""

    point: str
    ts: float
    still: str | None = None
    clip: str | None = None
    clip_done: bool = False
    alarms: set[str] = field(default_factory=set)


class CameraDriver(ServiceDriver):
    type_key = "video.camera"
    Options = CameraDeviceOptions

    def __init__(self, options: CameraDeviceOptions, ctx: Any) -> None:
        super().__init__(options, ctx)
        self.options: CameraDeviceOptions = options
        self.source: Any = None
        self.ring: Any = None
        self.supervisor: Any = None
        self.tracker: Any = None
        self._stream = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Any, ...]] | None = None
        self._unsubscribe: Any = None
        self._tmp: Path | None = None
        self._pump_done: Any = None
        self._on: dict[str, bool] = {}
        self._scores = {"flame_score": 0.0, "smoke_score": 0.0}
        self._last_scores = 0.0
        self._episodes: list[Episode] = []
        self._fault: bool | None = None
        self.state = "stopped"
        self.state_detail = ""
        self.counters = {"results": 0, "stills": 0, "clips": 0, "clip_errors": 0, "attached": 0, "track_events": 0}
        #: the tracker's open tracks (the newest event of each), for the live view's boxes
        self.tracks: dict[str, VideoTrackChanged] = {}

    def points(self) -> list[PointSpec]:
        return list(POINTS)

    @property
    def device_id(self) -> str:
        return self.ctx.device_id or ""

    # -- lifecycle (the core's event loop) ----------------------------------------------------------

    async def start(self) -> None:
        from .ringbuf import RingBuffer
        from .sources import CameraOptions, CameraSource
        from .supervisor import DetectorSupervisor

        from firebus.sdk.detector import DetectorSetup, Tracker, worker_path

        o = self.options
        core = self.ctx.core
        detectors = core.declared_types("detector")
        cls = detectors.get(o.detector)
        if cls is None:
            raise ValueError(f"unknown detector {o.detector!r} (registered: {sorted(detectors)})")
        name = self.ctx.device_id or "camera"
        mask = Mask(regions=list(o.mask))
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"firebus-clips-{name}-"))
        self.ring = RingBuffer(name, o.ring)
        self.tracker = Tracker(name, o.tracker, confirms=bool(getattr(cls, "confirms", False)), mask=mask)
        self.supervisor = DetectorSupervisor(
            name, worker_path(cls), o.detector_options, o.worker,
            on_result=self._on_result, on_fault=lambda f: self._post("fault", f))
        self._unsubscribe = core.bus.subscribe(f"video:{name}", self._on_alarm, [AlarmEvent])
        import anyio

        self._pump_done = anyio.Event()
        core.start_task(self._pump, name=f"video:{name}")
        self.supervisor.start()
        self._stream = self.supervisor.open_stream(DetectorSetup(camera=name, mask=mask, fps=o.analysis_fps))
        self.source = CameraSource(
            name,
            CameraOptions(url=o.url, kind=o.kind, analysis_fps=o.analysis_fps, stall_timeout_s=o.stall_timeout_s,
                          timeout_s=o.timeout_s, rtsp_transport=o.rtsp_transport, realtime=o.realtime, loop=o.loop),
            on_frame=self._on_frame, on_analysis=self._on_analysis,
            on_state=lambda _n, state, detail: self._post("state", str(state), detail))
        self.source.start()
        RUNNING.setdefault(core, {})[self.device_id] = self

    async def stop(self) -> None:
        import anyio

        source, supervisor, ring = self.source, self.supervisor, self.ring
        self.source = self.supervisor = None
        cameras = RUNNING.get(self.ctx.core)
        if cameras is not None:
            cameras.pop(self.device_id, None)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if source is not None:
            await anyio.to_thread.run_sync(source.stop)
        if supervisor is not None:
            await anyio.to_thread.run_sync(supervisor.stop)
        if ring is not None:
            await anyio.to_thread.run_sync(ring.flush)  # pending clips end where the buffer does
        if self._queue is not None:
            self._queue.put_nowait(("stop",))  # after what the threads posted: the last clips are stored
            if self._pump_done is not None:
                with anyio.move_on_after(5):
                    await self._pump_done.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- camera, worker and ring threads: post, never block ------------------------------------------

    def _post(self, *item: Any) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop closed meanwhile (shutdown)
            pass

    def _on_frame(self, frame: Any) -> None:
        self.ring.push(frame.image, frame.ts)

    def _on_analysis(self, frame: Any) -> None:
        import cv2

        supervisor = self.supervisor
        if supervisor is None:
            return
        image = frame.image
        h, w = image.shape[:2]
        side = self.options.analysis_max_side
        if max(h, w) > side:
            f = side / max(h, w)
            image = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        supervisor.submit(self._stream, image, frame.ts)

    def _on_result(self, result: Any) -> None:
        # The supervisor's thread: the tracker lives here, the loop gets the outcome.
        tracks = self.tracker.update(result.detections, result.ts)
        if tracks:
            self._post("tracks", tracks)
        active = {t.label for t in self.tracker.active()}
        fire = max((d.score for d in result.detections if d.label == Label.FIRE), default=0.0)
        smoke = max((d.score for d in result.detections if d.label == Label.SMOKE), default=0.0)
        self._post("result", result.ts, Label.FIRE in active, Label.SMOKE in active, fire, smoke)

    def _on_alarm(self, event: Event) -> None:
        data = event.data
        if not isinstance(data, AlarmEvent) or data.transition is not AlarmTransition.NEW:
            return
        mine = data.device_id == self.device_id
        at_my_place = (data.device_id is None and data.category is AlarmCategory.FIRE
                       and data.location_id is not None and data.location_id == self._location_id())
        if mine or at_my_place:
            self._post("alarm", data)

    def _location_id(self) -> str | None:
        points = self.ctx.core.registry.points_of_device(self.device_id)
        return points[0].location_id if points else None

    # -- the pump: one task on the core's loop, in order ---------------------------------------------

    async def _pump(self) -> None:
        try:
            await self._pump_items()
        finally:
            if self._pump_done is not None:
                self._pump_done.set()

    async def _pump_items(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            kind = item[0]
            if kind == "stop":
                return
            try:
                if kind == "result":
                    await self._result(*item[1:])
                elif kind == "fault":
                    await self._detector_fault(item[1])
                elif kind == "state":
                    await self._camera_state(item[1], item[2])
                elif kind == "clip":
                    await self._clip_done(*item[1:])
                elif kind == "alarm":
                    await self._alarm_raised(item[1])
                elif kind == "tracks":
                    self._publish_tracks(item[1])
            except Exception:
                log.exception("camera %s: handling %s failed", self.device_id, kind)

    def _publish_tracks(self, events: list[TrackEvent]) -> None:
        if self.device_id is None:
            return
        for ev in events:
            t = ev.after
            changed = VideoTrackChanged(
                device_id=self.device_id, track_id=t.id, kind=str(ev.kind), label=str(t.label), score=t.score,
                top_score=t.top_score, box=(t.box[0], t.box[1], t.box[2], t.box[3]), first_seen=t.first_seen,
                last_seen=t.last_seen, end_time=ev.end_time)
            if changed.kind == "end":
                self.tracks.pop(changed.track_id, None)
            else:
                self.tracks[changed.track_id] = changed
            self.ctx.core.bus.publish(changed)
            self.counters["track_events"] += 1

    async def _result(self, ts: float, fire_on: bool, smoke_on: bool, fire: float, smoke: float) -> None:
        self.counters["results"] += 1
        self._scores["flame_score"] = max(self._scores["flame_score"], fire)
        self._scores["smoke_score"] = max(self._scores["smoke_score"], smoke)
        for point, on in (("flame", fire_on), ("smoke", smoke_on)):
            if self._on.get(point) is on:
                continue
            self._on[point] = on
            if on:
                await self._onset(point, ts)
            else:
                await self.ctx.report([Reading(point, False, ts)])
        now = time.monotonic()
        if now - self._last_scores >= self.options.score_interval_s:
            self._last_scores = now
            scores, self._scores = self._scores, {"flame_score": 0.0, "smoke_score": 0.0}
            await self.ctx.report([Reading(k, round(v, 2), ts) for k, v in scores.items()])

    async def _onset(self, point: str, ts: float) -> None:
        """Still first (it goes with the reading), then the reading, then the clip in the background."""
        episode = Episode(point=point, ts=ts)
        self._episodes = [e for e in self._episodes if ts - e.ts < EPISODE_WINDOW_S][-20:] + [episode]
        jpeg = self.ring.snapshot(ts)
        media: tuple[str, ...] = ()
        if jpeg:
            try:
                ref = await self.ctx.core.media.put(jpeg, "image/jpeg", kind=MediaKind.STILL,
                                                    device_id=self.device_id, ts=ts)
                episode.still = ref.id
                media = (ref.id,)
                self.counters["stills"] += 1
            except Exception:  # the alarm must not wait for, or depend on, its picture
                log.exception("camera %s: storing the still failed", self.device_id)
        await self.ctx.report([Reading(point, True, ts, media=media)])
        if self._tmp is not None:
            path = self._tmp / f"{point}-{int(ts * 1000)}.mp4"
            self.ring.request_clip(ts, path, lambda info, error: self._post("clip", episode, info, error))

    async def _clip_done(self, episode: Episode, info: Any, error: str) -> None:
        episode.clip_done = True
        if info is None:
            self.counters["clip_errors"] += 1
            log.warning("camera %s: no clip for the %s at %.1f: %s", self.device_id, episode.point, episode.ts, error)
            return
        ref = await self.ctx.core.media.put(Path(info.path), "video/mp4", kind=MediaKind.CLIP,
                                            device_id=self.device_id, ts=episode.ts,
                                            start_ts=info.start_ts, end_ts=info.end_ts)
        episode.clip = ref.id
        self.counters["clips"] += 1
        for alarm_id in sorted(episode.alarms):
            await self._attach(alarm_id, ref.id)

    async def _alarm_raised(self, data: AlarmEvent) -> None:
        point_keys = {p.point_id: p.key for p in self.ctx.core.registry.points_of_device(self.device_id)}
        key = point_keys.get(data.point_id or "")
        candidates = [e for e in self._episodes if (key is None or e.point == key)
                      and e.ts - 60.0 <= data.ts <= e.ts + EPISODE_WINDOW_S]
        if not candidates:
            return
        episode = candidates[-1]
        episode.alarms.add(data.alarm_id)
        if episode.clip is not None:
            await self._attach(data.alarm_id, episode.clip)
        if key is None and episode.still is not None:  # the place's confirmed fire: the still as well
            await self._attach(data.alarm_id, episode.still)

    async def _attach(self, alarm_id: str, media_id: str) -> None:
        await self.ctx.core.media.attach(alarm_id, media_id)
        self.counters["attached"] += 1

    async def _detector_fault(self, fault: Any) -> None:
        log.log(logging.WARNING if fault.raised else logging.INFO, "camera %s: detector %s %s: %s",
                self.device_id, fault.kind, "raised" if fault.raised else "cleared", fault.detail)
        if fault.raised:
            self.tracks.clear()  # a restarted worker starts its tracker afresh: its old tracks never end
        supervisor = self.supervisor
        active = bool(supervisor.active_faults()) if supervisor is not None else fault.raised
        if active is not self._fault:
            self._fault = active
            await self.ctx.report([Reading("detector_fault", active)])

    async def _camera_state(self, state: str, detail: str) -> None:
        self.state, self.state_detail = state, detail
        if state != "streaming":
            self.tracks.clear()  # no picture, nothing to box
        if state == "streaming":
            self.ctx.set_availability(Availability.AVAILABLE)
            if self._fault is None:  # first frames: the fault point says "no fault", not "never reported"
                self._fault = False
                await self.ctx.report([Reading("detector_fault", False)])
        elif state == "stalled":
            self.ctx.set_availability(Availability.UNAVAILABLE, f"camera stalled: {detail}")
        elif state == "ended":
            self.ctx.set_availability(Availability.UNAVAILABLE, "camera file ended")

    # -- for the routes and tests --------------------------------------------------------------------

    def snapshot(self) -> bytes | None:
        return self.ring.snapshot() if self.ring is not None else None

    def status(self) -> dict[str, Any]:
        supervisor = self.supervisor
        return {
            "device_id": self.device_id, "state": self.state, "detail": self.state_detail,
            "flame": bool(self._on.get("flame")), "smoke": bool(self._on.get("smoke")),
            "detector_fault": bool(self._fault),
            "source": dict(self.source.counters) if self.source is not None else {},
            "detector": msgspec.to_builtins(supervisor.status()) if supervisor is not None else None,
            **self.counters,
        }


def cameras_of(core: Any) -> dict[str, CameraDriver]:
    return RUNNING.get(core, {})
