"""The store interface, on both backends: every write committed, idempotent, exact."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from server.errors import (
    ConflictError,
    ExperimentNotFoundError,
    InvalidInputError,
    StoreUnavailableError,
)
from server.experiments.config import ExperimentUpdate
from server.store import operations as ops
from server.store import store_from_dsn
from server.store.base import SqlStore
from server.store.interface import Store
from server.store.migrations import latest_version
from server.store.records import Exposure, MetricRollup
from server.store.sql import Db
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, completed, feedback, prediction, started

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio
LATER = T0 + timedelta(days=1)


async def test_open_migrates_and_seeds_the_default_experiment(store: Store) -> None:
    """A fresh store has the latest schema and ml_scanning at 50/50, full coverage."""
    assert await store.schema_version() == latest_version()
    (config,) = await store.list_experiments()
    assert config.name == "ml_scanning"
    assert [(a.name, a.weight) for a in config.arms] == [("control", 0.5), ("treatment", 0.5)]
    assert (config.coverage, config.kill_switch, config.version) == (1.0, False, 1)


async def test_concurrent_opens_are_safe_and_idempotent(store_dsn: str) -> None:
    """Several workers starting at once migrate once and seed one default experiment."""
    stores = [store_from_dsn(store_dsn, pool_size=4) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for s in stores:
            assert await s.schema_version() == latest_version()
        assert len(await stores[0].list_experiments()) == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_update_applies_and_versions_the_config(store: Store) -> None:
    """An update changes only the given fields and bumps the version."""
    now = datetime.now(UTC)
    updated = await store.update_experiment(
        "ml_scanning",
        ExperimentUpdate(coverage=0.2, weights={"control": 0.3, "treatment": 0.7}, force=True),
        now,
    )
    assert updated.coverage == 0.2
    assert [a.weight for a in updated.arms] == [0.3, 0.7]
    assert updated.kill_switch is False
    assert updated.version == 2
    assert await store.get_experiment("ml_scanning") == updated


async def test_concurrent_updates_are_not_lost(store: Store) -> None:
    """Ten admins changing one experiment at once: every change counts in the version."""
    now = datetime.now(UTC)
    await asyncio.gather(
        *(
            store.update_experiment("ml_scanning", ExperimentUpdate(kill_switch=i % 2 == 0), now)
            for i in range(10)
        )
    )
    assert (await store.get_experiment("ml_scanning")).version == 11


async def test_invalid_update_changes_nothing(store: Store) -> None:
    """Weights that do not sum to 1 are refused and the stored config stays as it was."""
    before = await store.get_experiment("ml_scanning")
    with pytest.raises(InvalidInputError, match="sum to 1"):
        await store.update_experiment(
            "ml_scanning",
            ExperimentUpdate(weights={"control": 0.5, "treatment": 0.6}),
            datetime.now(UTC),
        )
    assert await store.get_experiment("ml_scanning") == before


async def test_unknown_experiment_names_the_known_ones(store: Store) -> None:
    """Asking for an unknown experiment says which exist."""
    with pytest.raises(ExperimentNotFoundError, match="ml_scanning"):
        await store.get_experiment("nope")


async def test_prediction_log_round_trips_exactly(store: Store) -> None:
    """A logged prediction reads back equal, times to the microsecond; a rewrite is ignored."""
    record = prediction(1, created_at=T0 + timedelta(microseconds=123457))
    await store.write_log([record], [])
    await store.write_log([prediction(1, user_id="someone else")], [])
    assert await store.get_prediction("p0001") == record
    assert await store.get_prediction("missing") is None


async def test_a_batch_of_several_statements_logs_every_row_once(store: Store) -> None:
    """A 60-row batch (written 25 rows per statement, the last statement shorter) stores
    every row; a row already stored and one repeated in the batch keep their first copy."""
    first = prediction(7, user_id="first")
    await store.write_log([first], [])
    batch = [prediction(n) for n in range(60)]
    batch[10] = prediction(3, user_id="repeat")  # id p0003 twice in one statement
    await store.write_log(batch, [])
    for n in range(60):
        expected = first if n == 7 else None if n == 10 else prediction(n)
        assert await store.get_prediction(f"p{n:04d}") == expected


async def test_prediction_without_ml_keeps_nulls(store: Store) -> None:
    """A control prediction stores no predicted values, and they read back as None."""
    nulls = dict.fromkeys(("result_count", "duration_s", "p_empty", "model_version"))
    record = prediction(2, arm="control", ml_enabled=False, **nulls)
    await store.write_log([record], [])
    assert await store.get_prediction("p0002") == record


async def test_the_earliest_exposure_wins(store: Store) -> None:
    """First exposure per user: a later write keeps the earlier time and its arm."""

    def exposure(user: str, arm: str, minutes: int) -> Exposure:
        at = T0 + timedelta(minutes=minutes)
        return Exposure(experiment="ml_scanning", user_id=user, arm=arm, first_exposed_at=at)

    await store.write_log([], [exposure("a", "control", 5), exposure("b", "treatment", 1)])
    await store.write_log([], [exposure("a", "treatment", 2), exposure("b", "control", 9)])
    assert await store.list_exposures("ml_scanning") == [
        exposure("b", "treatment", 1),
        exposure("a", "treatment", 2),
    ]


async def test_event_retry_is_idempotent_and_a_changed_body_conflicts(store: Store) -> None:
    """The same event twice is stored once; the same id with another body is a conflict."""
    event = completed("e1", result_count=0)
    assert await store.record_event(event, T0) is True
    assert await store.record_event(event, LATER) is False
    with pytest.raises(ConflictError, match="'e1'"):
        await store.record_event(completed("e1", result_count=3), LATER)
    stored = await store.list_events(T0 - timedelta(hours=1), LATER)
    assert [r.event for r in stored] == [event]
    assert stored[0].received_at == T0


async def test_events_out_of_order_keep_their_own_times(store: Store) -> None:
    """Events arriving late are listed by when they happened, not when they arrived."""
    late = completed("e2", at=T0 + timedelta(seconds=30))
    early = started("e1", at=T0)
    await store.record_event(late, T0 + timedelta(seconds=31))
    await store.record_event(early, T0 + timedelta(seconds=40))
    events = [r.event for r in await store.list_events(T0, LATER)]
    assert events == [early, late]


async def test_feedback_once_per_prediction(store: Store) -> None:
    """Feedback is stored once per prediction; a retry is a no-op, another rating conflicts."""
    first = feedback("p1", suggestion="more volume filters")
    assert await store.record_feedback(first, T0) is True
    assert await store.record_feedback(first, LATER) is False
    with pytest.raises(ConflictError, match="'p1'"):
        await store.record_feedback(feedback("p1", satisfaction=1), LATER)
    assert [r.feedback for r in await store.list_feedback(T0, LATER)] == [first]


async def test_free_text_is_stored_verbatim_never_as_sql(store: Store) -> None:
    """Quotes, SQL and non-ASCII in a suggestion are data: stored and read back unchanged."""
    text = "'); DROP TABLE feedback; -- ? %s %(x)s \u00e9\u4e2d\U0001f600 " + "x" * 1900
    note = feedback("p2", suggestion=text)
    await store.record_feedback(note, T0)
    assert [r.feedback for r in await store.list_feedback(T0, LATER)] == [note]
    assert await store.schema_version() == latest_version()


async def test_rollups_merge_into_one_minute_buckets(store: Store) -> None:
    """Rollups for the same minute add counts and sums and widen min and max."""

    def rollup(second: int, count: int, total: float, lo: float, hi: float) -> MetricRollup:
        return MetricRollup(
            metric="latency",
            labels='{"route":"/v1/predict"}',
            bucket_start=T0 + timedelta(seconds=second),
            count=count,
            total=total,
            minimum=lo,
            maximum=hi,
        )

    await store.write_rollups([rollup(0, 2, 0.5, 0.1, 0.4)])
    await store.write_rollups([rollup(59, 3, 1.5, 0.05, 0.3), rollup(60, 1, 2.0, 2.0, 2.0)])
    rows = await store.read_rollups("latency", T0, LATER)
    assert [(r.bucket_start, r.count, r.total, r.minimum, r.maximum) for r in rows] == [
        (T0, 5, 2.0, 0.05, 0.4),
        (T0 + timedelta(minutes=1), 1, 2.0, 2.0, 2.0),
    ]


async def test_secret_is_created_once_and_shared(store_dsn: str, store: Store) -> None:
    """Every store on one database reads the same secret, 32 random bytes."""
    other = store_from_dsn(store_dsn, pool_size=4)
    await other.open()
    try:
        secret = await store.secret("ids")
        assert len(secret) == 32
        assert await other.secret("ids") == secret
        assert await store.secret("other") != secret
    finally:
        await other.close()


async def test_records_encode_for_the_wire(store: Store) -> None:
    """What the store lists encodes to JSON (it is served by the API as is)."""
    await store.record_event(completed("e9"), T0)
    assert b'"type":"scan_completed"' in msgspec.json.encode(await store.list_events(T0, LATER))


async def test_closed_store_is_unavailable(store_dsn: str) -> None:
    """A store that is not open raises StoreUnavailableError instead of hanging."""
    closed = store_from_dsn(store_dsn, pool_size=4)
    with pytest.raises(StoreUnavailableError, match="not open"):
        await closed.list_experiments()


async def test_close_waits_for_a_write_its_caller_gave_up_on(store_dsn: str) -> None:
    """A write still running in the pool when its caller is cancelled (the prediction log's
    writer at shutdown) commits before close() closes the connections under it."""
    opened = store_from_dsn(store_dsn, pool_size=4)
    await opened.open()
    assert isinstance(opened, SqlStore)
    started, release = threading.Event(), threading.Event()

    def slow(db: Db) -> None:
        started.set()
        release.wait(timeout=10)
        ops.insert_predictions(db, [prediction(1)])

    write = asyncio.create_task(opened._tx(slow))
    assert await asyncio.to_thread(started.wait, 5)
    write.cancel()
    closing = asyncio.create_task(opened.close())
    await asyncio.sleep(0.2)
    assert not closing.done(), "close() returned while a write was still running"
    release.set()
    await closing
    reopened = store_from_dsn(store_dsn, pool_size=4)
    await reopened.open()
    try:
        assert await reopened.get_prediction("p0001") == prediction(1)
    finally:
        await reopened.close()
