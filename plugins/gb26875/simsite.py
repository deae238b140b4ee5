"""The simulated site behind ``firebus sim uitd``: facilities, their state, traffic, answers.

Pure logic (no I/O): builds valid upload ADUs (random or scripted), answers the
centre's read requests (type − 60, e.g. 81 → 21) from the simulated state, and keeps
the UITD's clock offset (clock sync, type 90) and operation records (type 24).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, tzinfo

import msgspec

from . import tables
from .model import (
    CST,
    DESCRIPTION_SIZE,
    MAX_COUNT,
    Adu,
    AduObject,
    ComponentAnalog,
    ComponentConfiguration,
    ComponentState,
    SystemConfiguration,
    SystemOperation,
    SystemSoftwareVersion,
    SystemState,
    SystemTime,
    TimeTag,
    UitdConfiguration,
    UitdOperation,
    UitdSoftwareVersion,
    UitdState,
    UitdTime,
)

NORMAL = 0b1
FIRE = 0b10
FAULT = 0b100
SUPERVISORY = 0b10000
STARTED = 0b100000


def component_address(loop: int, point: int) -> int:
    """Loop and point as two LE words (``01 00 01 00`` = loop 1 point 1, as in capture M1)."""
    return loop | point << 16


def description(text: str) -> bytes:
    return text.encode("gb18030")[:DESCRIPTION_SIZE].ljust(DESCRIPTION_SIZE, b"\x00")


class SimComponent(msgspec.Struct, kw_only=True):
    system_type: int
    system_address: int
    component_type: int
    component_address: int
    name: str
    analog_type: int | None = None
    value: float = 0.0  # engineering units of analog_type
    spread: float = 0.0
    state: int = NORMAL


def default_components() -> list[SimComponent]:
    return [
        SimComponent(system_type=1, system_address=1, component_type=42, component_address=component_address(1, 1),
                     name="1号回路1号 光电感烟"),
        SimComponent(system_type=1, system_address=1, component_type=42, component_address=component_address(1, 2),
                     name="1号回路2号 光电感烟"),
        SimComponent(system_type=1, system_address=1, component_type=23, component_address=component_address(1, 3),
                     name="1号回路3号 手报"),
        SimComponent(system_type=0, system_address=1, component_type=17, component_address=component_address(2, 1),
                     name="配电箱 剩余电流", analog_type=tables.ANALOG_RESIDUAL_CURRENT_MA, value=120, spread=40),
        SimComponent(system_type=0, system_address=1, component_type=18, component_address=component_address(2, 2),
                     name="配电箱 线缆温度", analog_type=3, value=38.0, spread=4.0),
        SimComponent(system_type=1, system_address=1, component_type=11, component_address=component_address(3, 1),
                     name="厨房 可燃气体", analog_type=6, value=2.0, spread=2.0),
        SimComponent(system_type=11, system_address=1, component_type=92, component_address=component_address(4, 1),
                     name="屋顶水箱 液位", analog_type=2, value=3.6, spread=0.2),
        SimComponent(system_type=11, system_address=1, component_type=91, component_address=component_address(4, 2),
                     name="消防泵 1号"),
        SimComponent(system_type=11, system_address=1, component_type=0, component_address=component_address(4, 3),
                     name="消火栓管网 压力", analog_type=5, value=350.0, spread=20.0),
    ]


class SimSite:
    def __init__(self, *, seed: int = 0, tz: tzinfo = CST, fire_ratio: float = 0.0,
                 components: list[SimComponent] | None = None, version: tuple[int, int] = (1, 0)) -> None:
        self.rng = random.Random(seed)
        self.tz = tz
        self.fire_ratio = fire_ratio
        self.components = components if components is not None else default_components()
        self.uitd_state = NORMAL
        self.version = version
        self.clock_offset = timedelta(0)
        self.operations: list[UitdOperation] = []
        self.system_operations: list[SystemOperation] = []

    # ------------------------------------------------------------ clock

    def now(self) -> datetime:
        return datetime.now(self.tz) + self.clock_offset

    def tag(self) -> TimeTag:
        return TimeTag.from_datetime(self.now(), self.tz)

    def sync_clock(self, centre: TimeTag) -> None:
        when = centre.to_datetime(self.tz)
        if when is not None:
            self.clock_offset = when - datetime.now(self.tz)

    # ------------------------------------------------------------ traffic

    def component_state(self, c: SimComponent) -> Adu:
        return Adu(2, (ComponentState(system_type=c.system_type, system_address=c.system_address,
                                      component_type=c.component_type, component_address=c.component_address,
                                      state=c.state, description=description(c.name), time=self.tag()),))

    def analog(self, c: SimComponent) -> Adu:
        assert c.analog_type is not None
        spec = tables.analog_spec(c.analog_type)
        resolution = spec.resolution if spec else 1.0
        value = c.value + self.rng.uniform(-c.spread, c.spread)
        raw = max(-0x8000, min(0x7FFF, round(value / resolution)))
        return Adu(3, (ComponentAnalog(system_type=c.system_type, system_address=c.system_address,
                                       component_type=c.component_type, component_address=c.component_address,
                                       analog_type=c.analog_type, raw=raw, time=self.tag()),))

    def fire_alarm(self, index: int | None = None) -> Adu:
        detectors = [c for c in self.components if c.component_type in (23, 40, 41, 42, 43, 44)]
        c = detectors[index % len(detectors)] if index is not None else self.rng.choice(detectors)
        c.state = NORMAL | FIRE
        return self.component_state(c)

    def state_upload(self) -> Adu:
        """A non-fire state change (normal, fault, supervisory, pump start/stop)."""
        c = self.rng.choice(self.components)
        if c.component_type == 91:
            c.state = NORMAL | (0 if c.state & STARTED else STARTED)
        else:
            c.state = self.rng.choice((NORMAL, NORMAL, NORMAL | FAULT, NORMAL | SUPERVISORY))
        return self.component_state(c)

    def random_upload(self) -> Adu:
        if self.fire_ratio and self.rng.random() < self.fire_ratio:
            return self.fire_alarm()
        roll = self.rng.random()
        analogs = [c for c in self.components if c.analog_type is not None]
        if roll < 0.5 and analogs:
            return self.analog(self.rng.choice(analogs))
        if roll < 0.9:
            return self.state_upload()
        if roll < 0.95:
            return Adu(21, (UitdState(state=self.uitd_state, time=self.tag()),))
        return self.operation(self.rng.choice((0b1, 0b10, 0b10000)), operator=self.rng.randint(1, 5))

    def operation(self, flags: int, operator: int = 1) -> Adu:
        op = UitdOperation(operation=flags, operator=operator, time=self.tag())
        self.operations.append(op)
        del self.operations[:-200]
        return Adu(24, (op,))

    def duty_check_answer(self, operator: int = 1) -> Adu:
        return self.operation(0b100000, operator)

    def initialise(self) -> None:
        for c in self.components:
            c.state = NORMAL
        self.uitd_state = NORMAL

    # ------------------------------------------------------------ answers

    def _find(self, system_type: int, system_address: int, address: int | None = None) -> list[SimComponent]:
        return [c for c in self.components if c.system_type == system_type and c.system_address == system_address
                and (address is None or c.component_address == address)]

    def answer(self, request: Adu) -> Adu | None:
        """The response ADU to a read request (type − 60), or None if there is nothing to say."""
        t = request.type
        objs = request.objects
        out: list[AduObject] = []
        if t == 81:
            out = [UitdState(state=self.uitd_state, time=self.tag())]
        elif t == 84:
            n = getattr(objs[0], "record_count", 1) if objs else 1
            out = list(self.operations[-n:]) or [UitdOperation(operation=0, operator=0, time=self.tag())]
        elif t == 85:
            out = [UitdSoftwareVersion(major=self.version[0], minor=self.version[1])]
        elif t == 86:
            out = [UitdConfiguration(text="firebus 模拟用户信息传输装置 / firebus simulated UITD".encode("gb18030"))]
        elif t == 88:
            out = [UitdTime(time=self.tag())]
        else:
            for obj in objs:
                st, sa = obj.system_type, obj.system_address
                addr = getattr(obj, "component_address", None)
                comps = self._find(st, sa, addr)
                if t == 61:
                    state = NORMAL
                    for c in self._find(st, sa):
                        state |= c.state & (FIRE | FAULT | SUPERVISORY)
                    out.append(SystemState(system_type=st, system_address=sa, state=state, time=self.tag()))
                elif t == 62:
                    out += [self.component_state(c).objects[0] for c in comps]
                elif t == 63:
                    out += [self.analog(c).objects[0] for c in comps if c.analog_type is not None]
                elif t == 64:
                    n = obj.record_count
                    out += [SystemOperation(system_type=st, system_address=sa, operation=0b1, operator=1,
                                            time=self.tag())][:n]
                elif t == 65:
                    out.append(SystemSoftwareVersion(system_type=st, system_address=sa, major=2, minor=3))
                elif t == 66:
                    text = f"{tables.system_type_label(st).zh} {len(self._find(st, sa))} 个部件".encode("gb18030")
                    out.append(SystemConfiguration(system_type=st, system_address=sa, text=text))
                elif t == 67:
                    out += [ComponentConfiguration(system_type=c.system_type, system_address=c.system_address,
                                                   component_type=c.component_type,
                                                   component_address=c.component_address,
                                                   description=description(c.name)) for c in comps]
                elif t == 68:
                    out.append(SystemTime(system_type=st, system_address=sa, time=self.tag()))
        if not out:
            return None
        rtype = tables.response_type(t)
        return Adu(rtype, tuple(out[:MAX_COUNT[rtype]]))
