"""The SQLite backend: which commits are synced to disk (synchronous=FULL) and which not."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.store.records import Exposure
from server.store.sql import Db
from server.store.sqlite import SqliteStore
from tests.server.store.backends import anyio_backend
from tests.server.store.records_factory import T0, prediction, started

__all__ = ["anyio_backend"]

pytestmark = pytest.mark.anyio
FULL, NORMAL = 2, 1  # PRAGMA synchronous values


class LevelRecordingStore(SqliteStore):
    """Notes the synchronous level inside each write transaction and right after it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, threads=1)
        self.levels: list[tuple[int, int]] = []  # (inside, after)

    def _level(self) -> int:
        row = self._connection().execute("PRAGMA synchronous").fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def _transaction(self, *, write: bool, durable: bool = True) -> Iterator[Db]:
        with super()._transaction(write=write, durable=durable) as db:
            inside = self._level()
            yield db
        if write:
            self.levels.append((inside, self._level()))


async def test_log_batches_skip_the_commit_sync_and_acknowledged_writes_keep_it(
    tmp_path: Path,
) -> None:
    """A prediction-log batch commits with synchronous=NORMAL, an event with FULL, and the
    connection is back to FULL after the batch."""
    store = LevelRecordingStore(tmp_path / "s.db")
    await store.open()
    try:
        store.levels.clear()  # migrations and seeding
        exposure = Exposure(
            experiment="ml_scanning", user_id="u1", arm="control", first_exposed_at=T0
        )
        await store.write_log([prediction(1)], [exposure])
        await store.record_event(started("e1"), T0 + timedelta(seconds=1))
        assert store.levels == [(NORMAL, FULL), (FULL, FULL)]
        assert await store.get_prediction("p0001") == prediction(1)
    finally:
        await store.close()
