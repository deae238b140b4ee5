"""A real Mosquitto broker on a free loopback port, for tests and the SDK's pytest plugin.

Tests of "nothing lost" must run against a broker that behaves like production:
persistence on (a restart keeps sessions and queued QoS 1 messages), queues
large enough not to drop silently, and the same port across restarts so
clients reconnect by themselves.

    with Mosquitto(tmp_path) as broker:
        ... broker.port ...
        broker.restart()

A missing binary is an error, not a skip: a clean machine gets it from
``scripts/ensure-system-deps.sh``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def find_mosquitto() -> str:
    """Path of the mosquitto binary; ``FIREBUS_MOSQUITTO`` overrides the search."""
    env = os.environ.get("FIREBUS_MOSQUITTO")
    if env:
        return env
    for cand in CANDIDATES:
        found = shutil.which(cand) or (cand if os.access(cand, os.X_OK) else None)
        if found:
            return found
    raise RuntimeError(
        "mosquitto not found (tried PATH and /usr/sbin); install it with "
        "scripts/ensure-system-deps.sh or set FIREBUS_MOSQUITTO"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_test_certs(directory: str | Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``host`` (openssl CLI). Returns (ca, cert, key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = d / "san.cnf"
    ext.write_text(f"subjectAltName=IP:{host},DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=firebus test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


def wait_port(host: str, port: int, timeout: float = 10.0, *, open_: bool = True) -> None:
    """Wait until ``host:port`` accepts connections (or, with ``open_=False``, refuses them)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                if open_:
                    return
        except OSError:
            if not open_:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} still {'closed' if open_ else 'open'} after {timeout}s")
        time.sleep(0.05)


class Mosquitto:
    """One broker process.  ``start``/``stop``/``restart`` keep the port and the data dir."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        persistence: bool = True,
        extra_config: str = "",
        binary: str | None = None,
        users: dict[str, str] | None = None,
        tls: tuple[str | Path, str | Path, str | Path] | None = None,
    ) -> None:
        """``users`` → password file, anonymous access off; ``tls`` = (ca, cert, key) files for the listener."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.persistence = persistence
        self.extra_config = extra_config
        self.binary = binary or find_mosquitto()
        self.users = dict(users or {})
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"

    def config(self) -> str:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        auth = ["allow_anonymous true"]
        if self.users:
            pw = self.workdir / "passwd"
            pw.write_text("")
            passwd_tool = str(Path(self.binary).with_name("mosquitto_passwd"))
            if not os.access(passwd_tool, os.X_OK):
                passwd_tool = shutil.which("mosquitto_passwd") or "mosquitto_passwd"
            for user, password in self.users.items():
                subprocess.run([passwd_tool, "-b", str(pw), user, password], check=True, capture_output=True)
            auth = ["allow_anonymous false", f"password_file {pw}"]
        tls = []
        if self.tls is not None:
            ca, cert, key = self.tls
            tls = [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        lines = [
            f"listener {self.port} {self.host}",
            *tls,
            *auth,
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {data}/",
            # Defaults drop silently (1000 queued) and cap in-flight at 20; tests
            # of loss must not be limited by the broker's shedding.
            "max_queued_messages 100000",
            "max_inflight_messages 0" if "max_inflight_messages" not in self.extra_config else "",
            "set_tcp_nodelay true",
            # Started as root (CI containers), Mosquitto drops to user "mosquitto",
            # which cannot write our temp dir: persistence would silently fail.
            "user root" if os.geteuid() == 0 else "",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            self.extra_config,
        ]
        return "\n".join(lines) + "\n"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self.conf_path.write_text(self.config())
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        try:
            wait_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start; log:\n{self.log()}") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: SIGTERM makes Mosquitto write its persistence file."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused broker cannot handle SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: whatever was not yet saved is gone, like a power cut."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but says nothing (a hung broker or dead route)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def restart(self, timeout: float = 10.0) -> None:
        self.stop(timeout)
        self.start(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "Mosquitto":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
