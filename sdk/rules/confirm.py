"""Multi-detector confirmation: GB 50116's two-detector ("与" logic) fire confirmation.

GB 50116-2013 4.1.6 lets automatic fire-protection linkage start only on the
"and" of two independent alarm signals (two detectors, or a detector and a
manual call point) in the protected area.  This rule keeps one state per
location: each detector in alarm raises a *single-detector* fire alarm on its own
point (首警, unconfirmed); when ``required`` detectors of the location are in
alarm, or went into alarm within ``window`` seconds of each other, a *confirmed*
fire alarm is raised on the location.  ``distinct_classes`` asks for
smoke + heat (different point classes) instead of any two.

The confirmed alarm clears when no detector of the location is in alarm any more.
"""

from __future__ import annotations

from typing import Any, Mapping

import msgspec

from ..core_api import PointInfo
from ..rule import AlarmRule, Condition, Evaluation, RuleConfigError, RuleInput, Scope, Subject, ValueInput, truthy
from ..vocab import AlarmCategory, PointClass, Severity


class ConfirmOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    required: int = 2
    # Design choice, not a norm: GB 50116 sets no time window; detectors that restore by
    # themselves (NB smoke alarms) still count for 5 minutes after they went off.
    window: float | None = 300.0
    distinct_classes: bool = False
    single_severity: Severity = Severity.ALARM
    confirmed_severity: Severity = Severity.FIRE


_DETECTOR = {"required": 2}


class MultiDetectorRule(AlarmRule):
    type_key = "two_detector"
    Options = ConfirmOptions
    scope = Scope.LOCATION
    defaults = {PointClass.SMOKE: _DETECTOR, PointClass.HEAT: _DETECTOR, PointClass.FLAME: _DETECTOR}

    def check_options(self, opts: ConfirmOptions) -> None:
        if opts.required < 1 or (opts.window is not None and opts.window < 0):
            raise RuleConfigError(f"rule {self.key!r}: required ≥ 1 and window ≥ 0")

    def evaluate(self, point: PointInfo, opts: ConfirmOptions, inp: RuleInput, state: Mapping[str, Any]) -> Evaluation:
        if not isinstance(inp, ValueInput) or inp.key != point.key or inp.fault is not None:
            return Evaluation(state=dict(state))
        points: dict[str, dict[str, Any]] = {pid: dict(p) for pid, p in state.get("points", {}).items()}
        confirmed = bool(state.get("confirmed"))
        confirmed_by = int(state.get("confirmed_by", 0))  # detectors that confirmed it (kept while it lasts)
        on = truthy(inp.value)
        prev = points.get(point.point_id)
        activated = on and not (prev and prev["on"])
        entry = {"on": on, "at": inp.ts if activated else (prev or {}).get("at"), "cls": point.point_class,
                 "dev": point.device_id}
        points[point.point_id] = entry

        where = point.location_name or "?"
        conditions = [
            Condition(
                category=AlarmCategory.FIRE,
                severity=opts.single_severity,
                active=on,
                value=inp.value,
                group="single",
                message=f"{point.name or point.key} at {where}: "
                "fire alarm from one detector (unconfirmed)"
                if on
                else "",
                message_zh=f"{where}：{point.device_name or point.name or point.key} 首警（单只探测器报警，未确认）"
                if on
                else "",
            )
        ]
        was_confirmed = confirmed
        if activated and point.location_id:
            counted = [
                (pid, p)
                for pid, p in points.items()
                if p["on"] or (opts.window is not None and p.get("at") is not None and p["at"] >= inp.ts - opts.window)
            ]
            # Detectors, not points: a camera's flame and smoke points (or a multi-sensor
            # head's smoke and heat) are one device, one independent signal (GB 50116 4.1.6).
            devices = len({p.get("dev") or pid for pid, p in counted})
            enough = devices >= opts.required
            if opts.distinct_classes:
                enough = enough and len({p["cls"] for _, p in counted}) >= 2
            if enough:
                confirmed_by = max(confirmed_by, devices)
            confirmed = confirmed or enough
        if confirmed and not any(p["on"] for p in points.values()):
            confirmed = False
        if not confirmed:
            confirmed_by = 0
        if point.location_id and (confirmed or was_confirmed):
            in_alarm = sorted(pid for pid, p in points.items() if p["on"] or pid == point.point_id and activated)
            # The title counts the detectors that confirmed it, not those still on now: a
            # detector that restored by itself still confirmed the fire.
            n_in_alarm = len({points[pid].get("dev") or pid for pid in in_alarm})
            by = max(confirmed_by, n_in_alarm)
            conditions.append(
                Condition(
                    category=AlarmCategory.FIRE,
                    severity=opts.confirmed_severity,
                    active=confirmed,
                    value=n_in_alarm,
                    group="confirmed",
                    subject=Subject.LOCATION,
                    message=f"confirmed fire at {where}: {by} detector{'s' if by != 1 else ''} in alarm"
                    if confirmed
                    else "",
                    message_zh=f"{where} 确认火警：{by} 只探测器报警" if confirmed else "",
                )
            )
        if opts.window is not None:  # forget restored detectors once they cannot count any more
            points = {
                pid: p
                for pid, p in points.items()
                if p["on"] or (p.get("at") is not None and p["at"] >= inp.ts - opts.window)
            }
        else:
            points = {pid: p for pid, p in points.items() if p["on"]}
        return Evaluation(state={"points": points, "confirmed": confirmed, "confirmed_by": confirmed_by},
                          conditions=conditions)
