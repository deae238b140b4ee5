"""What a person calls a device, a point and a place, for the report's text."""

from __future__ import annotations

from .model import DeviceRef, Place, PointRef


class Names:
    def __init__(self, places: list[Place], devices: list[DeviceRef], points: list[PointRef]) -> None:
        self.places = {p.id: p for p in places}
        self.devices = {d.id: d for d in devices}
        self.points = {p.id: p for p in points}

    def device(self, device_id: str | None) -> str:
        d = self.devices.get(device_id or "")
        return d.name if d else (device_id or "-")

    def point(self, point_id: str | None) -> str:
        p = self.points.get(point_id or "")
        return p.label if p else ""

    def unit_of(self, point_id: str | None) -> str:
        p = self.points.get(point_id or "")
        return p.unit if p else ""

    def place_path(self, place_id: str | None) -> str:
        """building / floor / location (the unit itself is left out: the report is about it)."""
        parts: list[str] = []
        seen = set()
        while place_id and place_id in self.places and place_id not in seen:
            seen.add(place_id)
            p = self.places[place_id]
            if p.kind != "unit":
                parts.append(p.label)
            place_id = p.parent_id
        return " / ".join(reversed(parts))

    def device_place(self, device_id: str | None) -> str:
        d = self.devices.get(device_id or "")
        return self.place_path(d.location_id) if d else ""

    def ancestors(self, place_id: str | None) -> list[str]:
        out = []
        seen = set()
        while place_id and place_id in self.places and place_id not in seen:
            seen.add(place_id)
            out.append(place_id)
            place_id = self.places[place_id].parent_id
        return out
