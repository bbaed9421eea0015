"""Fixtures that run a test on both store backends.

SQLite gets a file in tmp_path. PostgreSQL gets a fresh schema per test in the database
named by SCANOPT_TEST_PG_DSN (dropped afterwards). Without that variable the PostgreSQL
cases skip, saying why, except under CI=true where they must run: there a missing
variable or an unreachable server fails the test instead of hiding it.

Test modules outside this folder import the fixtures they use from here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from server.store import store_from_dsn
from server.store.interface import Store

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

PG_ENV = "SCANOPT_TEST_PG_DSN"
BACKENDS = ("sqlite", "postgresql")


def _base_pg_dsn() -> str:
    dsn = os.environ.get(PG_ENV)
    in_ci = os.environ.get("CI", "").lower() == "true"
    if not dsn:
        if in_ci:
            pytest.fail(f"CI=true but {PG_ENV} is not set: the PostgreSQL store tests must run")
        pytest.skip(
            f"{PG_ENV} is not set, so the PostgreSQL backend is not tested here "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_ENV}={dsn} is set but PostgreSQL is unreachable: {exc}")
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    """`dsn` (a postgresql:// URL) with every connection's search_path set to `schema`."""
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}options=-c%20search_path%3D{schema}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A postgresql:// DSN whose connections all live in a fresh, empty schema."""
    base = _base_pg_dsn()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def sqlite_dsn(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'scanopt.db'}"


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def store_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A DSN for an empty store, once per backend."""
    if request.param == "sqlite":
        return sqlite_dsn(tmp_path)
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


@pytest.fixture
async def store(store_dsn: str) -> AsyncIterator[Store]:
    """An open, migrated store on each backend, closed afterwards."""
    opened = store_from_dsn(store_dsn, pool_size=4)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
