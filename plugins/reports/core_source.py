"""``ReportSource`` inside the running core: rollups through ``CoreAPI.history`` (the SDK's
history read), everything else as ``sqlite_source.StorageSource`` reads it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from firebus.sdk.core_api import History, HistoryBucket

from .model import AlarmRecord, Resolution, Series
from .settings import ThresholdSettings
from .sqlite_source import StorageSource

_BUCKET = {Resolution.FIVE_MIN: HistoryBucket.FIVE_MIN, Resolution.HOUR: HistoryBucket.HOUR}


class CoreSource(StorageSource):
    def __init__(self, core: Any, settings: ThresholdSettings | None = None,
                 device_names: Mapping[str, str] | None = None) -> None:
        super().__init__(core.storage, settings, device_names)
        self.core = core

    async def rollups(self, point_ids: Sequence[str], start: float, end: float, resolution: Resolution) -> dict[str, Series]:
        return self.to_series(await self.rollup_rows(point_ids, start, end, resolution))

    async def rollup_rows(self, point_ids: Sequence[str], start: float, end: float, resolution: Resolution) -> History:
        return await self.core.history(list(point_ids), start, end, _BUCKET[resolution])

    @staticmethod
    def to_series(history: History) -> dict[str, Series]:
        """Rows → numpy (CPU: the scheduler does it in its worker thread, not on the event loop)."""
        return {pid: Series.from_rows(rows) for pid, rows in history.rows.items() if rows}

    async def alarm(self, alarm_id: str) -> AlarmRecord | None:
        """One alarm as it stands now (the live score's feed re-reads it on every transition)."""
        rows = await self.storage.fetchall(
            "SELECT id, category, severity, active, acknowledged, device_id, point_id, location_id, start_ts, data"
            " FROM alarms WHERE id = ?", (alarm_id,))
        return self._alarm_records(rows)[0] if rows else None
