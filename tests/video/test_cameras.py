"""Cameras as devices, on a real core: the FURG clip raises a flame alarm with its still and clip.

Everything is the real thing: the site file, the core with its storage, alarm engine and
standard rules, the camera service (PyAV decoding the file in real time, the ring
buffer, the CPU detector in its own worker process), the media store, and the panel's
HTTP API with real users and tokens.  Two cameras in two units play at once: the FURG
house6 video (flame from its first frame) in plant A and a fire-free scene in office B.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import av
import cv2
import numpy as np
import pytest

from firebus.core.config import load_text
from firebus.core.runtime import running_core
from firebus.core.web import AuthStore, create_app, serve
from firebus.plugins import video
from firebus.plugins.video.camera import cameras_of
from firebus.sdk import AlarmCategory, VideoTrackChanged

from .camera_site import PASSWORD, Site, wait_until
from .conftest import FURG, negative_clip, needs_furg, needs_roboflow

pytestmark = [pytest.mark.anyio, needs_furg, needs_roboflow]

# Short clip windows keep the test quick; the defaults (10 s / 20 s) are the same code path.
PRE_S, POST_S = 3.0, 4.0


def site_yaml(db: Path, negative: Path) -> str:
    fast = "worker: {healthy_after_s: 1, backoff_initial_s: 0.2}"
    return f"""
site: {{name: Video site, language: en, timezone: Asia/Shanghai}}
storage: {{path: {db}}}
units:
  - key: plant-a
    name: Plant A
    buildings:
      - key: a-main
        name: Main hall
        floors: [{{key: a-f1, name: F1, level: 1, locations: [{{key: hall-a, name: Hall A}}]}}]
  - key: office-b
    name: Office B
    buildings:
      - key: b-tower
        name: Tower
        floors: [{{key: b-f3, name: F3, level: 3, locations: [{{key: lobby-b, name: Lobby B}}]}}]
devices:
  - key: cam-fire
    driver: video.camera
    location: hall-a
    name: Hall camera
    identifiers: {{serial: CAM-FIRE-1}}
    options: {{url: "{FURG}", ring: {{pre_s: {PRE_S}, post_s: {POST_S}}}, {fast}}}
  - key: cam-quiet
    driver: video.camera
    location: lobby-b
    name: Lobby camera
    identifiers: {{serial: CAM-QUIET-1}}
    options: {{url: "{negative}", {fast}}}
"""


ROLES = {"admin": ("admin", []), "duty_a": ("duty_officer", ["plant-a"]), "duty_b": ("duty_officer", ["office-b"])}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    negative = negative_clip(tmp_path / "quiet.mp4", seconds=8.0)
    loaded = load_text(site_yaml(tmp_path / "fb.db", negative), "site.yaml")
    async with running_core(loaded, extra_plugins={"video": video}, autoload=False) as core:
        s = Site(core=core, app=create_app(core), auth=AuthStore(core.storage))
        core.bus.subscribe("test-tracks", lambda e: s.tracks.append(e.data), types=[VideoTrackChanged])
        for name, (role, units) in ROLES.items():
            await s.auth.create_user(name, role, units=units, password=PASSWORD)
            s.tokens[name], _ = await s.auth.create_token(name, label="test")
        yield s


def _flame_alarms(core: Any, device_id: str) -> list[Any]:
    flame = core.registry.point(device_id, "flame").id
    return [a for a in core.alarms.open_alarms() if a.point_id == flame and a.category is AlarmCategory.FIRE]


async def test_furg_raises_a_flame_alarm_with_still_and_clip_and_a_quiet_scene_raises_none(site: Site) -> None:
    core = site.core
    fire_cam, quiet_cam = site.device("cam-fire"), site.device("cam-quiet")
    hall = core.registry.place_by_key("hall-a")

    # The flame alarm: the two-detector rule's single-detector fire alarm on the camera's flame point.
    await wait_until(lambda: _flame_alarms(core, fire_cam), timeout=40)
    (alarm,) = _flame_alarms(core, fire_cam)
    assert alarm.device_id == fire_cam and alarm.unit_id == core.registry.place_by_key("plant-a").id
    assert core.registry.devices[fire_cam].location_id == hall.id
    # Where in the picture: the tracker's events are on the bus, boxes normalised, the fire
    # camera's only (the quiet scene has no track).
    fire_tracks = [t for t in site.tracks if t.device_id == fire_cam and t.label == "fire"]
    assert fire_tracks and all(t.kind in ("new", "update", "end") for t in fire_tracks), site.tracks[:5]
    assert all(0 <= t.box[0] < t.box[2] <= 1 and 0 <= t.box[1] < t.box[3] <= 1 for t in fire_tracks)
    assert all(t.first_seen <= t.last_seen and 0 < t.score <= 1 for t in fire_tracks)
    assert not [t for t in site.tracks if t.device_id == quiet_cam]
    # One camera is one detector: its flame and smoke points do not confirm a fire by themselves.
    assert not [a for a in core.alarms.open_alarms() if a.rule == "two_detector:confirmed"]

    # The still went with the alarm (same transaction as its `new`); the clip follows POST_S later.
    async with site.client("duty_a") as c:
        r = await c.get(f"/api/alarms/{alarm.id}/media")
        assert r.status_code == 200, r.text
        kinds = [m["kind"] for m in r.json()["items"]]
        assert kinds[:1] == ["still"], r.json()

        async def has_clip() -> bool:
            items = (await c.get(f"/api/alarms/{alarm.id}/media")).json()["items"]
            return any(m["kind"] == "clip" for m in items)

        await wait_until(has_clip, timeout=30)
        items = (await c.get(f"/api/alarms/{alarm.id}/media")).json()["items"]
        still = next(m for m in items if m["kind"] == "still")
        clip = next(m for m in items if m["kind"] == "clip")

        r = await c.get(still["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] == 426  # FURG house6 is 426×240

        r = await c.get(clip["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        assert len(r.content) == clip["bytes"]
        clip_path = Path(site.core.db_path.parent / "got.mp4")
        clip_path.write_bytes(r.content)
        with av.open(str(clip_path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name in ("h264", "mpeg4")
            frames = sum(1 for _ in container.decode(stream))
        # pre + post seconds at the ring's 10 fps (the flame is there from the first frame:
        # the pre-roll is whatever had been buffered since the start, at most PRE_S)
        assert clip["end_ts"] - clip["start_ts"] >= POST_S - 0.5
        assert frames >= (clip["end_ts"] - clip["start_ts"]) * 10 - 2

        r = await c.get(f"/api/media/{clip['id']}", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and len(r.content) == 100  # a <video> element can seek

    # Another unit's user: the alarm and its media do not exist for them.
    async with site.client("duty_b") as c:
        assert (await c.get(f"/api/alarms/{alarm.id}/media")).status_code == 404
        for m in items:
            r = await c.get(m["url"])
            assert r.status_code == 404 and r.json()["error"]["code"] == "media_not_found"
        assert (await c.get(f"/-/plugins/video/cameras/{fire_cam}/snapshot.jpg")).status_code == 404
        assert (await c.get(f"/-/plugins/video/cameras/{fire_cam}/tracks")).status_code == 404
        listed = (await c.get("/-/plugins/video/cameras")).json()["items"]
        assert [x["device_id"] for x in listed] == [quiet_cam]

    # Live view of the alarm's place for a user of its unit.
    async with site.client("duty_a") as c:
        listed = (await c.get(f"/-/plugins/video/cameras?location={hall.id}")).json()["items"]
        assert [x["device_id"] for x in listed] == [fire_cam]
        r = await c.get(listed[0]["snapshot"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
        live = await c.get(listed[0]["live"] + "?frames=2")
        assert live.headers["content-type"].startswith("multipart/x-mixed-replace")
        assert live.content.count(b"--firebusframe\r\nContent-Type: image/jpeg\r\n") == 2

        # Where the flame is now: the detector's open tracks, boxes normalised to the frame.
        async def fire_boxes() -> list[dict[str, Any]]:
            r = await c.get(listed[0]["tracks"])
            assert r.status_code == 200, r.text
            return [t for t in r.json()["items"] if t["label"] == "fire"]

        await wait_until(fire_boxes, timeout=20)
        for t in await fire_boxes():
            x1, y1, x2, y2 = t["box"]
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 and 0 < t["score"] <= 1 and t["track_id"]

    # The panel's alarm page (a real Chromium, in Chinese): the still, the clip, the live view.
    async with anyio.create_task_group() as tg:
        server = await tg.start(serve, core, "127.0.0.1", 0)
        seen = await anyio.to_thread.run_sync(_alarm_page_in_browser, server.url, alarm.id)
        tg.cancel_scope.cancel()
    assert seen["still_width"] == 426, seen
    assert seen["clip_src"].endswith(clip["id"]) and seen["clip_ready"] >= 1, seen
    assert seen["live_changed"], "the live snapshot must refresh"
    assert "现场图像" in seen["text"] and "报警录像" in seen["text"] and "现场实时画面" in seen["text"]
    assert seen["box"].startswith("火焰 ") and seen["box"].endswith("%"), seen  # the flame's box over the live view

    # The fire-free scene played to its end without a fire alarm (it did analyse frames).
    quiet = cameras_of(core)[quiet_cam]
    await wait_until(lambda: quiet.state == "ended", timeout=30)
    assert quiet.counters["results"] > 40, quiet.status()
    assert not [a for a in core.alarms.open_alarms() if a.device_id == quiet_cam and a.category is AlarmCategory.FIRE]
    assert core.ingest.states[core.registry.point(quiet_cam, "flame").id].value is False
    assert quiet.tracks == {}


def _alarm_page_in_browser(url: str, alarm_id: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.web.test_browser import browser

    seen: dict[str, Any] = {}
    driver = browser()
    wait = WebDriverWait(driver, 30, poll_frequency=0.1)
    try:
        driver.get(f"{url}/login?lang=zh")
        driver.find_element(By.ID, "username").send_keys("duty_a")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: "/login" not in d.current_url)
        driver.get(f"{url}/alarms/{alarm_id}")
        js = "var e = document.querySelector(arguments[0]); return e ? e[arguments[1]] : null;"
        wait.until(lambda d: (d.execute_script(js, "img[data-media]", "naturalWidth") or 0) > 0)
        seen["still_width"] = driver.execute_script(js, "img[data-media]", "naturalWidth")
        wait.until(lambda d: (d.execute_script(js, "video[data-media]", "readyState") or 0) >= 1)
        seen["clip_src"] = driver.execute_script(js, "video[data-media]", "src")
        seen["clip_ready"] = driver.execute_script(js, "video[data-media]", "readyState")
        wait.until(lambda d: (d.execute_script(js, "img[data-camera]", "naturalWidth") or 0) > 0)
        first = driver.execute_script(js, "img[data-camera]", "src")
        wait.until(lambda d: d.execute_script(js, "img[data-camera]", "src") != first)
        seen["live_changed"] = True
        wait.until(lambda d: d.execute_script(js, "[data-tracks] .track-fire", "textContent"))
        seen["box"] = driver.execute_script(js, "[data-tracks] .track-fire", "textContent")
        seen["text"] = driver.find_element(By.TAG_NAME, "main").text
    finally:
        driver.quit()
    return seen
