"""Helpers of the reliability suite: a core in its own process, waits with deadlines."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from firebus.sdk.testing.waiting import wait

HERE = Path(__file__).resolve().parent


class CoreProcess:
    """relcore.py as a child process; ``kill()`` is SIGKILL (no shutdown, no flush)."""

    def __init__(self, site: Path, log: Path, script: Path = HERE / "relcore.py") -> None:
        self.site = site
        self.log = log
        self.script = script
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIREBUS_")}
        marker = self.log.read_text().count("core-started") if self.log.exists() else 0
        self.proc = subprocess.Popen([sys.executable, str(self.script), str(self.site)],
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        wait(lambda: self.log.read_text().count("core-started") > marker or self.proc.poll() is not None,
             timeout, "core start")
        assert self.proc.poll() is None, self.log.read_text()[-4000:]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def settle(self, db: Path, quiet: float = 1.5, timeout: float = 60) -> None:
        """Wait until the alarm engine has handled every journal entry it reads (its cursor
        commits in the same transaction as the alarms it raised) and the database then stops
        changing for ``quiet`` seconds (redeliveries landed).  Quiet alone is not enough: a
        restarted core on a loaded machine can pause longer than ``quiet`` mid catch-up."""
        from firebus.core.alarms.dispatch import INPUT_TYPES

        names = [t.__name__ for t in INPUT_TYPES]

        def snapshot() -> tuple[tuple[int, ...], bool]:
            with sqlite3.connect(db, timeout=5) as conn:
                counts = tuple(conn.execute(
                    "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM alarm_history),"
                    " (SELECT count(*) FROM alarms)").fetchone())
                head = conn.execute(f"SELECT coalesce(max(seq), 0) FROM journal WHERE type IN ({','.join('?' * len(names))})",
                                    names).fetchone()[0]
                cursor = conn.execute("SELECT seq FROM journal_cursors WHERE name = 'alarms'").fetchone()
            return counts, cursor is not None and cursor[0] >= head

        deadline = time.monotonic() + timeout
        (last, caught_up), since = snapshot(), time.monotonic()
        while not caught_up or time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"the database kept changing (alarm engine caught up: {caught_up})")
            time.sleep(0.1)
            now, caught_up = snapshot()
            if now != last:
                last, since = now, time.monotonic()


class WebhookReceiver:
    """A real HTTP server on a free loopback port that records every POSTed JSON body."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies: list[dict] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    bodies.append(json.loads(body))
                except ValueError:
                    bodies.append({"raw": body.decode(errors="replace")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def new_alarms(self) -> list[dict]:
        return [b for b in self.bodies if b.get("kind") == "new"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify_yaml(url: str, categories: str) -> str:
    return (
        "notify:\n"
        "  channels:\n"
        f"    - {{key: hook, type: webhook, options: {{url: '{url}'}}}}\n"
        "  people:\n"
        "    - {name: duty, roles: [duty_officer], contacts: {hook: duty}}\n"
        "  routes:\n"
        f"    - {{name: r, channels: [hook], categories: [{categories}]}}\n"
    )
