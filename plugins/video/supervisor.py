"""Host side of a detector worker: start it, feed it frames, watch it, restart it.

One :class:`DetectorSupervisor` per detector worker process; it may serve several camera
streams (each gets its own detector instance in the worker).  Its rules:

* **Never stall the caller.**  ``submit`` copies the frame into the stream's shared-memory
  slot and queues a ~60-byte message on a non-blocking socket; it never waits for the
  worker.  One frame per stream is in the worker at a time; a frame arriving meanwhile
  replaces the stream's single *pending* frame (latest wins) and the replaced one is
  counted as dropped.  Nothing queues up behind a slow detector.
* **Crash** (the worker exits), **hang** (frames outstanding and no answer for
  ``frame_timeout_s``), **start failure** (no ``Ready`` within ``start_timeout_s``):
  the worker is killed if needed, a fault is raised, and it is restarted after a backoff
  that doubles up to ``backoff_max_s``; the fault clears once the new worker has answered
  for ``healthy_after_s``.
* **Errors** (``detect`` raised ``error_limit`` times in a row), **invalid output** (a
  result outside the contract) and **slow** (more than ``slow_drop_ratio`` of the frames
  of the last ``slow_window_s`` dropped) are faults too, without a restart (restarting
  does not fix code), cleared when the condition is gone.

Callbacks run on the supervisor's own thread and must return quickly (the camera service
hands them to the event loop with ``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import enum
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import msgspec
import numpy as np

from firebus.sdk.detector import Detection, DetectorSetup

from . import ipc
from .options import SupervisorOptions  # re-exported (defined where loading is cheap)

log = logging.getLogger(__name__)


class FaultKind(enum.StrEnum):
    CRASHED = "crashed"
    HUNG = "hung"
    START_FAILED = "start_failed"
    ERRORS = "errors"
    INVALID_OUTPUT = "invalid_output"
    SLOW = "slow"


#: the faults that mean "the worker is down and being restarted"
RESTARTING = (FaultKind.CRASHED, FaultKind.HUNG, FaultKind.START_FAILED)


class DetectorFault(msgspec.Struct, frozen=True):
    """A fault of one detector worker being raised (``raised=True``) or cleared."""

    detector: str
    kind: FaultKind
    raised: bool
    detail: str
    ts: float


class FrameResult(msgspec.Struct, frozen=True):
    stream: int
    ts: float
    detections: list[Detection]
    ms: float


class Submit(enum.StrEnum):
    SENT = "sent"  # handed to the worker
    PENDING = "pending"  # waiting behind the stream's frame in the worker (latest wins)
    DROPPED_DOWN = "dropped_down"  # worker not running (restart backoff)
    REJECTED = "rejected"  # not a uint8 H×W×3 frame, or larger than a slot


class SupervisorStatus(msgspec.Struct):
    detector: str
    state: str
    pid: int | None
    restarts: int
    submitted: int
    analysed: int
    dropped_busy: int
    dropped_down: int
    rejected: int
    lost: int
    errors: int
    invalid: int
    mean_ms: float
    faults: list[str]


class _State(enum.StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class _Stream:
    id: int
    setup: DetectorSetup
    offsets: tuple[int, int]
    in_flight: tuple[int, int] | None = None  # (seq, slot index)
    pending: tuple[int, int, int, float] | None = None  # (slot index, h, w, ts)
    consecutive_errors: int = 0
    recent: deque = field(default_factory=deque)  # (time, dropped?)


ResultCallback = Callable[[FrameResult], None]
FaultCallback = Callable[[DetectorFault], None]


class DetectorSupervisor:
    def __init__(self, name: str, detector: str, options: dict | None = None,
                 supervisor: SupervisorOptions = SupervisorOptions(), *,
                 on_result: ResultCallback | None = None, on_fault: FaultCallback | None = None) -> None:
        self.name = name
        self.detector = detector
        self.detector_options = dict(options or {})
        self.opts = supervisor
        self.on_result = on_result or (lambda r: None)
        self.on_fault = on_fault or (lambda f: None)
        self._lock = threading.RLock()
        self._slot = supervisor.max_frame_bytes
        self._shm_bytes = self._slot * 2 * supervisor.max_streams
        self._shm_fd, self._shm = ipc.shared_memory(self._shm_bytes)
        self._streams: dict[int, _Stream] = {}
        self._free_stream_slots = list(range(supervisor.max_streams))
        self._next_stream = 1
        self._seq = 0
        self._state = _State.IDLE
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader = ipc.Reader(from_worker=True)
        self._outbox = bytearray()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._stop = False
        self._deadline_start = 0.0
        self._restart_at = 0.0
        self._backoff = supervisor.backoff_initial_s
        self._running_since = 0.0
        self._last_progress = 0.0
        self._outstanding = 0
        self._faults: dict[FaultKind, DetectorFault] = {}
        self._fault_since: dict[FaultKind, float] = {}
        self._last_error_at = 0.0
        self._last_invalid_at = 0.0
        self._pid: int | None = None
        self.counters = {"restarts": 0, "submitted": 0, "analysed": 0, "dropped_busy": 0, "dropped_down": 0,
                         "rejected": 0, "lost": 0, "errors": 0, "invalid": 0}
        self._mean_ms = 0.0
        self._events: list[Callable[[], None]] = []

    # ---------------------------------------------------------------- public API

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._state = _State.BACKOFF
            self._restart_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"detector-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker and release everything (idempotent)."""
        with self._lock:
            if self._state == _State.STOPPED:
                return
            self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._kill_worker(graceful=True)
        with self._lock:
            self._state = _State.STOPPED
        for s in (self._wake_r, self._wake_w):
            s.close()
        try:
            self._shm.close()
        except BufferError:  # a numpy view still alive in this process: the OS frees it at exit
            pass
        os.close(self._shm_fd)

    def open_stream(self, setup: DetectorSetup = DetectorSetup()) -> int:
        with self._lock:
            if not self._free_stream_slots:
                raise RuntimeError(f"detector {self.name}: no room for another stream (max_streams)")
            k = self._free_stream_slots.pop(0)
            sid = self._next_stream
            self._next_stream += 1
            base = k * 2 * self._slot
            self._streams[sid] = _Stream(sid, setup, (base, base + self._slot))
            if self._state == _State.RUNNING:
                self._queue(ipc.Open(stream=sid, setup=setup))
        self._wake()
        return sid

    def close_stream(self, sid: int) -> None:
        with self._lock:
            st = self._streams.pop(sid, None)
            if st is None:
                return
            self._free_stream_slots.append(st.offsets[0] // (2 * self._slot))
            if st.in_flight is not None:
                self._outstanding -= 1
            if self._state == _State.RUNNING:
                self._queue(ipc.Close(stream=sid))
        self._wake()

    def submit(self, sid: int, image: np.ndarray, ts: float) -> Submit:
        """Hand one analysis frame to the worker; returns at once, whatever the worker does."""
        with self._lock:
            st = self._streams.get(sid)
            if st is None:
                raise KeyError(f"detector {self.name}: no stream {sid}")
            self.counters["submitted"] += 1
            if (not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3
                    or image.shape[2] != 3 or image.nbytes > self._slot or image.nbytes == 0):
                self.counters["rejected"] += 1
                return Submit.REJECTED
            now = time.monotonic()
            if self._state != _State.RUNNING:
                self.counters["dropped_down"] += 1
                return Submit.DROPPED_DOWN
            h, w = image.shape[:2]
            if st.in_flight is None:
                self._write(st.offsets[0], image)
                self._send_frame(st, 0, h, w, ts, now)
                st.recent.append((now, False))
                result = Submit.SENT
            else:
                slot = 1 - st.in_flight[1]
                if st.pending is not None:
                    self.counters["dropped_busy"] += 1
                    st.recent.append((now, True))
                self._write(st.offsets[slot], image)
                st.pending = (slot, h, w, ts)
                result = Submit.PENDING
            self._trim_recent(st, now)
        self._wake()
        return result

    def status(self) -> SupervisorStatus:
        with self._lock:
            c = self.counters
            return SupervisorStatus(
                detector=self.name, state=str(self._state), pid=self._pid, restarts=c["restarts"],
                submitted=c["submitted"], analysed=c["analysed"], dropped_busy=c["dropped_busy"],
                dropped_down=c["dropped_down"], rejected=c["rejected"], lost=c["lost"], errors=c["errors"],
                invalid=c["invalid"], mean_ms=round(self._mean_ms, 3), faults=sorted(str(k) for k in self._faults))

    def active_faults(self) -> list[DetectorFault]:
        with self._lock:
            return list(self._faults.values())

    @property
    def pid(self) -> int | None:
        return self._pid

    # ---------------------------------------------------------------- internals (lock held)

    def _write(self, offset: int, image: np.ndarray) -> None:
        dst = np.frombuffer(self._shm, np.uint8, count=image.nbytes, offset=offset).reshape(image.shape)
        np.copyto(dst, image)
        del dst

    def _send_frame(self, st: _Stream, slot: int, h: int, w: int, ts: float, now: float) -> None:
        self._seq += 1
        if self._outstanding == 0:
            self._last_progress = now  # the hang clock starts when the worker gets work
        self._outstanding += 1
        st.in_flight = (self._seq, slot)
        self._queue(ipc.Frame(seq=self._seq, stream=st.id, offset=st.offsets[slot], height=h, width=w, ts=ts))

    def _queue(self, msg: msgspec.Struct) -> None:
        self._outbox += ipc.encode(msg)
        self._flush()

    def _flush(self) -> None:
        if self._sock is None or not self._outbox:
            return
        try:
            n = self._sock.send(self._outbox)
            del self._outbox[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass  # the reader side notices the dead worker

    def _trim_recent(self, st: _Stream, now: float) -> None:
        while st.recent and now - st.recent[0][0] > self.opts.slow_window_s:
            st.recent.popleft()

    def _raise(self, kind: FaultKind, detail: str) -> None:
        now = time.time()
        self._fault_since[kind] = time.monotonic()
        if kind in self._faults:
            return
        fault = DetectorFault(detector=self.name, kind=kind, raised=True, detail=detail, ts=now)
        self._faults[kind] = fault
        log.warning("detector %s: fault %s raised: %s", self.name, kind, detail)
        self._events.append(lambda: self.on_fault(fault))

    def _clear(self, kind: FaultKind, detail: str) -> None:
        if kind not in self._faults:
            return
        del self._faults[kind]
        fault = DetectorFault(detector=self.name, kind=kind, raised=False, detail=detail, ts=time.time())
        log.info("detector %s: fault %s cleared", self.name, kind)
        self._events.append(lambda: self.on_fault(fault))

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass

    # ---------------------------------------------------------------- worker lifecycle

    def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        python = self.opts.python or sys.executable
        cmd = [python, "-m", "firebus.plugins.video.worker", "--sock", str(child.fileno()),
               "--shm", str(self._shm_fd), "--shm-bytes", str(self._shm_bytes)]
        env = None
        if self.opts.pythonpath:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([*self.opts.pythonpath, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        try:
            proc = subprocess.Popen(cmd, pass_fds=(child.fileno(), self._shm_fd), stdin=subprocess.DEVNULL,
                                    close_fds=True, env=env)
        except OSError as exc:
            parent.close()
            child.close()
            self._raise(FaultKind.START_FAILED, f"cannot start {python}: {exc}")
            self._schedule_restart()
            return
        child.close()
        parent.setblocking(False)
        self._proc, self._sock, self._pid = proc, parent, proc.pid
        self._reader = ipc.Reader(from_worker=True)
        self._outbox = bytearray()
        self._state = _State.STARTING
        self._deadline_start = time.monotonic() + self.opts.start_timeout_s
        self._queue(ipc.Start(detector=self.detector, options=self.detector_options, shm_bytes=self._shm_bytes))

    def _schedule_restart(self) -> None:
        self._state = _State.BACKOFF
        self._restart_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.opts.backoff_max_s)

    def _worker_down(self, kind: FaultKind, detail: str) -> None:
        self._kill_worker(graceful=False)
        lost = 0
        for st in self._streams.values():
            if st.in_flight is not None:
                lost += 1
            st.in_flight = None
            st.pending = None
            st.recent.clear()  # drops while hung or down are not slowness of the next worker
        self.counters["lost"] += lost
        self._outstanding = 0
        self._raise(kind, detail)
        self._schedule_restart()

    def _kill_worker(self, graceful: bool) -> None:
        proc, sock = self._proc, self._sock
        self._proc, self._sock, self._pid = None, None, None
        if sock is not None and graceful:
            try:
                sock.setblocking(True)
                sock.settimeout(0.5)
                sock.sendall(ipc.encode(ipc.Stop()))
            except OSError:
                pass
        if proc is not None:
            if graceful:
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover — unkillable (D state)
                log.error("detector %s: worker %s did not die", self.name, proc.pid)
        if sock is not None:
            sock.close()

    def _exit_detail(self) -> str:
        proc = self._proc
        if proc is None:
            return "worker gone"
        try:
            code = proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return "worker closed its socket"
        if code < 0:
            try:
                return f"worker killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"worker killed by signal {-code}"
        return f"worker exited with status {code}"

    # ---------------------------------------------------------------- the thread

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        registered: socket.socket | None = None
        while True:
            with self._lock:
                if self._stop:
                    break
                sock = self._sock
                want_write = bool(self._outbox)
                timeout = self._next_timeout()
            if registered is not sock:
                if registered is not None:
                    try:
                        sel.unregister(registered)
                    except (KeyError, ValueError):
                        pass
                if sock is not None:
                    sel.register(sock, selectors.EVENT_READ, "worker")
                registered = sock
            if sock is not None:
                sel.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0), "worker")
            ready = sel.select(timeout)
            with self._lock:
                for key, mask in ready:
                    if key.data == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, OSError):
                            pass
                    elif key.fileobj is self._sock:
                        if mask & selectors.EVENT_WRITE:
                            self._flush()
                        if mask & selectors.EVENT_READ:
                            self._read()
                self._tick()
                events, self._events = self._events, []
            for ev in events:  # callbacks outside the lock
                try:
                    ev()
                except Exception:  # noqa: BLE001 — a callback's bug must not kill supervision
                    log.exception("detector %s: callback failed", self.name)
        sel.close()

    def _next_timeout(self) -> float:
        now = time.monotonic()
        t = 0.5
        if self._state == _State.BACKOFF:
            t = min(t, max(0.0, self._restart_at - now))
        elif self._state == _State.STARTING:
            t = min(t, max(0.0, self._deadline_start - now))
        elif self._outstanding:
            t = min(t, max(0.0, self._last_progress + self.opts.frame_timeout_s - now))
        return max(t, 0.01)

    def _read(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._worker_down(FaultKind.CRASHED, self._exit_detail())
            return
        try:
            msgs = self._reader.feed(data)
        except ipc.ProtocolError as exc:
            self._worker_down(FaultKind.CRASHED, f"worker broke the protocol: {exc}")
            return
        for msg in msgs:
            self._handle(msg)

    def _handle(self, msg: msgspec.Struct) -> None:
        now = time.monotonic()
        self._last_progress = now
        if isinstance(msg, ipc.Ready):
            self._state = _State.RUNNING
            self._running_since = now
            if self._fault_since.get(FaultKind.START_FAILED) is None:
                pass
            for st in self._streams.values():
                self._queue(ipc.Open(stream=st.id, setup=st.setup))
            return
        if isinstance(msg, ipc.StartFailed):
            self._worker_down(FaultKind.START_FAILED, msg.error)
            return
        if isinstance(msg, (ipc.Result, ipc.Failed)):
            st = self._streams.get(msg.stream)
            if isinstance(msg, ipc.Failed) and msg.seq == -1:  # the stream's detector could not be created
                self.counters["errors"] += 1
                self._last_error_at = now
                self._raise(FaultKind.ERRORS, msg.detail)
                return
            if st is None or st.in_flight is None or st.in_flight[0] != msg.seq:
                return  # a stream closed meanwhile, or a reply from before a restart
            self._outstanding -= 1
            st.in_flight = None
            if isinstance(msg, ipc.Result):
                self.counters["analysed"] += 1
                self._mean_ms = msg.ms if self._mean_ms == 0 else 0.9 * self._mean_ms + 0.1 * msg.ms
                st.consecutive_errors = 0
                result = FrameResult(stream=st.id, ts=msg.ts, detections=msg.detections, ms=msg.ms)
                self._events.append(lambda: self.on_result(result))
                self._check_slow(now)
            elif msg.kind == "invalid_output":
                self.counters["invalid"] += 1
                self._last_invalid_at = now
                self._raise(FaultKind.INVALID_OUTPUT, msg.detail)
            else:
                self.counters["errors"] += 1
                self._last_error_at = now
                st.consecutive_errors += 1
                if st.consecutive_errors >= self.opts.error_limit:
                    self._raise(FaultKind.ERRORS, f"detect() failed {st.consecutive_errors} times in a row: "
                                                  f"{msg.detail}")
            if st.pending is not None:
                slot, h, w, ts = st.pending
                st.pending = None
                self._send_frame(st, slot, h, w, ts, now)

    def _tick(self) -> None:
        now = time.monotonic()
        if self._stop:
            return
        if self._state == _State.BACKOFF and now >= self._restart_at:
            if self._proc is None:
                if self._faults.keys() & set(RESTARTING):
                    self.counters["restarts"] += 1
                self._spawn()
            return
        if self._state == _State.STARTING and now >= self._deadline_start:
            self._worker_down(FaultKind.START_FAILED, f"no answer within {self.opts.start_timeout_s:g} s of start")
            return
        if self._state == _State.RUNNING and self._proc is not None and self._proc.poll() is not None:
            self._worker_down(FaultKind.CRASHED, self._exit_detail())
            return
        if self._state == _State.RUNNING and self._outstanding and now - self._last_progress > self.opts.frame_timeout_s:
            pid = self._pid
            self._worker_down(FaultKind.HUNG, f"worker {pid} gave no answer for {self.opts.frame_timeout_s:g} s "
                                              "with frames outstanding; killed")
            return
        if self._state == _State.RUNNING:
            healthy = now - self._running_since >= self.opts.healthy_after_s and self.counters["analysed"] > 0
            if healthy:
                for kind in RESTARTING:
                    if kind in self._faults and now - self._fault_since[kind] >= self.opts.healthy_after_s:
                        self._clear(kind, f"worker {self._pid} answering for {self.opts.healthy_after_s:g} s")
                if not self._faults.keys() & set(RESTARTING):
                    self._backoff = self.opts.backoff_initial_s
            if FaultKind.ERRORS in self._faults and now - self._last_error_at >= self.opts.healthy_after_s:
                self._clear(FaultKind.ERRORS, f"no failed frame for {self.opts.healthy_after_s:g} s")
            if FaultKind.INVALID_OUTPUT in self._faults and now - self._last_invalid_at >= self.opts.healthy_after_s:
                self._clear(FaultKind.INVALID_OUTPUT, f"valid output for {self.opts.healthy_after_s:g} s")
            ratio = self._drop_ratio(now)
            if ratio is not None and ratio <= self.opts.slow_drop_ratio / 2:
                self._clear(FaultKind.SLOW, f"{ratio:.0%} dropped")

    def _drop_ratio(self, now: float) -> float | None:
        total = dropped = 0
        for st in self._streams.values():
            self._trim_recent(st, now)
            total += len(st.recent)
            dropped += sum(1 for _, d in st.recent if d)
        return dropped / total if total >= self.opts.slow_min_frames else None

    def _check_slow(self, now: float) -> None:
        """Called when a result arrives: slow means answering but not keeping up (a silent worker is hung)."""
        ratio = self._drop_ratio(now)
        if ratio is not None and ratio >= self.opts.slow_drop_ratio:
            self._raise(FaultKind.SLOW, f"{ratio:.0%} of the frames of the last {self.opts.slow_window_s:g} s "
                                        f"dropped ({self._mean_ms:.0f} ms per frame on average)")
