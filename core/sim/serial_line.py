"""A simulated RS-485 line: two pseudo-terminals joined by a wire that moves bytes at the baud rate.

A pty pair alone delivers bytes as fast as the kernel copies them, so an RTU
master talking to a simulator through one would reach rates no real line can.
``PacedSerialLine`` opens two pty pairs — the master (firebus' ``modbus_rtu``
hub) opens ``client_port``, the simulated devices (``ModbusSimulator`` with
``serial_port=``) open ``device_port`` — and relays between their master ends
as a half-duplex wire would carry them:

* a frame occupies the wire for ``bytes × char_s`` (``RtuTiming``: start, data,
  parity and stop bits at the configured baud rate) and arrives at the far end
  when its last byte would have;
* a new frame, in either direction, starts only after the wire has been silent
  for t3.5 since the last one ended (3.5 characters, 1.75 ms above 19,200 baud);
  bytes written while the previous frame is still on the wire continue it;
* a request reaches the devices t3.5 after its last byte: a slave knows a frame
  has ended only once the line has been silent that long.

So one exchange can never take less than the formula
``(request + response) × char_s + 2 × t3.5 (+ turnaround)``; anything the master,
the simulator or this relay add on top is measured as overhead, never hidden.
Lateness of the relay itself (the thread waking after a byte was due) is counted
in ``stats()``.  The relay is a thread of its own (``select`` with microsecond
timeouts); run the master in another process for figures, as ``bench/modbus_rtu.py``
does, so neither waits for the other's GIL.
"""

from __future__ import annotations

import heapq
import os
from collections import deque
import select
import threading
import time
import tty
from typing import Any

from firebus.sdk.modbus import RtuTiming


#: how long before a delivery is due the relay stops sleeping and spins
_SPIN_S = 0.0002


class PacedSerialLine:
    """Two pty pairs and a paced half-duplex relay between them; a context manager."""

    def __init__(self, baudrate: int = 9600, *, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> None:
        self.timing = RtuTiming.of(baudrate, bytesize, parity, stopbits)
        self.baudrate = baudrate
        #: recent turnarounds as (monotonic, s): last byte handed to a side → first byte of that
        #: side's next frame (the units': their processing; the client's: its processing plus the
        #: t3.5 it keeps)
        self.turnaround: dict[str, deque[tuple[float, float]]] = {
            "devices": deque(maxlen=50_000), "client": deque(maxlen=50_000)}
        self._fds: list[int] = []
        self._thread: threading.Thread | None = None
        self._stop_r = self._stop_w = -1
        self.client_port = ""
        self.device_port = ""
        # statistics (written by the relay thread, read by anyone: plain ints and floats)
        self.frames = 0
        self.bytes = {"to_devices": 0, "to_client": 0}
        self.busy_s = 0.0
        self.late_max_s = 0.0
        self._late_sum = 0.0
        self._deliveries = 0

    # -- life cycle
    def start(self) -> "PacedSerialLine":
        mc, sc = os.openpty()
        md, sd = os.openpty()
        for fd in (sc, sd):
            tty.setraw(fd)  # no echo, no line discipline: bytes pass as they are
        for fd in (mc, md):
            os.set_blocking(fd, False)
        self._fds = [mc, sc, md, sd]  # the slave ends stay open here, so a port can be reopened
        self._client_master, self._device_master = mc, md
        self.client_port, self.device_port = os.ttyname(sc), os.ttyname(sd)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"paced-serial-{self.baudrate}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            self._thread = None
        for fd in [*self._fds, self._stop_r, self._stop_w]:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds = []
        self._stop_r = self._stop_w = -1

    def __enter__(self) -> "PacedSerialLine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the relay
    def _run(self) -> None:
        char, silence = self.timing.char_s, self.timing.silence_s
        mc, md = self._client_master, self._device_master
        pending: list[tuple[float, int, int, bytes]] = []  # (deliver at, seq, destination fd, bytes)
        seq = 0
        wire_end = -1.0  # when the last byte put on the wire has left it
        last_source = -1
        delivered: dict[int, float] = {}  # fd → when bytes were last handed to it
        while True:
            timeout = 0.2
            if pending:
                due = pending[0][0] - time.monotonic()
                if 0 < due <= _SPIN_S:
                    # the kernel wakes a sleeper ~0.1–0.2 ms late: spin the last stretch, so the
                    # wire, not the relay, sets the timing
                    while time.monotonic() < pending[0][0]:
                        pass
                    due = 0.0
                timeout = max(0.0, min(timeout, due - _SPIN_S))
            try:
                ready, _, _ = select.select([mc, md, self._stop_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._stop_r in ready:
                return
            now = time.monotonic()
            for src in ready:
                try:
                    data = os.read(src, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""  # EIO: nobody has the port open right now; nothing was sent
                if not data:
                    continue
                if src == last_source and now <= wire_end + 1.5 * char:
                    start = max(now, wire_end)  # written while its frame is still on the wire: same frame
                else:
                    start = max(now, wire_end + silence)  # a new frame waits for t3.5 of silence
                    self.frames += 1
                    handed = delivered.get(src)
                    if handed is not None and handed >= wire_end - 1e-9:  # answering what it was handed last
                        self.turnaround["client" if src == mc else "devices"].append((now, now - handed))
                end = start + len(data) * char
                self.busy_s += end - start
                wire_end, last_source = end, src
                to_devices = src == mc
                self.bytes["to_devices" if to_devices else "to_client"] += len(data)
                at = end + silence if to_devices else end
                seq += 1
                heapq.heappush(pending, (at, seq, md if to_devices else mc, data))
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                at, _, dst, data = heapq.heappop(pending)
                late = now - at
                self._late_sum += late
                self._deliveries += 1
                if late > self.late_max_s:
                    self.late_max_s = late
                delivered[dst] = now
                try:
                    os.write(dst, data)
                except OSError:
                    pass  # the far end is not open: bytes on a wire nobody listens to are lost

    def stats(self, window: tuple[float, float] | None = None) -> dict[str, Any]:
        """Counters since start; turnaround medians of the samples within ``window`` (monotonic) if given."""
        return {
            "baudrate": self.baudrate,
            "bits_per_char": self.timing.bits_per_char,
            "frames": self.frames,
            "bytes": dict(self.bytes),
            "wire_busy_s": round(self.busy_s, 4),
            "relay_late_ms_max": round(1000 * self.late_max_s, 3),
            "relay_late_ms_avg": round(1000 * self._late_sum / self._deliveries, 3) if self._deliveries else 0.0,
            **{f"{side}_turnaround_ms_p50": _median_ms(v, window) for side, v in self.turnaround.items()},
        }


def _median_ms(samples: "deque[tuple[float, float]]", window: tuple[float, float] | None) -> float | None:
    ordered = sorted(dt for t, dt in list(samples) if window is None or window[0] <= t <= window[1])
    return round(1000 * ordered[len(ordered) // 2], 3) if ordered else None
