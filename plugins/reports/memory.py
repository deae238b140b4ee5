"""``ReportSource`` over plain Python lists: unit tests of the analysis and scoring."""

from __future__ import annotations

from typing import Collection, Sequence

import numpy as np

from .model import AlarmRecord, DeviceRef, Hazard, InspectionStats, Interval, Place, PointRef, Resolution, Series, TransitionRecord


class MemorySource:
    def __init__(
        self,
        places: list[Place],
        devices: list[DeviceRef],
        points: list[PointRef],
        rollups: dict[Resolution, dict[str, Series]] | None = None,
        alarms: list[AlarmRecord] | None = None,
        transitions: list[TransitionRecord] | None = None,
        outages: list[Interval] | None = None,
        hazards: list[Hazard] | None = None,
        inspections: InspectionStats | None = None,
    ) -> None:
        self._places = places
        self._devices = devices
        self._points = points
        self._rollups = rollups or {}
        self._alarms = alarms or []
        self._transitions = transitions or []
        self._outages = outages or []
        self._hazards = hazards
        self._inspections = inspections

    def _under(self, unit_id: str) -> set[str]:
        ids = {unit_id}
        grew = True
        while grew:
            grew = False
            for p in self._places:
                if p.parent_id in ids and p.id not in ids:
                    ids.add(p.id)
                    grew = True
        return ids

    async def units(self) -> list[Place]:
        return [p for p in self._places if p.kind == "unit"]

    async def unit(self, key: str) -> Place | None:
        return next((p for p in self._places if p.kind == "unit" and p.key == key), None)

    async def places(self, unit_id: str) -> list[Place]:
        ids = self._under(unit_id)
        return [p for p in self._places if p.id in ids]

    async def devices(self, unit_id: str) -> list[DeviceRef]:
        return [d for d in self._devices if d.unit_id == unit_id]

    async def points(self, unit_id: str, classes: Collection[str]) -> list[PointRef]:
        devs = {d.id for d in self._devices if d.unit_id == unit_id}
        return [p for p in self._points if p.device_id in devs and p.point_class in classes]

    async def rollups(self, point_ids: Sequence[str], start: float, end: float, resolution: Resolution) -> dict[str, Series]:
        table = self._rollups.get(resolution, {})
        out: dict[str, Series] = {}
        for pid in point_ids:
            s = table.get(pid)
            if s is None:
                continue
            m = (s.bucket >= start) & (s.bucket < end)
            if m.any():
                out[pid] = Series(s.bucket[m], s.n[m], s.mean[m], s.min[m], s.max[m], s.last[m])
        return out

    async def alarms(self, unit_id: str, start: float, end: float) -> list[AlarmRecord]:
        devs = {d.id for d in self._devices if d.unit_id == unit_id}
        return sorted(
            (a for a in self._alarms if a.device_id in devs and a.start_ts < end
             and (a.active or a.clear_ts is None or a.clear_ts >= start)),
            key=lambda a: a.start_ts,
        )

    async def transitions(self, alarm_ids: Sequence[str]) -> list[TransitionRecord]:
        wanted = set(alarm_ids)
        return [t for t in self._transitions if t.alarm_id in wanted]

    async def offline_intervals(self, unit_id: str, start: float, end: float) -> list[Interval]:
        devs = {d.id for d in self._devices if d.unit_id == unit_id}
        return [o for o in self._outages if o.device_id in devs and o.start < end and (o.end is None or o.end > start)]

    async def hazards(self, unit_id: str, start: float, end: float) -> list[Hazard] | None:
        return self._hazards

    async def inspections(self, unit_id: str, start: float, end: float) -> InspectionStats | None:
        return self._inspections


def series(buckets: np.ndarray, values: np.ndarray, spread: np.ndarray | float = 0.0, n: int = 1) -> Series:
    """A rollup series whose buckets hold ``values`` ± ``spread`` (tests and benches)."""
    values = np.asarray(values, dtype=np.float64)
    spread = np.broadcast_to(np.asarray(spread, dtype=np.float64), values.shape)
    return Series(
        np.asarray(buckets, dtype=np.int64), np.full(values.shape, n, dtype=np.int64),
        values, values - spread, values + spread, values,
    )
