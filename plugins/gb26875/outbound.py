"""Journal entries → GB/T 26875.3 upload ADUs (firebus as the UITD).  Pure logic.

One entry gives zero, one or two ADUs:

* ``AlarmEvent`` new → type 2 component state of the alarm's point (fire, gas and
  electrical alarms: bit 1 fire alarm; faults and offline: bit 2; supervisory and
  electrical pre-alarms: bit 4), with bit 0 (normal operation) set; cleared → the
  same component with bit 0 only.  An alarm with no device (a confirmed fire on a
  location) → type 1 system state; a transport's link fault → type 21 UITD state
  (bit 6 line fault; the uplink's own link: bit 5 channel fault).
  Acknowledged / silenced / cleared by a person → type 4 record (bit 5 / 1 / 0).
* ``StateChanged`` of a running-state point → type 2 (pump running: bit 5 started,
  pump in manual / valve closed: bit 4 supervisory, a fault point: bit 2); of an
  analog point with a mapping → type 3 (``mapping.analog_for``).
* ``AvailabilityChanged`` → type 2 of the device (component index 0), fault bit while
  unavailable.
"""

from __future__ import annotations

import time
from datetime import datetime, tzinfo
from typing import Any, Callable

import msgspec

from firebus.sdk import AlarmEvent, AvailabilityChanged, PointInfo, StateChanged
from firebus.sdk.events import AlarmTransition
from firebus.sdk.vocab import ActorKind, AlarmCategory, Availability

from . import mapping
from .model import DESCRIPTION_SIZE, Adu, ComponentAnalog, ComponentState, SystemOperation, SystemState, TimeTag, UitdState
from .siteconfig import ComponentOverride, Send

NORMAL, FIRE, FAULT, SUPERVISORY, STARTED = 0b1, 0b10, 0b100, 0b10000, 0b100000
OP_RESET, OP_SILENCE, OP_ACK = 0b1, 0b10, 0b100000
UITD_CHANNEL_FAULT, UITD_LINE_FAULT = 0b100000, 0b1000000

#: alarm category → component state bit
CATEGORY_BITS: dict[AlarmCategory, int] = {
    AlarmCategory.FIRE: FIRE,
    AlarmCategory.GAS: FIRE,
    AlarmCategory.ELECTRICAL_ALARM: FIRE,
    AlarmCategory.ELECTRICAL_PRE_ALARM: SUPERVISORY,
    AlarmCategory.SUPERVISORY: SUPERVISORY,
    AlarmCategory.FAULT: FAULT,
    AlarmCategory.OFFLINE: FAULT,
}

#: point classes whose value is a running state: value → bits
_ON = {"1", "true", "on", "running", "run", "started", "open", "alarm", "manual", "closed", "fault"}


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in _ON


def state_bits(point_class: str, value: Any) -> int | None:
    """Running-state bits of a state point's value; None: not a running-state point."""
    v = str(value).strip().lower()
    if point_class == "pump_state" or point_class == "fan_state":
        return NORMAL | (STARTED if _truthy(value) and v not in ("stopped", "off") else 0)
    if point_class == "pump_mode":
        return NORMAL | (SUPERVISORY if v in ("manual", "1", "true") else 0)
    if point_class == "valve_state":
        return NORMAL | (SUPERVISORY if v in ("closed", "0", "false", "close") else 0)
    if point_class in ("fault", "tamper") or point_class.endswith("_fault"):
        return NORMAL | (FAULT if _truthy(value) else 0)
    return None


class Codes(msgspec.Struct, frozen=True):
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    description: bytes


def description(text: str) -> bytes:
    raw = text.encode("gb18030", errors="replace")[:DESCRIPTION_SIZE]
    while raw:  # never cut a multi-byte character in half
        try:
            raw.decode("gb18030")
            break
        except UnicodeDecodeError:
            raw = raw[:-1]
    return raw.ljust(DESCRIPTION_SIZE, b"\x00")


class Translator:
    """Builds ADUs; ``numbers(device_id, point_id) → (device number, point number)``."""

    def __init__(self, *, send: set[Send], tz: tzinfo, system_address: int, operator: int,
                 overrides: dict[str, ComponentOverride], point_info: Callable[[str], PointInfo | None],
                 points_of_device: Callable[[str], list[PointInfo]],
                 numbers: Callable[[str, str | None], tuple[int, int]],
                 device_key: Callable[[str], str | None] = lambda device_id: None,
                 describe: bool = True) -> None:
        self.send = send
        self.tz = tz
        self.system_address = system_address
        self.operator = operator
        self.overrides = overrides
        self.point_info = point_info
        self.points_of_device = points_of_device
        self.numbers = numbers
        self.device_key = device_key
        self.describe = describe

    def tag(self, ts: float) -> TimeTag:
        return TimeTag.from_datetime(datetime.fromtimestamp(ts, self.tz), self.tz)

    def _override(self, device_id: str) -> ComponentOverride | None:
        o = self.overrides.get(device_id)
        if o is None:
            key = self.device_key(device_id)
            o = self.overrides.get(key) if key else None
        return o

    def codes(self, device_id: str, point: PointInfo | None) -> Codes:
        o = self._override(device_id)
        if point is None:
            points = self.points_of_device(device_id)
            base = points[0] if points else None
        else:
            base = point
        plugin = (base.driver.split(".", 1)[0] if base is not None else "")
        target = mapping.target_for(base.point_class, plugin) if base is not None else mapping.GENERAL
        device_number, point_number = self.numbers(device_id, point.point_id if point is not None else None)
        if o is not None and o.device_number is not None:
            device_number = o.device_number
        system_type = o.system_type if o is not None and o.system_type is not None else target.system_type
        system_address = (o.system_address if o is not None and o.system_address is not None
                          else self.system_address)
        component_type = (o.component_type if o is not None and o.component_type is not None
                          else target.component_type)
        text = ""
        if self.describe and base is not None:
            text = base.device_name or base.name or base.key
            if point is not None and point.name and point.name != text:
                text = f"{text} {point.name}"
        return Codes(system_type, system_address, component_type,
                     mapping.component_address(device_number, point_number), description(text))

    def _component(self, codes: Codes, state: int, ts: float) -> Adu:
        return Adu(2, (ComponentState(system_type=codes.system_type, system_address=codes.system_address,
                                      component_type=codes.component_type, component_address=codes.component_address,
                                      state=state, description=codes.description, time=self.tag(ts)),))

    # -------------------------------------------------------------- per entry

    def adus(self, data: Any, actor: ActorKind | None = None) -> list[Adu]:
        if isinstance(data, AlarmEvent):
            return self._alarm(data, actor)
        if isinstance(data, StateChanged):
            return self._state(data)
        if isinstance(data, AvailabilityChanged):
            if Send.AVAILABILITY not in self.send:
                return []
            codes = self.codes(data.device_id, None)
            bits = NORMAL | (FAULT if data.availability == Availability.UNAVAILABLE else 0)
            return [self._component(codes, bits, time.time())]
        return []

    def _alarm(self, a: AlarmEvent, actor: ActorKind | None) -> list[Adu]:
        if a.rule.startswith("gb26875."):
            return []  # the link's own prompts (duty check): answered by their own records
        out: list[Adu] = []
        t = a.transition
        by_person = actor == ActorKind.USER
        if t in (AlarmTransition.NEW, AlarmTransition.CLEARED) and Send.ALARMS in self.send:
            bit = CATEGORY_BITS.get(a.category, FAULT)
            active = t == AlarmTransition.NEW
            # An alarm a late reading showed (补报) goes up with the time it happened.
            when = a.occurred_ts if active and a.occurred_ts is not None else a.ts
            if a.rule == "link" and not a.device_id:
                own = "gb26875.uplink" in a.message or "gb26875.uplink" in a.message_zh
                flag = UITD_CHANNEL_FAULT if own else UITD_LINE_FAULT
                out.append(Adu(21, (UitdState(state=NORMAL | (flag if active else 0), time=self.tag(when)),)))
            elif a.device_id:
                point = self.point_info(a.point_id) if a.point_id else None
                codes = self.codes(a.device_id, point)
                out.append(self._component(codes, NORMAL | (bit if active else 0), when))
            else:
                system_type = mapping.FIRE_ALARM_SYSTEM if bit == FIRE else 0
                out.append(Adu(1, (SystemState(system_type=system_type, system_address=self.system_address,
                                               state=NORMAL | (bit if active else 0), time=self.tag(when)),)))
        if Send.OPERATIONS in self.send and by_person:
            op = {AlarmTransition.ACKNOWLEDGED: OP_ACK, AlarmTransition.SILENCED: OP_SILENCE,
                  AlarmTransition.CLEARED: OP_RESET}.get(t)
            if op is not None:
                system_type = 0
                if a.device_id:
                    point = self.point_info(a.point_id) if a.point_id else None
                    system_type = self.codes(a.device_id, point).system_type
                out.append(Adu(4, (SystemOperation(system_type=system_type, system_address=self.system_address,
                                                   operation=op, operator=self.operator, time=self.tag(a.ts)),)))
        return out

    def _state(self, s: StateChanged) -> list[Adu]:
        if s.late or s.new_value is None:
            return []
        bits = state_bits(s.point_class, s.new_value)
        if bits is not None:
            if Send.STATES not in self.send:
                return []
            point = self.point_info(s.point_id)
            return [self._component(self.codes(s.device_id, point), bits, s.ts)]
        if Send.ANALOGS not in self.send or isinstance(s.new_value, bool):
            return []
        point = self.point_info(s.point_id)
        if point is None or not isinstance(s.new_value, (int, float)):
            return []
        analog = mapping.analog_for(point.point_class, point.unit)
        if analog is None:
            return []
        codes = self.codes(s.device_id, point)
        return [Adu(3, (ComponentAnalog(system_type=codes.system_type, system_address=codes.system_address,
                                        component_type=codes.component_type,
                                        component_address=codes.component_address, analog_type=analog.analog_type,
                                        raw=analog.to_raw(float(s.new_value)), time=self.tag(s.ts)),))]
