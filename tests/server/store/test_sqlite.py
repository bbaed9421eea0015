"""The SQLite backend: which commits are synced to disk (synchronous=FULL) and which not."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.errors import StoreUnavailableError
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


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """A connection holding the write lock on a new file still in rollback-journal mode:
    where a worker's WAL switch finds a peer that is making the same switch."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE peer (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_opening_waits_for_a_peer_switching_the_new_file_to_wal(tmp_path: Path) -> None:
    """SQLite refuses the WAL switch at once (no busy wait) while another connection holds
    the write lock; the store retries it until the peer is done, as concurrent first
    starts of several workers need."""
    path = tmp_path / "s.db"
    holder = _hold_write_lock(path)
    release = threading.Timer(0.2, lambda: holder.execute("COMMIT"))
    release.start()
    store = SqliteStore(path, threads=1, busy_timeout_s=5.0)
    try:
        await store.open()
        journal = store._connection().execute("PRAGMA journal_mode").fetchone()
        assert journal == ("wal",)
    finally:
        release.join()
        await store.close()
        holder.close()


async def test_opening_gives_up_on_the_wal_switch_after_the_busy_timeout(tmp_path: Path) -> None:
    """A write lock that is never released makes opening fail as unavailable, naming the
    file, once the busy timeout has passed: the retry is bounded."""
    path = tmp_path / "s.db"
    holder = _hold_write_lock(path)
    store = SqliteStore(path, threads=1, busy_timeout_s=0.1)
    try:
        with pytest.raises(StoreUnavailableError, match=r"s\.db.*database is locked"):
            await store.open()
    finally:
        await store.close()
        holder.close()
