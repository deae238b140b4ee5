"""Real servers for the federation tests, started here and never the machine's own.

PostgreSQL (initdb takes ~2 s) is one cluster per test session, each test gets a
fresh database; nats-server (JetStream, store in tmp) is one per test, so a
test can stop and restart it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from firebus.plugins.federation.servers import NatsServer, PostgresCluster


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def pg_dsn(pg_cluster: PostgresCluster, request: pytest.FixtureRequest) -> str:
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return pg_cluster.create_database(name)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()
