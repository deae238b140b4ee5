"""Live view of cameras, under ``/-/plugins/video/`` (every signed-in role, scoped by unit).

* ``GET /cameras[?location=<place id>]`` — the cameras the caller may see (of one place);
* ``GET /cameras/{device_id}/snapshot.jpg`` — the newest ring-buffer JPEG;
* ``GET /cameras/{device_id}/live.mjpeg[?frames=N]`` — ``multipart/x-mixed-replace`` at
  ``live_fps``, for at most ``LIVE_MAX_S`` (or ``N`` frames);
* ``GET /cameras/{device_id}/tracks`` — the detector's open flame/smoke tracks (boxes for the
  live view).

A camera of a unit the caller is not assigned to is 404, exactly as if it did not exist
(``Caller.sees`` with the camera's unit, like the core's API).
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from firebus.sdk import caller, signed_in

from .camera import CameraDriver, cameras_of

#: a live view ends after this long (a forgotten tab does not hold a stream for ever)
LIVE_MAX_S = 600.0
BOUNDARY = "firebusframe"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def routes(core: Any) -> list[Route]:
    def info(camera: CameraDriver) -> dict[str, Any] | None:
        points = core.registry.points_of_device(camera.device_id)
        return {
            "device_id": camera.device_id,
            "name": points[0].device_name if points else camera.device_id,
            "location_id": points[0].location_id if points else None,
            "location_name": points[0].location_name if points else "",
            "unit_id": points[0].unit_id if points else None,
            "state": camera.state,
            "snapshot": f"/-/plugins/video/cameras/{camera.device_id}/snapshot.jpg",
            "live": f"/-/plugins/video/cameras/{camera.device_id}/live.mjpeg",
            "tracks": f"/-/plugins/video/cameras/{camera.device_id}/tracks",
        } if points else None

    def visible(request: Request, camera: CameraDriver) -> dict[str, Any] | None:
        who = caller(request)
        data = info(camera)
        if who is None or data is None:
            return None
        unit = core.registry.place(data["unit_id"]) if data["unit_id"] else None
        return data if who.sees(unit.key if unit is not None else None) else None

    def camera_of(request: Request) -> tuple[CameraDriver | None, JSONResponse | None]:
        device_id = request.path_params["device_id"]
        camera = cameras_of(core).get(device_id)
        if camera is None or visible(request, camera) is None:
            return None, _error(404, "camera_not_found", f"no camera {device_id!r}")
        return camera, None

    async def listing(request: Request) -> Response:
        location = request.query_params.get("location") or None
        items = [d for c in cameras_of(core).values() if (d := visible(request, c)) is not None
                 and (location is None or d["location_id"] == location)]
        items.sort(key=lambda d: (d["name"], d["device_id"]))
        return JSONResponse({"items": items, "total": len(items)})

    async def snapshot(request: Request) -> Response:
        camera, error = camera_of(request)
        if camera is None:
            return error  # type: ignore[return-value]
        jpeg = camera.snapshot()
        if jpeg is None:
            return _error(503, "no_frame", f"camera {camera.device_id} has sent no frame yet ({camera.state})")
        return Response(jpeg, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def tracks(request: Request) -> Response:
        camera, error = camera_of(request)
        if camera is None:
            return error  # type: ignore[return-value]
        items = [{"track_id": t.track_id, "label": t.label, "score": round(t.score, 4),
                  "top_score": round(t.top_score, 4), "box": [round(v, 4) for v in t.box],
                  "first_seen": t.first_seen, "last_seen": t.last_seen}
                 for t in sorted(camera.tracks.values(), key=lambda t: t.first_seen)]
        return JSONResponse({"device_id": camera.device_id, "state": camera.state, "items": items,
                             "total": len(items)}, headers={"cache-control": "no-store"})

    async def live(request: Request) -> Response:
        camera, error = camera_of(request)
        if camera is None:
            return error  # type: ignore[return-value]
        period = 1.0 / camera.options.live_fps
        raw = request.query_params.get("frames") or "0"
        if not raw.isdigit() or not 0 <= int(raw) <= 100_000:
            return _error(400, "bad_parameter", f"frames must be an integer 0..100000 (0: no limit), got {raw!r}")
        limit = int(raw)

        async def frames() -> AsyncIterator[bytes]:
            end = time.monotonic() + LIVE_MAX_S
            last: bytes | None = None
            sent = 0
            while time.monotonic() < end and camera.ring is not None and not (limit and sent >= limit):
                jpeg = camera.snapshot()
                if jpeg is not None and jpeg is not last:
                    last = jpeg
                    sent += 1
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                           .encode() + jpeg + b"\r\n")
                await anyio.sleep(period)

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"cache-control": "no-store"})

    return [
        signed_in(Route("/cameras", listing)),
        signed_in(Route("/cameras/{device_id}/snapshot.jpg", snapshot)),
        signed_in(Route("/cameras/{device_id}/live.mjpeg", live)),
        signed_in(Route("/cameras/{device_id}/tracks", tracks)),
    ]
