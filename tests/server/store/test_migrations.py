"""Versioned migrations: contiguous versions, applied once, all or nothing, both backends."""

from __future__ import annotations

import pytest

from server.store import operations, store_from_dsn
from server.store.migrations import MIGRATIONS, Migration, latest_version
from tests.server.store.backends import anyio_backend, pg_dsn, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store_dsn"]

pytestmark = pytest.mark.anyio


def test_versions_are_contiguous_from_one() -> None:
    """Versions run 1, 2, 3, ... so an applied set is always a prefix."""
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert latest_version() == len(MIGRATIONS)


async def test_reopening_applies_nothing_again(store_dsn: str) -> None:
    """A second start finds every version recorded and leaves the data alone."""
    for _ in range(2):
        store = store_from_dsn(store_dsn, pool_size=4)
        await store.open()
        assert await store.schema_version() == latest_version()
        await store.close()


async def test_a_failing_migration_changes_nothing(
    store_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration that fails half-way rolls back whole: its first table is not left."""
    store = store_from_dsn(store_dsn, pool_size=4)
    await store.open()
    await store.close()

    def migrate_to(*statements: str) -> None:
        step = Migration(version=latest_version() + 1, description="t", statements=statements)
        monkeypatch.setattr(operations, "MIGRATIONS", (*MIGRATIONS, step))

    migrate_to("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
    with pytest.raises(Exception, match=r"(?i)syntax"):
        await store_from_dsn(store_dsn, pool_size=4).open()
    # Creating the same table again succeeds only if the failed attempt left nothing.
    migrate_to("CREATE TABLE half_done (x INTEGER)")
    store = store_from_dsn(store_dsn, pool_size=4)
    await store.open()
    try:
        assert await store.schema_version() == latest_version() + 1
    finally:
        await store.close()
