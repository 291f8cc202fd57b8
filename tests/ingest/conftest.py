"""Fixtures: a throw-away PostgreSQL cluster (never skipped: it fails saying what to do)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ingest.pg import Cluster, PgError


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster()
        cluster.start()
    except PgError as exc:
        pytest.fail(f"cannot start a throw-away PostgreSQL cluster: {exc}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture()
def pg_url(pg_cluster: Cluster) -> str:
    return pg_cluster.createdb(f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'record.sqlite'}"
    return request.getfixturevalue("pg_url")
