"""Which routes an alarm takes and who each escalation step reaches: pure functions."""

from __future__ import annotations

from typing import Any

from firebus.sdk import AlarmCategory, AlarmEvent

from .config import NotifyConfig, Person, Route, Step, parse_severity


def unit_names(registry: Any, unit_id: str | None) -> tuple[set[str], str]:
    """Every name the site file may use for the alarm's unit (联网单位), and its display name.

    Alarms carry the registry's unit *id*; people and routes in the site file
    name units by *key*.  Both are accepted.  The registry is asked through
    ``place(id)`` (requested for the SDK's RegistryAPI) or, until that exists,
    its ``places`` mapping.
    """
    if unit_id is None:
        return set(), ""
    names = {unit_id}
    place = None
    lookup = getattr(registry, "place", None)
    try:
        if callable(lookup):
            place = lookup(unit_id)
        elif registry is not None:
            place = getattr(registry, "places", {}).get(unit_id)
    except Exception:
        place = None
    key = getattr(place, "key", None)
    if key:
        names.add(key)
    return names, getattr(place, "name", "") or key or unit_id


def matching_routes(cfg: NotifyConfig, alarm: AlarmEvent, units: set[str] | None = None) -> list[Route]:
    units = {alarm.unit_id} - {None} if units is None else units  # type: ignore[operator]
    return [r for r in cfg.routes if route_matches(r, alarm, units)]


def route_matches(route: Route, alarm: AlarmEvent, units: set[str]) -> bool:
    if route.units and not units.intersection(route.units):
        return False
    if route.categories and AlarmCategory(alarm.category) not in route.categories:
        return False
    return int(alarm.severity) >= int(parse_severity(route.min_severity))


def step_of(route: Route, index: int) -> Step:
    """Step ``index``; past the configured steps, the last one repeats."""
    steps = route.escalation.steps
    return steps[min(index, len(steps) - 1)]


def step_due(route: Route, index: int, started: float) -> float | None:
    """When step ``index`` is due, or None when the route has no such step."""
    steps = route.escalation.steps
    if index < len(steps):
        return started + steps[index].after_minutes * 60.0
    esc = route.escalation
    repeat = index - len(steps) + 1
    if esc.repeat_minutes <= 0 or repeat > esc.max_repeats:
        return None
    return started + steps[-1].after_minutes * 60.0 + repeat * esc.repeat_minutes * 60.0


def recipients(cfg: NotifyConfig, step: Step, units: set[str]) -> list[Person]:
    """People holding one of the step's roles for the alarm's unit.

    A person with no ``units`` covers every unit; an alarm with no unit reaches
    everyone holding the role (better one person too many than none).
    """
    wanted = set(step.roles)
    return [
        p for p in cfg.people
        if wanted.intersection(p.roles) and (not p.units or not units or units.intersection(p.units))
    ]


def describe(alarm: AlarmEvent, registry: Any) -> dict[str, Any]:
    """Human names for the alarm's point, device and place, when the registry knows them."""
    out: dict[str, Any] = {"where": "", "device": alarm.device_id or ""}
    info = None
    if registry is not None and alarm.point_id:
        try:
            info = registry.point_info(alarm.point_id)
        except Exception:
            info = None
    if info is not None:
        out["where"] = info.location_name or ""
        out["device"] = " / ".join(x for x in (info.device_name, info.name) if x) or out["device"]
    elif alarm.location_id:
        # A location-wide alarm (confirmed fire): the place's name, never its raw id.
        place = registry.place(alarm.location_id) if registry is not None else None
        out["where"] = (place.name or place.key) if place is not None else alarm.location_id
    return out
