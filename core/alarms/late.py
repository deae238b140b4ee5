"""Late readings: an alarm that came and went while nobody could hear it (补报).

A detector whose link was down uploads what it buffered after it reported its present
state, a gateway hands readings over out of order, or a broker redelivers after a crash
in another order.  Ingest keeps such a reading as history (``StateChanged.late``): it
never turns the present back.  But a fire, a gas leak or a hot cable in it did happen,
and a person must hear of it.  So every late reading of a point with rules is run through
the point's rules — on a state of its own, apart from the live one:

* Late readings of a point handed over in time order are one **run** (``LateRun``): the
  rules keep their state along it (hysteresis, on-delays: a wake-up the run reaches is a
  tick at that time), so an episode in it is one alarm however many readings show it, and
  a restore in it ends the episode.  A reading older than the run's last starts a new run.
* An active condition (not a fault or offline) that nothing already covers becomes an
  alarm that started at the reading's time (``Alarm.late``, ``AlarmEvent.occurred_ts``)
  and is cleared at once, because the present does not show it.  It stays on the board
  until a person acknowledges it; notify and the uplink tell it like any new alarm.
* Covered means: the same alarm is active now (the present shows it), the reading was
  seen already (a redelivered upload), or its time falls inside an episode that is over
  (``_late_windows``: the first to the last reading that showed or cleared it, on the
  readings' own clock, so a redelivery of a reading already told raises no phantom).  A
  late reading that shows the condition absent inside such a window ends the window
  there: the live engine only saw the end with the next reading it got.
"""

from __future__ import annotations

from firebus.sdk import ActorKind, AlarmCategory, AlarmTransition, Context, Event, PointInfo, StateChanged, new_id
from firebus.sdk.rule import AlarmRule, Condition, Evaluation, RuleConfigError, RuleInput, TickInput, ValueInput

from .lifecycle import _subject, _worse
from .model import Alarm
from .runs import RuleRuns, _merge
from .state import LATE_KEEP, LateRun, log, _ref

#: late alarms worth no record: a fault or an offline that came and went while the link was down
_NOT_TOLD = frozenset({AlarmCategory.FAULT, AlarmCategory.OFFLINE})
#: wake-ups a run may reach before one reading (a rule re-arming at the same time is not looped on)
_MAX_TICKS = 8


class LateReadings(RuleRuns):
    """Alarms shown only by readings older than the present."""

    def _on_late(self, data: StateChanged, now: float, cause: Event) -> None:
        if data.fault is not None:
            return  # a fault that came and went while the link was down: history only
        point = self.core.registry.point_info(data.point_id) or PointInfo(
            point_id=data.point_id, device_id=data.device_id, key=data.point_key, point_class=data.point_class
        )
        gates, others = self._rules_of(point)
        if not gates and not others:
            return
        ts = data.ts
        run = self._late_run(point.point_id, ts)
        told = [rule for rule in others if not rule.pause_while_down]  # liveness: a late reading says nothing
        # Wake-ups the run has reached (an on-delay run out between two readings of the upload).
        for _ in range(_MAX_TICKS):
            due = [(wake, rule) for rule in told if (wake := run.wake.get(rule.key)) is not None and wake <= ts]
            if not due:
                break
            for wake, rule in due:
                run.wake.pop(rule.key, None)
                ev = self._evaluate_late(rule, point, TickInput(ts=wake, last_report=run.last_ts), run)
                if ev is not None:
                    self._late_conditions(rule, point, ev, wake, ts, now, cause, run)
        run.last_ts = ts
        inp = ValueInput(ts=ts, key=point.key, value=data.new_value, point_id=point.point_id,
                         point_class=point.point_class, value_ts=ts)
        for rule in gates:
            ev = self._evaluate_late(rule, point, inp, run)
            if ev is not None and ev.invalid:
                return  # not a measurement (out of range, a vendor sentinel)
        for rule in told:
            ev = self._evaluate_late(rule, point, inp, run)
            if ev is not None:
                self._late_conditions(rule, point, ev, ts, ts, now, cause, run)

    def _late_run(self, point_id: str, ts: float) -> LateRun:
        """The point's run that ``ts`` continues, or a new one."""
        runs = self._late_runs
        run = runs.get(point_id)
        if run is None or ts <= run.last_ts:
            run = runs[point_id] = LateRun()
        runs.move_to_end(point_id)
        while len(runs) > LATE_KEEP:
            runs.popitem(last=False)
        return run

    def _evaluate_late(self, rule: AlarmRule, point: PointInfo, inp: RuleInput, run: LateRun) -> Evaluation | None:
        """The rule's evaluation on the run's state; the live state is left alone."""
        try:
            ev = rule.evaluate(point, rule.options_for(point), inp, run.states.get(rule.key, {}))
        except RuleConfigError:
            return None  # the live path shows the bad options as a fault
        except Exception:
            self.rule_errors += 1
            log.exception("alarms: rule %r raised on a late reading of point %s", rule.key, point.point_id)
            return None
        run.states[rule.key] = ev.state
        if ev.wake_at is None:
            run.wake.pop(rule.key, None)
        else:
            run.wake[rule.key] = ev.wake_at
        return ev

    def _late_conditions(self, rule: AlarmRule, point: PointInfo, ev: Evaluation, at: float, upto: float,
                         now: float, cause: Event, run: LateRun) -> None:
        """Act on one evaluation of a run: the condition held from ``at`` (a tick's or the
        reading's time) until the reading at ``upto``."""
        active: set[str] = set()
        for cond in _merge(ev.conditions) if ev.conditions else ():
            if cond.category in _NOT_TOLD:
                continue
            subject, _, _, _ = _subject(point, cond)
            name = f"{rule.key}:{cond.group}" if cond.group else rule.key
            dedup = f"{subject}|{name}|{cond.category}"
            if cond.active:
                active.add(dedup)
                self._late_active(rule, point, cond, dedup, at, upto, now, cause, run)
            else:
                self._late_quiet(dedup, upto)
        # The run's episodes of this rule that it no longer shows have ended at this reading.
        for dedup, (rule_key, alarm_id, alarm) in list(run.alarms.items()):
            if rule_key == rule.key and dedup not in active:
                del run.alarms[dedup]
                self._late_ended(dedup, alarm_id, alarm, upto, now)

    def _late_active(self, rule: AlarmRule, point: PointInfo, cond: Condition, dedup: str, at: float,
                     upto: float, now: float, cause: Event, run: LateRun) -> None:
        if dedup in self._active:
            return  # the present shows it: the alarm on the board is this one
        seen = self._late_seen
        if (dedup, at) in seen:
            return  # a redelivered upload
        seen[(dedup, at)] = None
        while len(seen) > LATE_KEEP:
            seen.popitem(last=False)
        episodes = self._late_windows.get(dedup, [])
        held = run.alarms.get(dedup)
        if held is not None:  # the episode this run is in
            _, alarm_id, alarm = held
            episode = next((e for e in episodes if e.alarm_id == alarm_id), None)
            if episode is None or upto <= episode.end or not episode.closed:
                if alarm is not None:  # raised by this run: more of it (a detector repeats its alarm)
                    self._late_more(alarm, cond, upto, now)
                elif episode is not None and upto > episode.end:  # an episode told before goes on
                    self._remember_window(dedup, episode._replace(end=upto))
                return
            del run.alarms[dedup]  # past a reading that showed that one gone: a new episode
        for episode in episodes:
            if episode.start <= upto and at <= episode.end:
                # Of an episode already recorded (told live, or late before): a redelivery.
                run.alarms[dedup] = (rule.key, episode.alarm_id, None)
                return
        name = f"{rule.key}:{cond.group}" if cond.group else rule.key
        subject, point_id, device_id, location_id = _subject(point, cond)
        parent_id = _ref(cause)
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=subject, rule=name, rule_type=rule.type_key,
            category=cond.category, severity=cond.severity, peak_severity=cond.severity,
            point_id=point_id, device_id=device_id, location_id=location_id, unit_id=point.unit_id,
            message=cond.message, message_zh=cond.message_zh, first_value=cond.value, last_value=cond.value,
            peak_value=cond.value, start_ts=at, last_ts=at, late=True, first_reading_ts=at, last_reading_ts=upto,
            context_id=new_id(), parent_context_id=parent_id,
        )
        self._open[alarm.id] = alarm
        run.alarms[dedup] = (rule.key, alarm.id, alarm)
        self.late_alarms += 1
        log.warning("alarms: %s on %s happened at %.0f, recorded %.0f s late (补报)", cond.category, subject, at,
                    now - at)
        ctx = Context(id=alarm.context_id, parent_id=parent_id, actor=ActorKind.RULE, actor_id=name)
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"value": cond.value, "late": True, "at": at})
        # The present does not show it: cleared now, on the board until a person acknowledges it.
        alarm.active = False
        alarm.clear_ts = now
        alarm.cleared_by = "late"
        self._remember_episode(alarm, now)
        self._transition(alarm, AlarmTransition.CLEARED,
                         Context(parent_id=alarm.context_id, actor=ActorKind.RULE, actor_id=name), now, {"late": True})

    def _late_ended(self, dedup: str, alarm_id: str, alarm: Alarm | None, ts: float, now: float) -> None:
        """The run's reading at ``ts`` shows its episode gone: that is where the episode ends."""
        if alarm is not None:
            alarm.saw_reading(ts)
            alarm.ended_by_reading = True
            if not alarm.open:
                self._closed[alarm.id] = alarm  # acknowledged meanwhile: its row is written again
            self._remember_episode(alarm, now)
            self._touch_alarm(alarm)
            return
        episode = next((e for e in self._late_windows.get(dedup, ()) if e.alarm_id == alarm_id), None)
        if episode is not None and not episode.closed and ts >= episode.end:
            self._remember_window(dedup, episode._replace(end=ts, closed=True))

    def _late_quiet(self, dedup: str, ts: float) -> None:
        """A late reading shows the condition absent at ``ts``: an episode over whose window
        it falls ended there (the live engine saw its end only with the next reading it got),
        so a late alarm reading after ``ts`` is a new episode, not this one."""
        episodes = self._late_windows.get(dedup)
        if not episodes:
            return
        for i, episode in enumerate(episodes):
            if episode.start < ts < episode.end:
                episodes[i] = episode._replace(end=ts, closed=True)
                alarm = self._open.get(episode.alarm_id)
                if alarm is not None and alarm.first_reading_ts is not None:
                    alarm.last_reading_ts = ts
                    alarm.ended_by_reading = True
                    self._touch_alarm(alarm)

    def _late_more(self, alarm: Alarm, cond: Condition, ts: float, now: float) -> None:
        """Another reading of a late episode: counted; a worse level is told as an update."""
        if not alarm.open:
            self._closed[alarm.id] = alarm  # acknowledged meanwhile: its row is written again
        alarm.count += 1
        alarm.last_value = cond.value
        alarm.saw_reading(ts)
        if _worse(cond, cond.value, alarm.peak_value):
            alarm.peak_value = cond.value
        self._remember_episode(alarm, now)
        if cond.severity > alarm.severity:
            before = alarm.severity
            alarm.severity = cond.severity
            alarm.peak_severity = max(alarm.peak_severity, cond.severity)
            if cond.message:
                alarm.message, alarm.message_zh = cond.message, cond.message_zh
            ctx = Context(parent_id=alarm.context_id, actor=ActorKind.RULE, actor_id=alarm.rule)
            self._transition(alarm, AlarmTransition.UPDATE, ctx, now,
                             {"severity": int(cond.severity), "from": int(before), "late": True, "at": ts})
        else:
            self._touch_alarm(alarm)
