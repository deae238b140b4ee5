"""Which rules concern a point: worked out once per point, forgotten when the registry changes.

Also the registry lookups the rules need (a device's points, when a subject was last
heard from).  A lookup that fails is logged and treated as "none", never raised into
the engine.
"""

from __future__ import annotations

from firebus.sdk import PointInfo
from firebus.sdk.rule import AlarmRule, RuleConfigError, Scope

from .state import EngineState, log


class RuleSelection(EngineState):
    """Per-point rule plans, related-point pairs and their caches."""

    def _rules_of(self, point: PointInfo) -> tuple[list[AlarmRule], list[AlarmRule]]:
        cached = self._rules_for.get(point.point_id)
        if cached is None:
            others = [r for r in self._others if self._applies(r, point)]
            # One liveness rule per device: where a plugin's subclass of a liveness rule applies
            # (smoke detectors' reported heartbeat), the generic base gives way — one offline
            # alarm per dead device, not two.
            live = [r for r in others if r.pause_while_down]
            if len(live) > 1:
                others = [r for r in others if not (r.pause_while_down and any(
                    type(o) is not type(r) and isinstance(o, type(r)) for o in live))]
            gates = [r for r in self._gates if self._applies(r, point)]
            # Points with the same rules share one (gates, others) pair: a site has a few
            # distinct rule sets and tens of thousands of points.  Read-only once made.
            shape = (*map(id, gates), None, *map(id, others))
            cached = self._rule_sets.get(shape)
            if cached is None:
                cached = self._rule_sets[shape] = (gates, others)
            self._rules_for[point.point_id] = cached
        return cached

    def _related_to(self, point: PointInfo) -> list[tuple[AlarmRule, PointInfo]]:
        """(rule, sibling point) pairs whose rule also needs this point's values (gas feedback…)."""
        pairs = self._related_for.get(point.point_id)
        if pairs is None:
            pairs = [
                (rule, sibling)
                for sibling in self._siblings(point.device_id) if sibling.point_id != point.point_id
                for rule in self._rules_of(sibling)[1] if point.key in self._related(rule, sibling)
            ]
            self._related_for[point.point_id] = pairs
        return pairs

    def invalidate(self, point_id: str | None = None) -> None:
        """The registry changed (overrides, new points): recompute which rules apply."""
        if point_id is None:
            self._rules_for.clear()
            self._rule_sets.clear()
            self._related_for.clear()
            self._plans.clear()
            self._guards.clear()
            return
        self._rules_for.pop(point_id, None)
        self._plans.pop(point_id, None)
        self._guards.pop(point_id, None)
        if self._has_related and self._related_for:
            self._related_for.clear()  # a sibling's change counts too

    def _plan(self, point: PointInfo) -> tuple[list[tuple[AlarmRule, str]], list[tuple[AlarmRule, str]]]:
        """The point's (gate, scope) and (rule, scope) pairs, worked out once per point."""
        plan = self._plans.get(point.point_id)
        if plan is None:
            gates, others = self._rules_of(point)
            plan = ([(r, r.scope_of(point)) for r in gates], [(r, r.scope_of(point)) for r in others])
            self._plans[point.point_id] = plan
        return plan

    def _siblings(self, device_id: str) -> list[PointInfo]:
        try:
            return list(self.core.registry.points_of_device(device_id))
        except Exception:
            log.exception("alarms: registry lookup of device %s failed", device_id)
            return []

    def _applies(self, rule: AlarmRule, point: PointInfo) -> bool:
        try:
            return rule.applies_to(point)
        except RuleConfigError:
            return True  # _run turns the bad options into a visible fault

    def _related(self, rule: AlarmRule, point: PointInfo) -> tuple[str, ...]:
        try:
            return rule.related_keys(point, rule.options_for(point))
        except RuleConfigError:
            return ()

    def _last_report(self, rule: AlarmRule, point: PointInfo) -> float | None:
        """When the rule's subject was last heard from (any report, changed or not)."""
        ingest = getattr(self.core, "ingest", None)
        if ingest is None:
            return self._heard.get(point.device_id)
        if rule.scope is Scope.DEVICE:
            points = [p.point_id for p in self._siblings(point.device_id)]
        else:
            points = [point.point_id]
        seen = [s.received for p in points if (s := ingest.states.get(p)) is not None and s.received]
        heard = self._heard.get(point.device_id)
        if heard is not None:
            seen.append(heard)
        return max(seen) if seen else None
