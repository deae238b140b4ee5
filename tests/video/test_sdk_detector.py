"""The SDK's detector contract pieces: output checks, masks, the host tracker's new/update/end."""

from __future__ import annotations

import numpy as np
import pytest

from firebus.sdk.detector import (Detection, DetectionError, EventKind, Label, Mask, MaskRegion, Tracker,
                                  TrackerOptions, check_detections)


def det(box=(0.1, 0.1, 0.3, 0.3), score=0.8, label=Label.FIRE, **kw):
    return Detection(label=label, score=score, box=box, **kw)


@pytest.mark.parametrize("bad, words", [
    ((0.1, 0.2, 30.0, 40.0), "not normalised"),
    ((0.5, 0.2, 0.1, 0.4), "not ordered"),
    ((0.1, 0.2, 0.3), "not 4 numbers"),
    ((0.1, float("nan"), 0.3, 0.4), "finite"),
])
def test_bad_boxes_are_refused_with_the_reason(bad, words) -> None:
    with pytest.raises(DetectionError, match=words):
        check_detections([det(box=bad)])


def test_other_violations_are_named() -> None:
    with pytest.raises(DetectionError, match="not in 0..1"):
        check_detections([det(score=1.5)])
    with pytest.raises(DetectionError, match="not one of"):
        check_detections([Detection(label="flames", score=0.5, box=(0, 0, 1, 1))])  # type: ignore[arg-type]
    with pytest.raises(DetectionError, match="not a firebus.sdk.detector.Detection"):
        check_detections([("fire", 0.5, (0, 0, 1, 1))])
    with pytest.raises(DetectionError, match="must return a list"):
        check_detections(None)
    assert check_detections([det(), det(label=Label.SMOKE)]) == [det(), det(label=Label.SMOKE)]


def test_mask_raster_and_share() -> None:
    m = Mask(regions=[MaskRegion(rect=(0.5, 0.0, 1.0, 1.0)),
                      MaskRegion(polygon=[(0.0, 0.0), (0.25, 0.0), (0.0, 0.25)])])
    r = m.raster(8, 4)
    assert r[:, 4:].all() and not r[1:, 1:4].any() and r[0, 0]
    assert m.masked_share((0.6, 0.1, 0.9, 0.9)) == 1.0
    assert m.masked_share((0.0, 0.5, 0.4, 1.0)) == 0.0
    assert MaskRegion(polygon=[(0, 0), (1, 1)]).problem() == "a polygon needs at least 3 points"
    assert "normalised" in MaskRegion(rect=(0, 0, 2, 1)).problem()


def test_tracker_k_of_n_then_update_then_end() -> None:
    tr = Tracker("cam", TrackerOptions(min_hits=3, window=5, end_after=2.0, update_interval=0.0))
    assert tr.update([det()], 0.0) == [] and tr.update([], 0.1) == []
    assert tr.update([det(box=(0.11, 0.1, 0.31, 0.3))], 0.2) == []
    new = tr.update([det(box=(0.12, 0.1, 0.32, 0.3))], 0.3)
    assert [e.kind for e in new] == [EventKind.NEW]
    assert new[0].after.first_seen == 0.0 and new[0].before is None and new[0].after.id == "cam-1"
    up = tr.update([det(box=(0.12, 0.1, 0.32, 0.3), score=0.95)], 0.4)
    assert [e.kind for e in up] == [EventKind.UPDATE] and up[0].before.top_score == 0.8
    assert tr.update([], 1.0) == []
    end = tr.update([], 2.5)
    assert [e.kind for e in end] == [EventKind.END] and end[0].end_time == 0.4


def test_tracker_ignores_masked_and_isolated_detections() -> None:
    mask = Mask(regions=[MaskRegion(rect=(0.0, 0.0, 0.5, 0.5))])
    tr = Tracker("cam", TrackerOptions(min_hits=2, window=3), mask=mask)
    for t in range(5):
        assert tr.update([det(box=(0.1, 0.1, 0.2, 0.2))], float(t)) == []  # inside the lamp's mask
    tr2 = Tracker("cam", TrackerOptions(min_hits=2, window=3))
    assert tr2.update([det()], 0.0) == []
    assert tr2.update([], 1.0) == [] and tr2.update([], 2.0) == [] and tr2.update([], 3.0) == []
    assert tr2.update([det()], 4.0) == []  # one hit per window never confirms


def test_confirming_detectors_start_at_once_and_vendor_ids_are_followed() -> None:
    tr = Tracker("cam", confirms=True)
    ev = tr.update([det(track_id=7, first_seen=-3.0)], 0.0)
    assert ev[0].kind == EventKind.NEW and ev[0].after.first_seen == -3.0
    # the vendor's id keeps the track even when the box jumps
    assert tr.update([det(box=(0.7, 0.7, 0.9, 0.9), track_id=7)], 0.1) == []
    assert len(tr.active()) == 1
    assert [e.kind for e in tr.end_all(1.0)] == [EventKind.END]


def test_gbdt_learns_and_round_trips() -> None:
    from firebus.plugins.video import gbdt

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] ** 2 > 1).astype(float)
    m = gbdt.train(x[:2000], y[:2000], gbdt.Params(trees=60, depth=3))
    acc = ((m.predict_proba(x[2000:]) > 0.5) == y[2000:]).mean()
    assert acc > 0.88
    again = gbdt.Model.from_arrays(m.to_arrays("h"), "h")
    assert np.array_equal(again.decision(x[:50]), m.decision(x[:50]))
