"""``firebus sim uitd`` and ``firebus sim centre``: GB/T 26875.3 peers for commissioning and tests.

Both print what they send and receive — as JSON lines with ``--json`` (one object per
line, ``"event"`` says what: ``listening``, ``connected``, ``sent``, ``received``,
``frame``, ``replied``, ``answered``, ``link_fault``, ``quarantined``, ``closed``,
``summary``), else as bilingual text — and read commands from stdin with ``--stdin``.
Behaviour on demand (centre): deny, drop (no answer) or delay answers, by count or
from then on; send queries and controls (clock sync, duty check) to the UITD.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from datetime import datetime, tzinfo
from typing import Any, Callable

import msgspec

from .cli import parse_tz
from .codec import Mode, decode
from .jsonfmt import frame_to_json
from .model import (
    CST,
    Adu,
    ReadComponentAnalog,
    ReadComponentConfiguration,
    ReadComponentState,
    ReadSystemConfiguration,
    ReadSystemOperations,
    ReadSystemSoftwareVersion,
    ReadSystemState,
    ReadSystemTime,
    ReadUitdConfiguration,
    ReadUitdOperations,
    ReadUitdSoftwareVersion,
    ReadUitdState,
    ReadUitdTime,
    InitUitd,
    DutyCheck,
    SyncClock,
    TimeTag,
    UitdState,
    address,
)
from .outbox import OutcomeStatus, Priority, Submission
from .server import CentreServer, ListenerConfig
from .client import ClientConfig, Endpoint, UitdClient
from .session import (
    CONFIRM,
    DENY,
    NO_REPLY,
    BaseHandler,
    Received,
    Reply,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    respond,
)
from .simsite import SimSite
from .tables import Command
from .vectors import load_vectors


# ------------------------------------------------------------------ output

_HUMAN: dict[str, str] = {
    "listening": "监听 listening", "connected": "已连接 connected", "sent": "发送 sent", "received": "收到 received",
    "frame": "报文 frame", "replied": "应答 replied", "answered": "结果 outcome", "link_fault": "链路故障 LINK FAULT",
    "quarantined": "隔离 quarantined", "closed": "断开 closed", "summary": "汇总 summary", "command": "命令 command",
    "error": "错误 error",
}


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, record: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        else:
            kind = record.get("event", "")
            rest = {k: v for k, v in record.items() if k not in ("event", "at", "hex", "frame")}
            text = " ".join(f"{k}={v}" for k, v in rest.items())
            if "frame" in record:
                f = record["frame"]
                adu = f.get("adu") or {}
                text += f" | cmd {f['command']} {f['command_zh']}/{f['command_en']}"
                if adu.get("type") is not None:
                    text += f", type {adu['type']} {adu.get('type_zh')}/{adu.get('type_en')}"
                if f.get("fire"):
                    text += " !! 火警 FIRE"
            sys.stdout.write(f"{_HUMAN.get(kind, kind)}: {text}\n")
        sys.stdout.flush()

    def event(self, event: SessionEvent) -> None:
        self.emit(msgspec.to_builtins(event))


def parse_address(text: str) -> bytes:
    """A 6-byte address: decimal integer (48-bit LE value), or ``h:`` and 12 hex digits (wire order)."""
    text = text.strip()
    if text.lower().startswith("h:"):
        digits = text[2:].replace(" ", "")
        if not re.fullmatch(r"[0-9a-fA-F]{12}", digits):
            raise argparse.ArgumentTypeError(f"{text!r}: h: needs 12 hex digits")
        return bytes.fromhex(digits)
    if not text.isdigit() or int(text) >= 1 << 48:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (decimal 0 … 2^48−1, or h:790300000000)")
    return address(int(text))


def _endpoint(text: str) -> Endpoint:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return Endpoint(host, int(port))


def _session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    p.add_argument("--resends", type=int, default=3, help="resends before a link fault (default 3)")
    p.add_argument("--strict", action="store_true", help="deny frames that show any pitfall (default tolerant)")
    p.add_argument("--tz", type=parse_tz, default=CST, help="time zone of the time tags (default +08:00)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--stdin", action="store_true", help="read commands from stdin (see docs/plugins/gb26875.md)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")


async def _stdin_lines(handle: Callable[[str], Any]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace").strip()
        if text:
            result = handle(text)
            if asyncio.iscoroutine(result):
                await result


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass


# ------------------------------------------------------------------ centre

class Behaviour(msgspec.Struct, kw_only=True):
    deny_next: int = 0
    drop_next: int = 0
    deny_every: int = 0
    drop_every: int = 0
    drop_all: bool = False
    deny_all: bool = False
    delay: float = 0.0
    deny_types: frozenset[int] = frozenset()


class CentreHandler(BaseHandler):
    def __init__(self, out: Output, behaviour: Behaviour, tz: tzinfo) -> None:
        self.out = out
        self.b = behaviour
        self.tz = tz
        self.count = 0
        self.frames: asyncio.Queue[Received] = asyncio.Queue()

    async def on_frame(self, session: Session, received: Received) -> Reply:
        b = self.b
        h = received.frame.header
        adu_type = getattr(received.frame.adu, "type", None)
        # heartbeats are not counted by the first-N / every-N behaviours (only by drop-all / deny-all)
        counted = not received.frame.is_heartbeat
        if counted:
            self.count += 1
        if b.delay:
            await asyncio.sleep(b.delay)  # simulated slow centre
        if b.drop_all or counted and (b.drop_next > 0 or (b.drop_every and self.count % b.drop_every == 0)):
            if counted:
                b.drop_next = max(0, b.drop_next - 1)
            reply, name = NO_REPLY, "drop"
        elif b.deny_all or counted and (b.deny_next > 0 or (b.deny_every and self.count % b.deny_every == 0)
                                        or adu_type in b.deny_types):
            if counted:
                b.deny_next = max(0, b.deny_next - 1)
            reply, name = DENY, "deny"
        elif h.command in (Command.CONTROL, Command.SEND_DATA):
            reply, name = CONFIRM, "confirm"
        elif h.command == Command.REQUEST:
            reply, name = DENY, "deny"
        else:
            reply, name = NO_REPLY, "none"
        self.out.emit({"event": "frame", "peer": received.peer, "serial": h.serial, "fire": received.fire,
                       "reply": name, "frame": _frame_json(received)})
        return reply

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        self.out.event(event)


def _frame_json(received: Received) -> dict[str, Any]:
    return frame_to_json(received.frame, raw=received.raw, warnings=received.warnings)


def _request_adu(kind: str, arg: list[str], tag: TimeTag) -> tuple[int, Adu]:
    """A request or control from a stdin command of ``firebus sim centre``."""
    if kind == "query":
        t = int(arg[0]) if arg else 81
        st, sa = (int(arg[1]), int(arg[2])) if len(arg) >= 3 else (1, 1)
        ca = int(arg[3]) if len(arg) >= 4 else 65537
        objects = {
            61: lambda: ReadSystemState(system_type=st, system_address=sa),
            62: lambda: ReadComponentState(system_type=st, system_address=sa, component_address=ca),
            63: lambda: ReadComponentAnalog(system_type=st, system_address=sa, component_address=ca),
            64: lambda: ReadSystemOperations(system_type=st, system_address=sa, record_count=10, start_time=tag),
            65: lambda: ReadSystemSoftwareVersion(system_type=st, system_address=sa),
            66: lambda: ReadSystemConfiguration(system_type=st, system_address=sa),
            67: lambda: ReadComponentConfiguration(system_type=st, system_address=sa, component_address=ca),
            68: lambda: ReadSystemTime(system_type=st, system_address=sa),
            81: ReadUitdState, 84: lambda: ReadUitdOperations(record_count=10, start_time=tag),
            85: ReadUitdSoftwareVersion, 86: ReadUitdConfiguration, 88: ReadUitdTime,
        }
        if t not in objects:
            raise ValueError(f"query type {t} is not a read request (61–68, 81, 84–86, 88)")
        return Command.REQUEST, Adu(t, (objects[t](),))
    if kind == "init":
        return Command.CONTROL, Adu(89, (InitUitd(),))
    if kind == "sync":
        return Command.CONTROL, Adu(90, (SyncClock(time=TimeTag.parse(" ".join(arg)) if arg else tag),))
    if kind == "duty":
        return Command.CONTROL, Adu(91, (DutyCheck(parameter=int(arg[0]) if arg else 10),))
    raise ValueError(kind)


async def run_centre_async(args: argparse.Namespace) -> int:
    out = Output(args.json)
    behaviour = Behaviour(deny_next=args.deny_first, drop_next=args.drop_first, deny_every=args.deny_every,
                          drop_every=args.drop_every, drop_all=args.drop_all, deny_all=args.deny_all,
                          delay=args.delay, deny_types=frozenset(args.deny_type))
    handler = CentreHandler(out, behaviour, args.tz)
    session = SessionConfig(role=Role.CENTRE, local_address=args.address, timeout=args.timeout,
                            resends=args.resends, mode=Mode.STRICT if args.strict else Mode.TOLERANT, tz=args.tz,
                            patrol=args.patrol, idle_timeout=args.idle_timeout, rate=args.rate, burst=args.burst)
    config = ListenerConfig(host=args.host, port=args.port, session=session,
                            allow_addresses=frozenset(args.allow), allow_ips=tuple(args.allow_ip),
                            max_connections=args.max_connections, max_per_ip=args.max_per_ip)
    server = CentreServer(config, handler)
    try:
        await server.start()
    except OSError as exc:
        print(f"firebus sim centre: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    out.emit({"event": "listening", "host": args.host, "port": server.port})
    stop = asyncio.Event()
    _install_stop(stop)
    tasks: list[asyncio.Task[Any]] = []

    async def send_to_all(cmd: int, adu: Adu) -> None:
        sessions = [s for s in server.sessions if not s.closed]
        if not sessions:
            out.emit({"event": "error", "en": "no UITD connected", "zh": "没有已连接的用户信息传输装置"})
            return
        for s in sessions:
            outcome = await s.send(adu, command=cmd, priority=Priority.ROUTINE)
            record: dict[str, Any] = {"event": "result", "status": str(outcome.status), "command": cmd,
                                      "type": adu.type, "attempts": outcome.attempts}
            if outcome.reply is not None:
                record["reply"] = frame_to_json(outcome.reply)
            out.emit(record)

    def command(text: str) -> None:
        word, *arg = text.split()
        out.emit({"event": "command", "text": text})
        if word == "quit":
            stop.set()
        elif word in ("deny", "drop"):
            n = int(arg[0]) if arg else 1
            if word == "deny":
                behaviour.deny_next = n
            else:
                behaviour.drop_next = n
        elif word == "delay":
            behaviour.delay = float(arg[0]) if arg else 0.0
        elif word == "deny-all":
            behaviour.deny_all = True
        elif word == "drop-all":
            behaviour.drop_all = True
        elif word == "normal":
            behaviour.deny_next = behaviour.drop_next = 0
            behaviour.deny_all = behaviour.drop_all = False
            behaviour.delay = 0.0
        elif word in ("query", "init", "sync", "duty"):
            tag = TimeTag.from_datetime(datetime.now(args.tz), args.tz)
            try:
                cmd, adu = _request_adu(word, arg, tag)
            except ValueError as exc:
                out.emit({"event": "error", "en": str(exc), "zh": f"命令参数错误：{exc}"})
                return
            tasks.append(asyncio.create_task(send_to_all(cmd, adu)))
        else:
            out.emit({"event": "error", "en": f"unknown command {word!r}", "zh": f"未知命令 {word!r}"})

    if args.stdin:
        tasks.append(asyncio.create_task(_stdin_command_loop(command, stop)))
    try:
        if args.duration is not None:
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
            except asyncio.TimeoutError:
                pass
        else:
            await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        out.emit({"event": "summary", "frames": handler.count, "accepted": server.stats.accepted,
                  "refused_ip": server.stats.refused_ip, "refused_limit": server.stats.refused_limit,
                  "refused_address": server.stats.refused_address})
    return 0


async def _stdin_command_loop(handle: Callable[[str], Any], stop: asyncio.Event) -> None:
    try:
        await _stdin_lines(handle)
    finally:
        stop.set()  # stdin closed: the controller went away


def run_centre(args: argparse.Namespace) -> int:
    return asyncio.run(run_centre_async(args))


# -------------------------------------------------------------------- uitd

class UitdHandler(BaseHandler):
    def __init__(self, out: Output, site: SimSite, duty_after: float, submit: Callable[..., Submission]) -> None:
        self.out = out
        self.site = site
        self.duty_after = duty_after
        self.submit = submit
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_frame(self, session: Session, received: Received) -> Reply:
        frame = received.frame
        cmd = frame.header.command
        adu = frame.adu
        reply: Reply = DENY
        if cmd == Command.REQUEST and isinstance(adu, Adu):
            answer = self.site.answer(adu)
            reply = respond(answer) if answer is not None else DENY
        elif cmd == Command.CONTROL and isinstance(adu, Adu):
            if adu.type == 89:
                self.site.initialise()
                reply = CONFIRM
            elif adu.type == 90 and adu.objects:
                self.site.sync_clock(adu.objects[0].time)  # type: ignore[attr-defined]
                reply = CONFIRM
            elif adu.type == 91:
                reply = CONFIRM
                if self.duty_after >= 0:
                    task = asyncio.create_task(self._answer_duty_check())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        elif cmd == Command.SEND_DATA:
            reply = CONFIRM
        self.out.emit({"event": "frame", "peer": received.peer, "serial": frame.header.serial,
                       "reply": reply.kind.value, "frame": _frame_json(received)})
        return reply

    async def _answer_duty_check(self) -> None:
        await asyncio.sleep(self.duty_after)  # the simulated duty officer's reaction time
        self.submit(self.site.duty_check_answer(), priority=Priority.STATE, key="duty-check")

    def on_event(self, session: Session | None, event: SessionEvent) -> None:
        self.out.event(event)


def _restamp(adu: Any, tag: TimeTag) -> Any:
    """A vector's objects with today's time (their 2012 tags would be clock skew now)."""
    if not isinstance(adu, Adu):
        return adu
    objs = tuple(msgspec.structs.replace(o, time=tag) if hasattr(o, "time") and o.time is not None
                 else o for o in adu.objects)
    return Adu(adu.type, objs)


async def run_uitd_async(args: argparse.Namespace) -> int:
    out = Output(args.json)
    site = SimSite(seed=args.seed, tz=args.tz, fire_ratio=args.fire_ratio)
    session = SessionConfig(role=Role.UITD, local_address=args.address, peer_address=args.centre_address,
                            timeout=args.timeout, resends=args.resends, window=args.window,
                            heartbeat=args.heartbeat, mode=Mode.STRICT if args.strict else Mode.TOLERANT,
                            tz=args.tz)
    centres = (Endpoint(args.host, args.port), *args.backup)
    client_holder: list[UitdClient] = []

    def submit(adu: Any, *, priority: Priority | None = None, key: Any = None) -> Submission:
        sub = client_holder[0].submit(adu, priority=priority, key=key)
        submitted.append(sub)
        return sub

    submitted: list[Submission] = []
    handler = UitdHandler(out, site, args.duty_answer_after, submit)
    client = UitdClient(ClientConfig(centres=centres, session=session), handler, now=site.now)
    client_holder.append(client)
    stop = asyncio.Event()
    _install_stop(stop)
    run_task = asyncio.create_task(client.run())
    tasks: list[asyncio.Task[Any]] = []
    counter = {"n": 0}

    def command(text: str) -> None:
        word, *arg = text.split()
        out.emit({"event": "command", "text": text})
        if word == "quit":
            stop.set()
        elif word == "fire":
            submit(site.fire_alarm(int(arg[0]) if arg else None), key=f"cmd-{len(submitted)}")
        elif word == "state":
            for _ in range(int(arg[0]) if arg else 1):
                submit(site.state_upload(), priority=Priority.STATE, key=f"cmd-{len(submitted)}")
        elif word == "fault":
            site.uitd_state |= 0b100
            submit(Adu(21, (UitdState(state=site.uitd_state, time=site.tag()),)), key=f"cmd-{len(submitted)}")
        elif word == "duty-answer":
            submit(site.duty_check_answer(), priority=Priority.STATE, key=f"cmd-{len(submitted)}")
        else:
            out.emit({"event": "error", "en": f"unknown command {word!r}", "zh": f"未知命令 {word!r}"})

    async def traffic() -> None:
        if args.vectors:
            for v in load_vectors():
                decoded = decode(v.data, Mode.TOLERANT)
                h = decoded.frame.header
                if h.command == Command.SEND_DATA and decoded.frame.adu is not None:
                    submit(_restamp(decoded.frame.adu, site.tag()), key=v.name)
        for _ in range(args.burst):
            submit(site.state_upload(), priority=Priority.STATE, key=f"burst-{len(submitted)}")
        if args.fire:
            submit(site.fire_alarm(0), key="fire")
        if args.rate > 0:
            loop = asyncio.get_running_loop()
            start = loop.time()
            while args.count is None or counter["n"] < args.count:
                counter["n"] += 1
                submit(site.random_upload(), key=f"random-{counter['n']}")
                await asyncio.sleep(max(0.0, start + counter["n"] / args.rate - loop.time()))

    traffic_task = asyncio.create_task(traffic())
    tasks.append(traffic_task)
    if args.stdin:
        tasks.append(asyncio.create_task(_stdin_command_loop(command, stop)))

    async def until_done() -> None:
        await traffic_task
        while True:
            pending = [s for s in submitted if not s.done]
            if not pending:
                return
            await asyncio.wait([asyncio.ensure_future(s.outcome()) for s in pending])

    try:
        waits = [asyncio.ensure_future(stop.wait())]
        if not args.stay and not args.stdin:
            waits.append(asyncio.ensure_future(until_done()))
        done, rest = await asyncio.wait(waits, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for w in rest:
            w.cancel()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client.stop()
        await run_task
    counts: dict[str, int] = {}
    ok = True
    for s in submitted:
        outcome = await s.outcome() if s.done else None
        status = outcome.status if outcome is not None else OutcomeStatus.CANCELLED
        ok = ok and outcome is not None and outcome.ok
        counts[str(status)] = counts.get(str(status), 0) + 1
    out.emit({"event": "summary", "submitted": len(submitted), **counts, "connections": client.connections})
    return 0 if ok else 1


def run_uitd(args: argparse.Namespace) -> int:
    return asyncio.run(run_uitd_async(args))


# ------------------------------------------------------------------ parsers

def add_simulators(sim: Any) -> None:
    c = sim.add_parser(
        "centre",
        help="GB/T 26875.3 monitoring centre (监控中心): listens, confirms, denies/drops/delays on demand",
        description="A GB/T 26875.3-2011 monitoring centre for commissioning and tests: accepts UITDs over TCP, "
                    "confirms their uploads (or denies, drops, delays on demand), prints what it received; "
                    "with --stdin also sends queries, clock sync and duty checks.",
    )
    c.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=0, help="listen port (default 0: a free port, printed)")
    c.add_argument("--address", type=parse_address, default=address(88888),
                   help="the centre's 6-byte address (default 88888; h:… for hex)")
    c.add_argument("--allow", type=parse_address, action="append", default=[], metavar="ADDRESS",
                   help="accept only these device addresses (repeatable; default any)")
    c.add_argument("--allow-ip", action="append", default=[], metavar="CIDR",
                   help="accept connections only from these networks (repeatable; default any)")
    c.add_argument("--max-connections", type=int, default=1024)
    c.add_argument("--max-per-ip", type=int, default=64)
    c.add_argument("--rate", type=float, default=0.0, help="inbound frames/s per connection (0 = unlimited)")
    c.add_argument("--burst", type=int, default=100, help="rate-limit burst (default 100)")
    c.add_argument("--deny-first", type=int, default=0, metavar="N", help="deny the first N frames")
    c.add_argument("--deny-every", type=int, default=0, metavar="N", help="deny every Nth frame")
    c.add_argument("--deny-all", action="store_true", help="deny every frame")
    c.add_argument("--deny-type", type=int, action="append", default=[], metavar="TYPE",
                   help="deny uploads of this ADU type (repeatable)")
    c.add_argument("--drop-first", type=int, default=0, metavar="N", help="leave the first N frames unanswered")
    c.add_argument("--drop-every", type=int, default=0, metavar="N", help="leave every Nth frame unanswered")
    c.add_argument("--drop-all", action="store_true", help="answer nothing")
    c.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    c.add_argument("--patrol", type=float, default=0.0, help="send a read-UITD-state request every S seconds")
    c.add_argument("--idle-timeout", type=float, default=0.0, help="close a silent connection after S seconds")
    _session_args(c)
    c.set_defaults(func=run_centre)

    u = sim.add_parser(
        "uitd",
        help="GB/T 26875.3 user information transmission device (用户信息传输装置): uploads to a centre",
        description="A GB/T 26875.3-2011 UITD for commissioning and tests: connects to a centre (backups on "
                    "failure), sends the reference frames and random valid traffic, answers queries and "
                    "controls (clock sync, duty check), prints what it sent and received. Exit 0 when every "
                    "upload was confirmed, 1 otherwise.",
    )
    u.add_argument("--host", default="127.0.0.1", help="centre address (default 127.0.0.1)")
    u.add_argument("--port", type=int, required=True, help="centre port")
    u.add_argument("--backup", type=_endpoint, action="append", default=[], metavar="HOST:PORT",
                   help="backup centre (repeatable)")
    u.add_argument("--address", type=parse_address, default=address(889), help="the UITD's address (default 889)")
    u.add_argument("--centre-address", type=parse_address, default=address(88888),
                   help="the centre's address (default 88888)")
    u.add_argument("--vectors", action="store_true", help="send the reference frames' uploads first")
    u.add_argument("--burst", type=int, default=0, metavar="N", help="queue N state uploads at once at the start")
    u.add_argument("--fire", action="store_true", help="then a fire alarm (it jumps the queue)")
    u.add_argument("--rate", type=float, default=0.0, help="random uploads per second (default 0)")
    u.add_argument("--count", type=int, help="number of random uploads (default: until stopped)")
    u.add_argument("--fire-ratio", type=float, default=0.0, help="share of random uploads that are fire alarms")
    u.add_argument("--window", type=int, default=1, help="exchanges open at once (default 1)")
    u.add_argument("--heartbeat", type=float, default=30.0, help="heartbeat period in s, 0 = off (default 30)")
    u.add_argument("--duty-answer-after", type=float, default=2.0,
                   help="seconds until the simulated duty officer answers a duty check (negative: never)")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--stay", action="store_true", help="keep running (answering the centre) after the traffic")
    _session_args(u)
    u.set_defaults(func=run_uitd)
