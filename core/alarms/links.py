"""Transport links (MQTT broker, Modbus gateway, serial line): one communication fault each.

A link down for ``link_fault_after`` seconds raises one fault for the transport (not one
per device); its return clears it.  Either way the devices' own rules hear of it.
"""

from __future__ import annotations

from firebus.sdk import ActorKind, AlarmCategory, AlarmTransition, Context, LinkChanged, Severity, new_id
from firebus.sdk.rule import LinkInput

from .model import Alarm
from .runs import RuleRuns


class Links(RuleRuns):
    """Link changes in, communication faults out."""

    def _link_input(self, data: LinkChanged, ts: float, cause: str) -> None:
        """A transport link went down or came back: its own fault, and its devices' rules hear of it."""
        key = f"link:{data.transport}"
        if data.up:
            self._links_down.pop(data.transport, None)
            self._arm(key, "link", None, {})
            alarm = self._active.get(self._link_dedup(data.transport))
            if alarm is not None:
                ctx = Context(parent_id=cause, actor=ActorKind.SYSTEM, actor_id=f"transport:{data.transport}")
                self._clear(alarm, ctx, ts, by=f"transport:{data.transport}", detail={"reason": "link up"})
        else:
            self._links_down[data.transport] = (ts, data.reason, cause)
            self._arm(key, "link", ts + self.config.link_fault_after, {"transport": data.transport})
        inp = LinkInput(ts=ts, transport=data.transport, up=data.up, reason=data.reason)
        devices = getattr(self.core.registry, "devices", {})
        for device in list(devices.values()):
            if device.transport == data.transport and device.orphaned_at is None and not device.discovered:
                self._device_input(device.id, inp, cause, related_only=None)

    @staticmethod
    def _link_dedup(transport: str) -> str:
        return f"transport:{transport}|link|{AlarmCategory.OFFLINE}"

    def _link_fault(self, transport: str, now: float) -> None:
        """The link stayed down for ``link_fault_after``: one communication fault for the transport."""
        down = self._links_down.get(transport)
        dedup = self._link_dedup(transport)
        if down is None or dedup in self._active:
            return
        since, reason, cause = down
        devices = [d for d in getattr(self.core.registry, "devices", {}).values()
                   if d.transport == transport and d.orphaned_at is None and not d.discovered]
        n = len(devices)
        alarm = Alarm(
            id=new_id(), dedup_key=dedup, subject=f"transport:{transport}", rule="link", rule_type="link",
            category=AlarmCategory.OFFLINE, severity=Severity.FAULT, peak_severity=Severity.FAULT,
            message=f"transport {transport} link down (communication fault) for {now - since:.0f} s: {reason}; "
                    f"{n} device(s) unreachable",
            message_zh=f"通讯链路 {transport} 中断 {now - since:.0f} 秒（通讯故障）：{reason}；{n} 台设备无法通讯",
            first_value=n, last_value=n, peak_value=n, start_ts=now, last_ts=now,
            context_id=new_id(), parent_context_id=cause,
        )
        self._open[alarm.id] = alarm
        self._activate(alarm)
        ctx = Context(id=alarm.context_id, parent_id=cause, actor=ActorKind.SYSTEM, actor_id=f"transport:{transport}")
        self._transition(alarm, AlarmTransition.NEW, ctx, now, {"reason": reason, "devices": n})
