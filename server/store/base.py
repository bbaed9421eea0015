"""The part of the store both SQL backends share: the thread pool, transactions, methods.

A backend supplies four sync hooks (connect, disconnect, a transaction yielding `Db`, and
the migration lock) and translates its driver's connection errors to `StoreUnavailableError`;
every method here is then the same code on SQLite and PostgreSQL.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from server.domain.scan import Scan
from server.errors import ExperimentNotFoundError, StoreUnavailableError
from server.experiments.config import (
    ExperimentConfig,
    ExperimentUpdate,
    apply_update,
    default_experiment,
)
from server.store import monitoring as mon
from server.store import operations as ops
from server.store import outcomes
from server.store import shadow as shadow_queries
from server.store import usage as usage_queries
from server.store.business import ArmBusiness, TimeColumn, business_by_arm
from server.store.experiment_metrics import (
    DEFAULT_PRE_WINDOW,
    ExperimentMetrics,
    select_experiment_metrics,
)
from server.store.group_commit import GroupCommit
from server.store.monitoring import AccuracySums, DriftCount, ImportanceResult
from server.store.records import (
    Event,
    EventRecord,
    Exposure,
    Feedback,
    FeedbackRecord,
    MetricRollup,
    PredictionRecord,
    UsageReport,
)
from server.store.shadow import ShadowSums
from server.store.sql import Db, to_us

__all__ = ["SqlStore"]

T = TypeVar("T")
# The row is locked while read for update; the version check is a second guard, and a
# retry covers the rare case where it still trips.
_UPDATE_ATTEMPTS: Final = 5


class SqlStore(abc.ABC):
    """Implements `Store` over a backend's sync DB-API driver, run in a thread pool."""

    backend: str

    def __init__(self, *, threads: int) -> None:
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        # Events and feedback, each acknowledged only once on disk, share COMMITs.
        self.group_commit = GroupCommit(lambda job: self._tx(job))

    # --- backend hooks (run in the pool's threads) ---------------------------------------

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _disconnect(self) -> None: ...

    @abc.abstractmethod
    def _transaction(
        self, *, write: bool, durable: bool = True
    ) -> contextlib.AbstractContextManager[Db]:
        """A transaction; `durable=False` lets the backend skip syncing it to disk at
        COMMIT (the batched prediction log, whose loss bound is stated anyway)."""

    @abc.abstractmethod
    def _lock_migrations(self, db: Db) -> None: ...

    # --- plumbing ----------------------------------------------------------------------------

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreUnavailableError(f"the {self.backend} store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _tx(self, fn: Callable[[Db], T], *, write: bool = True, durable: bool = True) -> T:
        def job() -> T:
            with self._transaction(write=write, durable=durable) as db:
                return fn(db)

        return await self._call(job)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="scanopt-store")
        self.group_commit = GroupCommit(lambda job: self._tx(job))
        try:
            await self._call(self._connect)
            now = datetime.now(UTC)

            def migrate(db: Db) -> None:
                self._lock_migrations(db)
                ops.apply_migrations(db, to_us(now))

            await self._tx(migrate)
            await self._tx(lambda db: ops.insert_experiment_if_absent(db, default_experiment(now)))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # Every job already handed to the pool finishes first, including a write whose
        # caller was cancelled (the prediction log's writer at shutdown): the thread goes
        # on stepping its statement. Closing the connections under it made the next
        # statement fail, and closing a sqlite3 connection another thread was stepping
        # crashed the worker (SIGSEGV, found driving the app in process at shutdown).
        await asyncio.to_thread(executor.shutdown, wait=True)
        await asyncio.to_thread(self._disconnect)

    async def schema_version(self) -> int:
        return await self._tx(ops.schema_version, write=False)

    async def secret(self, name: str) -> bytes:
        candidate = secrets.token_hex(32)
        return bytes.fromhex(await self._tx(lambda db: ops.ensure_secret(db, name, candidate)))

    # --- experiments ---------------------------------------------------------------------------

    async def list_experiments(self) -> list[ExperimentConfig]:
        return await self._tx(ops.select_experiments, write=False)

    async def get_experiment(self, name: str) -> ExperimentConfig:
        return await self._tx(lambda db: _require(db, name), write=False)

    async def update_experiment(
        self, name: str, update: ExperimentUpdate, now: datetime
    ) -> ExperimentConfig:
        def attempt(db: Db) -> ExperimentConfig | None:
            current = _require(db, name, for_update=True)
            changed = apply_update(current, update, now)
            return changed if ops.replace_experiment(db, changed, current.version) else None

        for _ in range(_UPDATE_ATTEMPTS):
            result = await self._tx(attempt)
            if result is not None:
                return result
        raise StoreUnavailableError(
            f"experiment {name!r} kept changing under {_UPDATE_ATTEMPTS} attempts; retry"
        )

    # --- prediction log ----------------------------------------------------------------------

    async def write_log(
        self, predictions: Sequence[PredictionRecord], exposures: Sequence[Exposure]
    ) -> None:
        def write(db: Db) -> None:
            if predictions:
                ops.insert_predictions(db, list(predictions))
            if exposures:
                ops.upsert_exposures(db, list(exposures))

        # Nobody was told these rows are stored: a batch may wait SCANOPT_PREDICTION_LOG_FLUSH_S
        # in memory first, so syncing its COMMIT buys little (SqliteStore._transaction).
        await self._tx(write, durable=False)

    async def get_prediction(self, prediction_id: str) -> PredictionRecord | None:
        return await self._tx(lambda db: ops.select_prediction(db, prediction_id), write=False)

    async def list_exposures(self, experiment: str) -> list[Exposure]:
        return await self._tx(lambda db: ops.select_exposures(db, experiment), write=False)

    # --- events and feedback -------------------------------------------------------------------

    async def record_event(self, event: Event, received_at: datetime) -> bool:
        received_us = to_us(received_at)
        inserted: bool = await self.group_commit.submit(
            lambda db: outcomes.insert_event(db, event, received_us)
        )
        return inserted

    async def list_events(self, since: datetime, until: datetime) -> list[EventRecord]:
        window = (to_us(since), to_us(until))
        return await self._tx(lambda db: outcomes.select_events(db, *window), write=False)

    async def record_feedback(self, feedback: Feedback, received_at: datetime) -> bool:
        received_us = to_us(received_at)
        inserted: bool = await self.group_commit.submit(
            lambda db: outcomes.insert_feedback(db, feedback, received_us)
        )
        return inserted

    async def list_feedback(self, since: datetime, until: datetime) -> list[FeedbackRecord]:
        window = (to_us(since), to_us(until))
        return await self._tx(lambda db: outcomes.select_feedback(db, *window), write=False)

    # --- rollups and analytics -------------------------------------------------------------------

    async def write_rollups(self, rollups: Sequence[MetricRollup]) -> None:
        await self._tx(lambda db: ops.upsert_rollups(db, list(rollups)))

    async def read_rollups(
        self, metric: str, since: datetime, until: datetime, step: timedelta | None = None
    ) -> list[MetricRollup]:
        window = (to_us(since), to_us(until))
        step_us = None if step is None else round(step.total_seconds() * 1e6)
        return await self._tx(
            lambda db: ops.select_rollups(db, metric, *window, step_us), write=False
        )

    async def usage(self, since: datetime, until: datetime) -> UsageReport:
        return await self._tx(lambda db: usage_queries.usage_report(db, since, until), write=False)

    async def experiment_metrics(
        self,
        experiment: str,
        *,
        until: datetime | None = None,
        pre_window: timedelta = DEFAULT_PRE_WINDOW,
    ) -> ExperimentMetrics:
        def select(db: Db) -> ExperimentMetrics:
            return select_experiment_metrics(db, experiment, until=until, pre_window=pre_window)

        return await self._tx(select, write=False)

    # --- monitoring ------------------------------------------------------------------------------

    async def refresh_accuracy(self, since: datetime, until: datetime) -> int:
        window = (_minute(since), _minute(until))
        return await self._tx(lambda db: mon.refresh_accuracy(db, *window))

    async def accuracy(
        self, since: datetime, until: datetime, version: str | None = None
    ) -> list[AccuracySums]:
        window = (to_us(since), to_us(until))
        return await self._tx(lambda db: mon.select_accuracy(db, *window, version), write=False)

    async def labelled(
        self, version: str, since: datetime, until: datetime, limit: int
    ) -> list[tuple[Scan, int, float]]:
        window = (to_us(since), to_us(until))
        return await self._tx(
            lambda db: mon.select_labelled(db, version, *window, limit), write=False
        )

    async def business(
        self, since: datetime, until: datetime, time_column: TimeColumn = "received_us"
    ) -> list[ArmBusiness]:
        window = (to_us(since), to_us(until))
        return await self._tx(lambda db: business_by_arm(db, *window, time_column), write=False)

    async def shadow_sums(
        self, since: datetime, until: datetime, shadow: str | None = None
    ) -> list[ShadowSums]:
        window = (to_us(since), to_us(until))
        return await self._tx(
            lambda db: shadow_queries.select_shadow_sums(db, *window, shadow), write=False
        )

    async def add_drift_counts(
        self, counts: Sequence[DriftCount], flush_id: str | None = None
    ) -> bool:
        at_us = to_us(datetime.now(UTC))
        return await self._tx(lambda db: mon.add_drift_counts(db, list(counts), flush_id, at_us))

    async def drift_counts(
        self, version: str, since: datetime, until: datetime
    ) -> dict[str, dict[int, int]]:
        window = (to_us(since), to_us(until))
        return await self._tx(lambda db: mon.select_drift_counts(db, version, *window), write=False)

    async def drift_series(
        self, version: str, since: datetime, until: datetime, step: timedelta
    ) -> dict[datetime, dict[str, dict[int, int]]]:
        window = (to_us(since), to_us(until))
        step_us = round(step.total_seconds() * 1e6)
        return await self._tx(
            lambda db: mon.select_drift_series(db, version, *window, step_us), write=False
        )

    async def drift_thresholds(self, version: str, rows: int, method: str) -> str | None:
        return await self._tx(
            lambda db: mon.select_thresholds(db, version, rows, method), write=False
        )

    async def keep_drift_thresholds(
        self, version: str, rows: int, method: str, thresholds: str
    ) -> None:
        await self._tx(lambda db: mon.insert_thresholds(db, version, rows, method, thresholds))

    async def record_importance(self, result: ImportanceResult) -> None:
        await self._tx(lambda db: mon.insert_importance(db, result))

    async def latest_importance(self, version: str) -> ImportanceResult | None:
        return await self._tx(lambda db: mon.select_importance(db, version), write=False)

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        ttl_us = round(ttl_s * 1e6)
        return await self._tx(lambda db: mon.acquire_lease(db, name, holder, to_us(now), ttl_us))

    async def prune(self, before: datetime) -> int:
        return await self._tx(lambda db: mon.prune_before(db, to_us(before)))


def _minute(moment: datetime) -> int:
    return to_us(moment) // mon.MINUTE_US * mon.MINUTE_US


def _require(db: Db, name: str, *, for_update: bool = False) -> ExperimentConfig:
    config = ops.select_experiment(db, name, for_update=for_update)
    if config is None:
        known = [c.name for c in ops.select_experiments(db)]
        raise ExperimentNotFoundError(name, known)
    return config
