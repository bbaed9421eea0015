"""Group commit: events and feedback sent together share a COMMIT, each keeps its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from server.errors import ConflictError, StoreUnavailableError
from server.store.base import SqlStore
from server.store.group_commit import GroupCommit
from server.store.interface import Store
from server.store.sql import Db
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, completed, feedback

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio
LATER = T0 + timedelta(days=1)


def _sql(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


async def test_writes_sent_together_share_commits_and_all_are_stored(store: Store) -> None:
    """100 events at once: each acknowledged as created, all stored, in far fewer commits."""
    events = [completed(f"e{i:03d}", result_count=i) for i in range(100)]
    created = await asyncio.gather(*(store.record_event(e, T0) for e in events))
    assert created == [True] * 100
    stored = {r.event.event_id for r in await store.list_events(T0 - timedelta(hours=1), LATER)}
    assert stored == {e.event_id for e in events}
    group = _sql(store).group_commit
    assert group.writes == 100
    # The first write commits alone; the other 99 queue behind it and go in batches of 64.
    assert group.commits <= 3


async def test_a_write_alone_commits_at_once(store: Store) -> None:
    """One at a time, each write is its own commit: nothing waits for company."""
    for i in range(5):
        assert await store.record_event(completed(f"solo{i}"), T0) is True
    group = _sql(store).group_commit
    assert (group.commits, group.writes) == (5, 5)


async def test_a_conflict_in_a_batch_fails_alone(store: Store) -> None:
    """A retry with another body is a ConflictError for that write only; a same-body retry
    in the same batch is a duplicate; every other write of the batch is stored."""
    first = feedback("p1", satisfaction=5)
    assert await store.record_feedback(first, T0) is True
    results = await asyncio.gather(
        store.record_feedback(feedback("p2"), T0),
        store.record_feedback(feedback("p1", satisfaction=1), LATER),  # conflicts
        store.record_feedback(feedback("p3"), T0),
        store.record_feedback(feedback("p3"), T0),  # the same body again in the batch
        return_exceptions=True,
    )
    assert results[0] is True
    assert isinstance(results[1], ConflictError)
    assert "'p1'" in str(results[1])
    assert results[2:] == [True, False]
    stored = {r.feedback.prediction_id: r.feedback for r in await store.list_feedback(T0, LATER)}
    assert stored == {"p1": first, "p2": feedback("p2"), "p3": feedback("p3")}
    assert _sql(store).group_commit.commits == 2  # p1 alone, then the four together


async def test_a_failed_transaction_fails_every_write_in_it_and_stores_none(
    store: Store,
) -> None:
    """The store failing under a batch: every write of it gets the error, none is stored,
    and the next write commits normally."""
    sql = _sql(store)
    broken = GroupCommit(_failing_run(sql))
    sql.group_commit = broken
    results = await asyncio.gather(
        *(store.record_event(completed(f"lost{i}"), T0) for i in range(6)),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailableError) for r in results), results
    assert await store.list_events(T0 - timedelta(hours=1), LATER) == []
    assert (broken.commits, broken.writes) == (0, 0)
    sql.group_commit = GroupCommit(lambda job: sql._tx(job))
    assert await store.record_event(completed("after"), T0) is True


def _failing_run(sql: SqlStore) -> Callable[[Callable[[Db], list[object]]], Any]:
    """A transaction that runs the batch's writes, then fails as a lost store would."""

    async def run(job: Callable[[Db], list[object]]) -> list[object]:
        def then_fail(db: Db) -> list[object]:
            job(db)
            raise StoreUnavailableError("the test's store went away before COMMIT")

        return await sql._tx(then_fail)

    return run
