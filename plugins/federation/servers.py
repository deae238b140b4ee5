"""A real nats-server (JetStream) and a real PostgreSQL cluster in a temp dir, for tests and the bench.

Never the machine's own services: each one is started here on a free loopback
port with its data in ``workdir`` (PostgreSQL's unix socket there too), and
stopped by the same object.  A missing binary is an error, not a skip: a clean
machine gets both from ``scripts/ensure-system-deps.sh`` (Debian's
``nats-server`` and ``postgresql``).

    with NatsServer(tmp / "nats") as nats, PostgresCluster(tmp / "pg") as pg:
        nats.url, pg.dsn("firebus")
        nats.stop(); nats.start()      # same port, same store: JetStream keeps its streams
"""

from __future__ import annotations

import glob
import os
import pwd
import tempfile
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def find_nats_server() -> str:
    """``FIREBUS_NATS_SERVER`` or nats-server on PATH or in /usr/sbin, /usr/bin."""
    env = os.environ.get("FIREBUS_NATS_SERVER")
    if env:
        return env
    for cand in ("nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"):
        found = shutil.which(cand) or (cand if os.access(cand, os.X_OK) else None)
        if found:
            return found
    raise RuntimeError("nats-server not found; install it with scripts/ensure-system-deps.sh "
                       "(Debian package nats-server) or set FIREBUS_NATS_SERVER")


def find_pg_bin() -> Path:
    """The newest /usr/lib/postgresql/*/bin with initdb (``FIREBUS_PG_BIN`` overrides)."""
    env = os.environ.get("FIREBUS_PG_BIN")
    if env:
        return Path(env)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]) if
                  d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb); install it with "
                       "scripts/ensure-system-deps.sh (Debian package postgresql) or set FIREBUS_PG_BIN")


class NatsServer:
    """One nats-server with JetStream; ``stop``/``start`` keep the port and the store."""

    def __init__(self, workdir: str | Path, *, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.binary = find_nats_server()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "nats.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        store = self.workdir / "js"
        store.mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-js", "-sd", str(store), "-a", self.host, "-p", str(self.port), "-l", str(self.log_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        if not _wait_port(self.host, self.port, timeout, self.proc):
            self.kill()
            raise RuntimeError(f"nats-server did not start; log:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): JetStream flushes its store."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "NatsServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresCluster:
    """A throw-away cluster: ``initdb`` into ``workdir``, ``pg_ctl`` on a free loopback port.

    Tuned for tests and the bench on a shared box, not for a centre: fsync stays on
    (commit means on disk, as in production) but the buffers are small.  PostgreSQL
    refuses to run as root: as root the cluster lives in its own temp dir owned by
    the ``postgres`` system user (the Debian package creates it) and the server runs
    as that user; ``cleanup()`` removes it.
    """

    def __init__(self, workdir: str | Path, *, port: int | None = None, user: str = "firebus",
                 settings: dict[str, str] | None = None) -> None:
        self.run_as: str | None = None
        self._own_dir = False
        if os.geteuid() == 0:
            self.run_as = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if self.run_as is None:
                raise RuntimeError("PostgreSQL will not run as root and there is no 'postgres' user")
            workdir = tempfile.mkdtemp(prefix="firebus-pg-")
            entry = pwd.getpwnam(self.run_as)
            os.chown(workdir, entry.pw_uid, entry.pw_gid)
            self._own_dir = True
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = self.workdir / "data"
        self.sock = self.workdir / "sock"
        self.port = port or free_port()
        self.user = user
        self.bin = find_pg_bin()
        self.settings = {"shared_buffers": "128MB", "max_connections": "50", "max_wal_size": "1GB",
                         "synchronous_commit": "on", "listen_addresses": "'127.0.0.1'",
                         **(settings or {})}
        self.log_path = self.workdir / "postgres.log"

    def _run(self, *args: str) -> None:
        res = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                             user=self.run_as, cwd=str(self.workdir))
        if res.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {res.stderr.strip() or res.stdout.strip()}\n{self.log()}")

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
            with open(self.data / "postgresql.conf", "a") as conf:
                for key, value in self.settings.items():
                    conf.write(f"{key} = {value}\n")
        self.sock.mkdir(exist_ok=True)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(self.sock, entry.pw_uid, entry.pw_gid)
        opts = f"-p {self.port} -k {self.sock}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", opts, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                           capture_output=True, user=self.run_as, cwd=str(self.workdir))

    def cleanup(self) -> None:
        """Stop, and remove the cluster's directory if this object made it."""
        self.stop("immediate")
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """A fresh database ``name`` (dropped first if it exists); returns its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "PostgresCluster":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
