"""The prediction log buffer: batched, off the request path, bounded, and loss is counted."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from server.settings import Settings
from server.store import store_from_dsn
from server.store.buffer import PredictionLog
from server.store.interface import Store
from server.store.metrics import StoreMetrics
from server.store.sqlite import SqliteStore
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, prediction

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> StoreMetrics:
    return StoreMetrics(registry)


DEFAULTS = Settings()


def _log(store: Store, metrics: StoreMetrics, **overrides: Any) -> PredictionLog:
    """A log with the server's default sizes unless a test says otherwise."""
    values: dict[str, Any] = {
        "capacity": DEFAULTS.prediction_log_capacity,
        "batch_size": DEFAULTS.prediction_log_batch,
        "flush_interval_s": DEFAULTS.prediction_log_flush_s,
        "share": DEFAULTS.prediction_log_share,
    }
    return PredictionLog(store, metrics, **{**values, **overrides})


def _count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def _logged(store: Store, n: int) -> list[str]:
    found = [await store.get_prediction(prediction(i).prediction_id) for i in range(n)]
    return [p.prediction_id for p in found if p is not None]


async def test_flush_writes_predictions_and_first_exposures(
    store: Store, metrics: StoreMetrics, registry: CollectorRegistry
) -> None:
    """Every recorded prediction is written; each user's exposure once, at its first time."""
    log = _log(store, metrics, batch_size=4)
    for i in range(10):
        log.record(prediction(i))
    assert await log.flush() is True
    assert len(await _logged(store, 10)) == 10
    exposures = await store.list_exposures("ml_scanning")
    assert sorted(e.user_id for e in exposures) == [f"u{i}" for i in range(7)]
    assert {e.user_id: e.first_exposed_at for e in exposures}["u0"] == T0
    assert _count(registry, "scanopt_store_log_written_total", kind="prediction") == 10
    assert log.pending == 0


async def test_sampling_keeps_exposures_but_not_every_prediction(
    store: Store, metrics: StoreMetrics
) -> None:
    """With share 0 no prediction is logged, yet every exposed user still is."""
    log = _log(store, metrics, share=0.0)
    for i in range(10):
        log.record(prediction(i))
    log.record(prediction(20, user_id="outsider", arm=None, ml_enabled=False))
    await log.flush()
    assert await _logged(store, 10) == []
    users = {e.user_id for e in await store.list_exposures("ml_scanning")}
    assert users == {f"u{i}" for i in range(7)}


async def test_background_writer_flushes_full_batches(store: Store, metrics: StoreMetrics) -> None:
    """A full batch wakes the background writer; no explicit flush is needed."""
    log = _log(store, metrics, batch_size=5, flush_interval_s=60.0)
    log.start()
    try:
        for i in range(5):
            log.record(prediction(i))
        for _ in range(200):
            if len(await _logged(store, 5)) == 5:
                break
            await asyncio.sleep(0.02)
        assert len(await _logged(store, 5)) == 5
    finally:
        await log.stop()


async def test_stop_flushes_what_is_left(store: Store, metrics: StoreMetrics) -> None:
    """Shutdown writes the rows still queued."""
    log = _log(store, metrics, flush_interval_s=60.0)
    log.start()
    log.record(prediction(1))
    await log.stop()
    assert await _logged(store, 2) == ["p0001"]


@pytest.fixture
async def locked_sqlite(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, sqlite3.Connection]]:
    """A SQLite store plus a second connection that can hold the write lock (an outage)."""
    store = SqliteStore(tmp_path / "s.db", threads=4, busy_timeout_s=0.05)
    await store.open()
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        yield store, holder
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        await store.close()


async def test_store_outage_keeps_rows_and_recovers(
    locked_sqlite: tuple[SqliteStore, sqlite3.Connection],
    metrics: StoreMetrics,
    registry: CollectorRegistry,
) -> None:
    """While the store is locked, rows stay queued; once it is back, all are written."""
    store, holder = locked_sqlite
    log = _log(store, metrics)
    holder.execute("BEGIN EXCLUSIVE")
    for i in range(3):
        log.record(prediction(i))
    assert await log.flush() is False
    assert log.pending == 3
    assert _count(registry, "scanopt_store_flush_failures_total") == 1
    holder.execute("ROLLBACK")
    assert await log.flush() is True
    assert len(await _logged(store, 3)) == 3
    assert (
        _count(registry, "scanopt_store_dropped_total", kind="prediction", reason="buffer_full")
        == 0
    )


async def test_shadow_rows_take_the_same_retrying_path(
    locked_sqlite: tuple[SqliteStore, sqlite3.Connection],
    metrics: StoreMetrics,
    registry: CollectorRegistry,
) -> None:
    """Shadow rows queue through an outage (up to half the buffer), are written after it,
    counted as kind "shadow", ignore the prediction share and add no exposure."""
    store, holder = locked_sqlite
    log = _log(store, metrics, share=0.0, capacity=6)
    holder.execute("BEGIN EXCLUSIVE")
    for i in range(4):
        served = prediction(i)
        log.record_shadow(
            msgspec.structs.replace(
                served,
                prediction_id=served.prediction_id + "-shadow",
                model_version="challenger",
                shadow_of=served.prediction_id,
            )
        )
    assert await log.flush() is False
    assert log.pending == 3
    assert _count(registry, "scanopt_store_dropped_total", kind="shadow", reason="buffer_full") == 1
    holder.execute("ROLLBACK")
    assert await log.flush() is True
    rows = [await store.get_prediction(f"p{i:04d}-shadow") for i in range(4)]
    assert [r.shadow_of if r else None for r in rows] == ["p0000", "p0001", "p0002", None]
    assert _count(registry, "scanopt_store_log_written_total", kind="shadow") == 3
    assert _count(registry, "scanopt_store_log_written_total", kind="prediction") == 0
    assert await store.list_exposures("ml_scanning") == []


async def test_shadow_rows_never_crowd_out_served_rows(
    locked_sqlite: tuple[SqliteStore, sqlite3.Connection],
    metrics: StoreMetrics,
    registry: CollectorRegistry,
) -> None:
    """With the buffer half full of shadow rows, served rows still fill the other half."""
    store, holder = locked_sqlite
    log = _log(store, metrics, capacity=4)
    holder.execute("BEGIN EXCLUSIVE")
    for i in range(4):
        log.record_shadow(prediction(100 + i, prediction_id=f"s{i}", shadow_of=f"p{i:04d}"))
    for i in range(2):
        log.record(prediction(i))
    assert log.pending == 4
    assert _count(registry, "scanopt_store_dropped_total", kind="shadow", reason="buffer_full") == 2
    assert (
        _count(registry, "scanopt_store_dropped_total", kind="prediction", reason="buffer_full")
        == 0
    )


async def test_full_buffer_drops_new_rows_and_counts_them(
    locked_sqlite: tuple[SqliteStore, sqlite3.Connection],
    metrics: StoreMetrics,
    registry: CollectorRegistry,
) -> None:
    """The buffer is bounded: beyond capacity rows are dropped and counted, never blocking."""
    store, holder = locked_sqlite
    log = _log(store, metrics, capacity=3)
    holder.execute("BEGIN EXCLUSIVE")
    for i in range(5):
        log.record(prediction(i))
    assert log.pending == 3
    assert (
        _count(registry, "scanopt_store_dropped_total", kind="prediction", reason="buffer_full")
        == 2
    )
    holder.execute("ROLLBACK")
    await log.flush()
    assert len(await _logged(store, 5)) == 3


async def test_rows_left_at_shutdown_during_an_outage_are_counted(
    locked_sqlite: tuple[SqliteStore, sqlite3.Connection],
    metrics: StoreMetrics,
    registry: CollectorRegistry,
) -> None:
    """Stopping while the store is down loses the queue, and says how much."""
    store, holder = locked_sqlite
    log = _log(store, metrics)
    holder.execute("BEGIN EXCLUSIVE")
    log.record(prediction(1))
    await log.stop(timeout_s=1.0)
    assert (
        _count(registry, "scanopt_store_dropped_total", kind="prediction", reason="shutdown") == 1
    )
    assert _count(registry, "scanopt_store_dropped_total", kind="exposure", reason="shutdown") == 1


async def test_a_bad_row_is_dropped_alone(
    pg_dsn: str, metrics: StoreMetrics, registry: CollectorRegistry
) -> None:
    """A row PostgreSQL refuses (a NUL in text) is dropped and counted; its batch is kept."""
    store = store_from_dsn(pg_dsn, pool_size=4)
    await store.open()
    try:
        log = _log(store, metrics)
        log.record(prediction(1))
        log.record(prediction(2, session_id="bad\x00session"))
        log.record(prediction(3))
        assert await log.flush() is True
        assert await _logged(store, 4) == ["p0001", "p0003"]
        assert (
            _count(registry, "scanopt_store_dropped_total", kind="prediction", reason="rejected")
            == 1
        )
    finally:
        await store.close()


def test_share_must_be_a_probability(tmp_path: Path, metrics: StoreMetrics) -> None:
    """A sampling share outside [0, 1] is refused, naming the value."""
    with pytest.raises(ValueError, match=r"share=1\.5"):
        _log(store_from_dsn(f"sqlite:///{tmp_path}/x.db", pool_size=4), metrics, share=1.5)


class _HeldStore:
    """Wraps a store; each write_log waits until the test lets it go, and is counted."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def write_log(self, predictions: Any, exposures: Any) -> None:
        self.batches.append(len(predictions))
        self.entered.set()
        await self.release.wait()
        await self.inner.write_log(predictions, exposures)


async def test_rows_recorded_during_a_flush_wait_for_the_next_one(
    store: Store, metrics: StoreMetrics
) -> None:
    """A flush writes what was queued when it began; rows arriving during its writes wait
    for the next flush instead of trickling out one small transaction after another."""
    held = _HeldStore(store)
    log = _log(held, metrics, batch_size=4)  # type: ignore[arg-type]
    for i in range(6):
        log.record(prediction(i))
    flushing = asyncio.create_task(log.flush())
    await held.entered.wait()
    for i in range(6, 9):
        log.record(prediction(i))  # arrive while the first batch is being written
    held.release.set()
    assert await flushing is True
    assert held.batches == [4, 2]
    assert log.pending == 3
    assert await log.flush() is True
    assert held.batches == [4, 2, 3]
    assert len(await _logged(store, 9)) == 9
