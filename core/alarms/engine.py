"""The alarm engine: journal entries in, alarms out.

A durable consumer of the journal (``core/journal/consumer.py``): it reads
state changes, availability and link changes and command outcomes from its
cursor, runs every configured rule on every point they concern, and owns what
rules must not: alarm identity and dedup, the lifecycle (active/cleared ×
unacknowledged/acknowledged, silence, verdict), escalation and timers.  Its
outputs are journal entries too (``AlarmEvent``), which notify, linkage, the
panel and the uplink consume.

Why it is exact across crashes:

* Handling is synchronous and in memory — no database read per entry.
* What the engine keeps (rule states with their wake-up times, alarms) is
  checkpointed with the cursor: with every transition (alarm lane, in the same
  transaction as the transition's history row and ``AlarmEvent``) and every
  ``checkpoint_s`` otherwise.  Each checkpoint carries every change not yet
  confirmed on disk, and rows carry the checkpoint's number so an older
  checkpoint committing later (the two lanes may reorder) never overwrites a
  newer one.  So the database always holds the engine as of one cursor, and a
  restart replays exactly the entries after it: nothing re-raised, nothing lost.
* Rule inputs carry the time the entry was made (our clock when the reading
  arrived), not the time it is evaluated: a backlog, or a replay, does not
  shift an on-delay.  A device clock never times anything.

Other rules of the house:

* A rule that raises, or options that do not validate, never stop the engine:
  the former is logged and counted, the latter becomes a visible fault alarm
  ("rule configuration invalid") on the point, so a typo cannot silently disable
  a fire alarm.
* Readings of devices nobody commissioned (discovered) raise nothing.
* Late readings (older than the point's state) are history, not input.

Where each job lives (each part is a mixin over ``EngineState``; ``AlarmEngine`` is all
of them):

=================  ===================================================================
``config.py``      the ``alarms`` section: ``AlarmConfig``, ``RuleConfig``, rule instances
``state.py``       what the engine keeps in memory (``EngineState``)
``replay.py``      start-up (reload, replay after the checkpoint, follow) and stop
``dispatch.py``    journal entries, repeats, registry changes, timers → rule runs
``selection.py``   which rules concern a point (cached per point)
``runs.py``        one rule on one point: evaluate, keep its state, act on its conditions
``lifecycle.py``   conditions → alarms: raise, update, clear
``links.py``       transport links down → one communication fault per transport
``escalation.py``  reminders of unacknowledged alarms
``timers.py``      arming the keyed timer queue
``checkpoint.py``  recording transitions; committing them with the checkpoint
``commands.py``    operator actions: acknowledge, silence, clear, verdict
``queries.py``     open alarms, stored alarms, lookups, metrics
=================  ===================================================================

A newcomer reads ``dispatch.py`` → ``runs.py`` → ``lifecycle.py`` → ``checkpoint.py``.
"""

from __future__ import annotations

from .commands import OperatorActions
from .config import DEFAULT_ESCALATION, AlarmConfig, RuleConfig
from .dispatch import INPUT_TYPES
from .queries import Queries
from .replay import Replay

__all__ = ["DEFAULT_ESCALATION", "INPUT_TYPES", "AlarmConfig", "AlarmEngine", "RuleConfig"]


class AlarmEngine(Replay, OperatorActions, Queries):
    """Runs rules on points and owns alarms.  ``core`` is a ``firebus.sdk.CoreAPI`` with a journal.

    ``AlarmEngine(core, rule_types, config=None, handlers=None)``; then ``await start()``.
    """
