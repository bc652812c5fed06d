"""Shared fixtures: paths to bundled data, and a store on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from medsleep.store.engine import open_store
from tests.http_service import Service, service
from tests.pg import create_database, find_pg_bin, postgres_server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPEC_EXAMPLES = FIXTURES / "fhir-r4-spec-examples"
SYNTHEA = FIXTURES / "synthea-r4-bundles"
SAMPLE = FIXTURES / "sample"
# .ci/run sets this: there, a missing PostgreSQL is a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("MEDSLEEP_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    if find_pg_bin() is None:
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL server binaries not found but MEDSLEEP_REQUIRE_POSTGRES=1")
        pytest.skip("no PostgreSQL server installed (initdb/pg_ctl): PostgreSQL tests skipped")
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="medsleep-pg-"))
    base.chmod(0o755)
    try:
        with postgres_server(base) as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'medsleep.db'}"
    admin: str = request.getfixturevalue("postgres_admin_url")
    return create_database(admin)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'medsleep.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    store = open_store(db_url)
    yield store
    store.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    store = open_store(sqlite_url)
    yield store
    store.dispose()


@pytest.fixture
def svc(tmp_path: Path, sqlite_url: str) -> Iterator[Service]:
    with service(tmp_path, sqlite_url) as running:
        yield running


@pytest.fixture
def any_svc(tmp_path: Path, db_url: str) -> Iterator[Service]:
    """The service on SQLite and on PostgreSQL."""
    with service(tmp_path, db_url) as running:
        yield running
