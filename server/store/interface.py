"""The store interface every backend implements (SQLite embedded, PostgreSQL to scale out).

All methods are coroutines and never block the event loop: backends run their blocking
driver calls in a small thread pool. A method that returns has committed its write. When
the database cannot be reached, methods raise `StoreUnavailableError` and nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from server.domain.scan import Scan
from server.experiments.config import ExperimentConfig, ExperimentUpdate
from server.store.business import ArmBusiness, TimeColumn
from server.store.experiment_metrics import DEFAULT_PRE_WINDOW, ExperimentMetrics
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

__all__ = ["Store"]


class Store(Protocol):
    """Experiment config, exposures, the prediction log, events, feedback and rollups."""

    async def open(self) -> None:
        """Connect, apply pending migrations and create the default experiment (idempotent)."""
        ...

    async def close(self) -> None:
        """Release connections and threads; the store cannot be used afterwards."""
        ...

    async def schema_version(self) -> int: ...

    async def secret(self, name: str) -> bytes:
        """A random secret created once per database and shared by every replica."""
        ...

    async def list_experiments(self) -> list[ExperimentConfig]: ...

    async def get_experiment(self, name: str) -> ExperimentConfig:
        """The stored config, or ExperimentNotFoundError naming the known ones."""
        ...

    async def update_experiment(
        self, name: str, update: ExperimentUpdate, now: datetime
    ) -> ExperimentConfig:
        """Apply `update` atomically (no lost update between admins); the new config."""
        ...

    async def write_log(
        self, predictions: Sequence[PredictionRecord], exposures: Sequence[Exposure]
    ) -> None:
        """Write a batch of the prediction log and first exposures in one transaction."""
        ...

    async def get_prediction(self, prediction_id: str) -> PredictionRecord | None: ...

    async def list_exposures(self, experiment: str) -> list[Exposure]: ...

    async def record_event(self, event: Event, received_at: datetime) -> bool:
        """True when stored now, False for a retry of the same body; ConflictError otherwise."""
        ...

    async def list_events(self, since: datetime, until: datetime) -> list[EventRecord]: ...

    async def record_feedback(self, feedback: Feedback, received_at: datetime) -> bool:
        """True when stored now, False for a retry of the same body; ConflictError otherwise."""
        ...

    async def list_feedback(self, since: datetime, until: datetime) -> list[FeedbackRecord]: ...

    async def write_rollups(self, rollups: Sequence[MetricRollup]) -> None:
        """Merge one-minute metric rollups (counts and sums add, min and max widen)."""
        ...

    async def read_rollups(
        self, metric: str, since: datetime, until: datetime, step: timedelta | None = None
    ) -> list[MetricRollup]:
        """Rollups of `metric` per minute, or summed over slices of `step` from `since`."""
        ...

    async def usage(self, since: datetime, until: datetime) -> UsageReport: ...

    async def experiment_metrics(
        self,
        experiment: str,
        *,
        until: datetime | None = None,
        pre_window: timedelta = DEFAULT_PRE_WINDOW,
    ) -> ExperimentMetrics:
        """Each exposed user's sums for the analysis (server.store.experiment_metrics)."""
        ...

    # --- monitoring (server.store.monitoring) --------------------------------------------

    async def refresh_accuracy(self, since: datetime, until: datetime) -> int:
        """Recompute the accuracy rollups of the whole minutes in [since, until)."""
        ...

    async def accuracy(
        self, since: datetime, until: datetime, version: str | None = None
    ) -> list[AccuracySums]:
        """Accuracy sums per (version, arm) over the minutes in [since, until)."""
        ...

    async def labelled(
        self, version: str, since: datetime, until: datetime, limit: int
    ) -> list[tuple[Scan, int, float]]:
        """The newest labelled outcomes of `version`: (scan, result_count, duration_s)."""
        ...

    async def business(
        self, since: datetime, until: datetime, time_column: TimeColumn = "received_us"
    ) -> list[ArmBusiness]:
        """Business figures per arm (server.store.business)."""
        ...

    async def shadow_sums(
        self, since: datetime, until: datetime, shadow: str | None = None
    ) -> list[ShadowSums]:
        """Champion and shadow on the same labelled requests (server.store.shadow)."""
        ...

    async def add_drift_counts(
        self, counts: Sequence[DriftCount], flush_id: str | None = None
    ) -> bool:
        """Add one worker's drift bin counts (mergeable: counts add); with a `flush_id`,
        once: a flush sent again after a broken COMMIT returns False and adds nothing."""
        ...

    async def drift_counts(
        self, version: str, since: datetime, until: datetime
    ) -> dict[str, dict[int, int]]:
        """feature -> reference bin -> predictions of `version` in [since, until)."""
        ...

    async def drift_series(
        self, version: str, since: datetime, until: datetime, step: timedelta
    ) -> dict[datetime, dict[str, dict[int, int]]]:
        """slice start -> feature -> reference bin -> predictions, slices of `step` from
        `since`."""
        ...

    async def drift_thresholds(self, version: str, rows: int, method: str) -> str | None:
        """Drift thresholds (JSON) kept for `version` and windows of `rows` rows, or None."""
        ...

    async def keep_drift_thresholds(
        self, version: str, rows: int, method: str, thresholds: str
    ) -> None:
        """Keep calibrated thresholds for every worker and replica (first writer wins)."""
        ...

    async def record_importance(self, result: ImportanceResult) -> None: ...

    async def latest_importance(self, version: str) -> ImportanceResult | None: ...

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """True when `holder` holds the lease `name` (taken or renewed) for `ttl_s` from now."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete rollups, drift counts and importance results older than `before`."""
        ...
