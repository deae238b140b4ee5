"""What the engine keeps in memory, and the ``EngineState`` every part of it shares.

Each part of the engine (``checkpoint``, ``lifecycle``, ``dispatch`` …) is a mixin over
this state; ``AlarmEngine`` (``engine.py``) is all of them together.  Nothing here is read
from the database per entry: alarms, rule states and caches live in these dicts and are
checkpointed (``checkpoint.py``).
"""

from __future__ import annotations

from collections import OrderedDict

import logging
from typing import Any, Callable, Iterable, Mapping

import anyio
import msgspec

from firebus.sdk import Event, PointInfo
from firebus.sdk.rule import AlarmRule
from firebus.sdk.timers import TimerQueue

from ..journal.consumer import DurableConsumer  # noqa: F401  (the type of self.consumer)
from .config import AlarmConfig, instantiate_rules
from .linkage import ActionHandler, make_write_point_handler
from .linkage_runner import LinkageRunner
from .model import Alarm, Episode
from .store import AlarmStore

# One logger for every part of the engine, named as it was when the engine was one module
# (log settings and filters name it).
log = logging.getLogger("firebus.core.alarms.engine")
#: remembered for late.py: late readings seen, points with a late run, alarm keys with past episodes
LATE_KEEP = 4096
#: past episodes remembered per alarm key (subject, rule, category), newest last
EPISODES_PER_KEY = 32


class LateRun:
    """One point's late readings handed over in time order (a buffered upload): the rules'
    states on them, apart from the live ones, so an episode in it is one alarm (late.py)."""

    __slots__ = ("last_ts", "states", "wake", "alarms")

    def __init__(self) -> None:
        self.last_ts = float("-inf")
        self.states: dict[str, dict[str, Any]] = {}  # rule key -> its state on this run
        self.wake: dict[str, float] = {}  # rule key -> the run's time it asked to be woken at
        #: dedup key -> (rule key, alarm id, the late alarm if this run raised it): the episode
        #: the run is in while its rule still shows the condition
        self.alarms: dict[str, tuple[str, str, Alarm | None]] = {}


class _RuleState(msgspec.Struct, gc=False):
    """One rule's state for one scope (point, device or place), as checkpointed.

    Not tracked by the cycle collector: it holds a JSON-shaped state and strings, never
    itself (40,000 of them at 10,000 devices)."""

    state: dict[str, Any]
    point_id: str
    context_id: str | None = None
    wake_at: float | None = None


#: what caused an evaluation: the journal entry (its id is worked out only if recorded), an id, or none
Cause = Event | str | None


def _ref(cause: Cause) -> str | None:
    return cause.ref if isinstance(cause, Event) else cause


class EngineState:
    """The engine's memory.  ``core`` is a ``firebus.sdk.CoreAPI`` with a journal."""

    #: kept under its old name: callers check a configuration with it before building an engine
    _instantiate = staticmethod(instantiate_rules)

    def _remember_episode(self, alarm: Alarm, now: float) -> None:
        """An episode that is over (cleared): a late reading inside it is of it, not a new alarm (late.py)."""
        start, end = alarm.reading_window(now)
        self._remember_window(alarm.dedup_key, Episode(start, end, alarm.id, alarm.ended_by_reading))

    def _remember_window(self, dedup: str, episode: Episode) -> None:
        windows = self._late_windows
        episodes = windows.get(dedup)
        if episodes is None:
            windows[dedup] = [episode]
        else:
            windows.move_to_end(dedup)
            for i, known in enumerate(episodes):
                if known.alarm_id == episode.alarm_id:
                    episodes[i] = episode
                    break
            else:
                episodes.append(episode)
                if len(episodes) > EPISODES_PER_KEY:
                    del episodes[0]
        while len(windows) > LATE_KEEP:
            windows.popitem(last=False)

    def __init__(
        self,
        core: Any,
        rule_types: Iterable[type[AlarmRule]],
        config: AlarmConfig | None = None,
        handlers: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self.core = core
        self.clock = core.clock
        self.config = config or AlarmConfig()
        self.store = AlarmStore(core.storage)
        self.rules = instantiate_rules(list(rule_types), self.config.rules, self.config.default_rules)
        self._by_key = {rule.key: rule for rule in self.rules}
        self._gates = [r for r in self.rules if r.gate]
        self._others = [r for r in self.rules if not r.gate]
        self._has_related = any(type(r).related_keys is not AlarmRule.related_keys for r in self.rules)
        self.timers = TimerQueue(self.clock)
        self._open: dict[str, Alarm] = {}  # id -> alarm still on the board
        self._closed: dict[str, Alarm] = {}  # left the board, row not yet confirmed on disk
        self._active: dict[str, Alarm] = {}  # dedup_key -> active alarm
        self._states: dict[tuple[str, str], _RuleState] = {}
        self._last_update_pub: dict[str, float] = {}
        self._config_errors: set[tuple[str, str]] = set()
        self._invalid: dict[str, str] = {}  # point id -> why its current value is not a measurement
        self._rules_for: dict[str, tuple[list[AlarmRule], list[AlarmRule]]] = {}  # point id -> (gates, others)
        #: the distinct (gates, others) pairs, shared by the points they apply to
        self._rule_sets: dict[tuple[int | None, ...], tuple[list[AlarmRule], list[AlarmRule]]] = {}
        self._related_for: dict[str, list[tuple[AlarmRule, PointInfo]]] = {}
        self._plans: dict[str, tuple[list[tuple[AlarmRule, str]], list[tuple[AlarmRule, str]]]] = {}
        #: point id -> rule key -> (lo, hi): its values strictly inside need no evaluation (Evaluation.steady)
        self._guards: dict[str, dict[str, tuple[float, float]]] = {}
        self._heard: dict[str, float] = {}  # device id -> when its last state change arrived
        self.skipped = 0
        #: device id -> keys of the rules that asked to hear its repeated values (Evaluation.wants_reports;
        #: "*": every rule, while the device has an active alarm)
        self.report_watch: dict[str, set[str]] = {}
        self._alarming: dict[str, int] = {}
        self._devices: dict[str, Any] = {}
        self._active_subjects: dict[str, int] = {}  # subject -> active alarms (skip clears of nothing)
        #: late alarms (late.py): dedup key -> its newest cleared episodes on the readings' clock
        #: (reloaded at start), (dedup key, reading time) seen, and each point's run of late readings
        self._late_windows: OrderedDict[str, list[Episode]] = OrderedDict()
        self._late_seen: OrderedDict[tuple[str, float], None] = OrderedDict()
        self._late_runs: OrderedDict[str, LateRun] = OrderedDict()
        self.late_alarms = 0
        self._links_down: dict[str, tuple[float, str, str]] = {}  # transport -> (since, reason, cause)
        self._unsubscribe_reports: Callable[[], None] | None = None
        self._unsubscribe_registry: Callable[[], None] | None = None
        # checkpointing: what changed since the last checkpoint confirmed on disk
        self._version = 0
        self._dirty_rules: dict[tuple[str, str], int] = {}
        self._dirty_alarms: dict[str, int] = {}
        # The version of each dirty item already handed to the writer: the writer commits
        # what it was given, in order, so a later checkpoint need not carry it again (at
        # 10,000 open alarms re-sending every unconfirmed row with every flush was O(n²)).
        self._sent_rules: dict[tuple[str, str], int] = {}
        self._sent_alarms: dict[str, int] = {}
        self._history: list[tuple[Any, ...]] = []
        # Media rows (core/media.py): stills offered with the reading that raised an alarm,
        # attached in the transaction of its ``new`` transition.
        self._media_links: list[tuple[Any, ...]] = []
        self._last_claim: tuple[str, float, list[str]] = ("", 0.0, [])
        # Flushes submitted but not yet durable: history() waits for them so a reader
        # who saw an alarm in memory also finds its transitions on disk.
        self._inflight: set[anyio.Event] = set()
        self._outbox: list[Event] = []
        self._waiters: list[anyio.Event] = []
        all_handlers: dict[str, ActionHandler] = {"write_point": make_write_point_handler(core)}
        all_handlers.update(handlers or {})
        self.linkage = LinkageRunner(core, self.store, self.config.linkage, all_handlers, self.clock, self)
        self.consumer: DurableConsumer | None = None
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_stopped = anyio.Event()
        self.rule_errors = 0
        self.evaluated = 0
        self.started = False
