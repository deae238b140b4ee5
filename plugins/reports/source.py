"""The data-access seam of the reports plugin.

``ReportSource`` lists every query a report needs.  Two implementations:
``memory.MemorySource`` (unit tests) and ``sqlite_source.StorageSource`` (the
core's SQLite tables through ``firebus.sdk.StorageAPI``).  The core owner is
moving history behind an SDK API; a third implementation over that API is all
the reports need then.  Raw readings are never asked for: rollups only.
"""

from __future__ import annotations

from typing import Collection, Protocol, Sequence

from .model import AlarmRecord, DeviceRef, Hazard, InspectionStats, Interval, Place, PointRef, Resolution, Series, TransitionRecord


class ReportSource(Protocol):
    async def units(self) -> list[Place]:
        """Every unit (联网单位) of the site."""

    async def unit(self, key: str) -> Place | None:
        """The unit with site-file key ``key``, or None."""

    async def places(self, unit_id: str) -> list[Place]:
        """The unit and every building, floor and location under it."""

    async def devices(self, unit_id: str) -> list[DeviceRef]:
        """Devices of the unit (orphaned ones too: their history belongs to the period)."""

    async def points(self, unit_id: str, classes: Collection[str]) -> list[PointRef]:
        """Points of the unit's devices whose class is in ``classes``, with their alarm settings."""

    async def rollups(self, point_ids: Sequence[str], start: float, end: float, resolution: Resolution) -> dict[str, Series]:
        """Rollup rows with ``start <= bucket < end`` per point (points without rows may be absent)."""

    async def alarms(self, unit_id: str, start: float, end: float) -> list[AlarmRecord]:
        """Alarms of the unit alive at some time in [start, end): started before ``end`` and not cleared before ``start``."""

    async def transitions(self, alarm_ids: Sequence[str]) -> list[TransitionRecord]:
        """History lines of these alarms, in order."""

    async def offline_intervals(self, unit_id: str, start: float, end: float) -> list[Interval]:
        """Device outages overlapping [start, end)."""

    async def hazards(self, unit_id: str, start: float, end: float) -> list[Hazard] | None:
        """Hazards open at some time in the period; None when no hazard register exists (issue 20)."""

    async def inspections(self, unit_id: str, start: float, end: float) -> InspectionStats | None:
        """Inspection completion in the period; None when no inspection register exists (issue 20)."""
