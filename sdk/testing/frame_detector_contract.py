"""Contract suite for ``VideoDetector`` back-ends, one frame at a time (Frigate-style fixed output).

Labelled frames in, ``(label, score, box)`` out.  The fuller suite, with clips, odd frame
sizes and the out-of-process worker, is ``detector_contract.VideoDetectorContract``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import msgspec
import pytest

from firebus.sdk.detector import VideoDetector

from .checks import watch_blocking
from .levels import Level, level


def detection_fields(d: Any) -> tuple[str, float, tuple[float, float, float, float]]:
    """(label, score, (x_min, y_min, x_max, y_max)) from an object, dict or tuple detection."""
    if isinstance(d, dict):
        return d["label"], float(d["score"]), tuple(d["box"])  # type: ignore[return-value]
    if isinstance(d, (tuple, list)):
        label, score, box = d
        return label, float(score), tuple(box)  # type: ignore[return-value]
    return d.label, float(d.score), tuple(d.box)


@pytest.mark.anyio
class DetectorContract:
    """Contract for ``VideoDetector`` back-ends (Frigate-style fixed output).

    Set ``detector_class``, ``options`` and ``frames``: a list of
    ``(frame, expected_labels)`` pairs; one with no fire or smoke
    (``expected_labels = set()``) is required.
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # the core runs on asyncio (trio is not supported)

    detector_class: ClassVar[type[VideoDetector]]
    options: ClassVar[dict[str, Any]] = {}
    frames: ClassVar[list[tuple[Any, set[str]]]] = []
    labels: ClassVar[frozenset[str]] = frozenset({"fire", "smoke"})

    def make(self) -> Any:
        cls = self.detector_class
        try:
            return cls(msgspec.convert(self.options, cls.Options))
        except TypeError:
            return cls()

    @level(Level.BRONZE)
    def test_output_contract(self) -> None:
        assert self.frames, "give at least one frame"
        det = self.make()
        for frame, _ in self.frames:
            for d in det.detect(frame):
                label, score, box = detection_fields(d)
                assert label in self.labels, f"label {label!r} not in {sorted(self.labels)}"
                assert 0.0 <= score <= 1.0, f"score {score} outside 0..1"
                assert len(box) == 4 and all(0.0 <= v <= 1.0 for v in box), f"box {box} not normalised"
                assert box[0] <= box[2] and box[1] <= box[3], f"box {box} is not (x_min, y_min, x_max, y_max)"

    @level(Level.BRONZE)
    def test_expected_labels(self) -> None:
        det = self.make()
        assert any(not want for _, want in self.frames), "add a frame with nothing in it"
        for i, (frame, want) in enumerate(self.frames):
            got = {detection_fields(d)[0] for d in det.detect(frame)}
            assert got == set(want), f"frame {i}: detected {sorted(got)}, expected {sorted(want)}"

    @level(Level.SILVER)
    def test_deterministic(self) -> None:
        det = self.make()
        for frame, _ in self.frames:
            assert [detection_fields(d) for d in det.detect(frame)] == [detection_fields(d) for d in det.detect(frame)]

    @level(Level.GOLD)
    async def test_runs_off_the_event_loop(self) -> None:
        """``detect`` is synchronous: the core runs it in a worker thread; two at once must agree."""
        det = self.make()
        frame = self.frames[0][0]
        expected = [detection_fields(d) for d in det.detect(frame)]
        results: list[Any] = []

        async def one() -> None:
            out = await anyio.to_thread.run_sync(det.detect, frame)
            results.append([detection_fields(d) for d in out])

        async with watch_blocking() as watch:
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
        assert results == [expected] * 4
        assert not watch.slow, watch.slow
