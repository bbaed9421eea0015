"""The store-backed objects of one worker, started after fork and stopped at shutdown.

`StoreRuntime` owns the store connection, the experiment gate (cached configs), the
prediction log buffer and the prediction id issuer. The app creates it with the worker
and calls `start` in the worker's startup (connect, migrate, seed, load configs, start the
background writer and refresher) and `stop` at shutdown (flush the log, close).

`record` is what a predict handler calls after answering: O(1), never awaits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from server.domain.scan import Scan
from server.errors import NotReadyError
from server.experiments.gate import Decision, ExperimentGate
from server.experiments.metrics import GateMetrics
from server.store.buffer import PredictionLog
from server.store.interface import Store
from server.store.metrics import StoreMetrics
from server.store.prediction_ids import SECRET_NAME, PredictionIds
from server.store.records import PredictionRecord

__all__ = ["Predicted", "StoreRuntime"]


class _Interval(Protocol):
    @property
    def predicted(self) -> float: ...
    @property
    def lower(self) -> float: ...
    @property
    def upper(self) -> float: ...


class Predicted(Protocol):
    """What a served prediction carries (server.schemas.Prediction and Outcome do)."""

    @property
    def result_count(self) -> _Interval: ...
    @property
    def duration_s(self) -> _Interval: ...
    @property
    def p_empty(self) -> float: ...


class StoreRuntime:
    """Store, experiment gate, prediction log and id issuer of one worker."""

    def __init__(
        self,
        store: Store,
        metrics: StoreMetrics,
        gate_metrics: GateMetrics,
        *,
        experiment_cache_s: float = 2.0,
        log_share: float = 1.0,
        log_capacity: int = 50_000,
        log_batch_size: int = 500,
        log_flush_interval_s: float = 0.5,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.gate = ExperimentGate(store, gate_metrics, max_age_s=experiment_cache_s)
        self.log = PredictionLog(
            store,
            metrics,
            capacity=log_capacity,
            batch_size=log_batch_size,
            flush_interval_s=log_flush_interval_s,
            share=log_share,
        )
        self._ids: PredictionIds | None = None

    @property
    def ids(self) -> PredictionIds:
        """The prediction id issuer; NotReadyError before `start` read the shared secret."""
        if self._ids is None:
            raise NotReadyError("the store is not open yet: the worker is not ready")
        return self._ids

    async def start(self) -> None:
        """Open the store (migrations, default experiment), load configs, start writers."""
        await self.store.open()
        self._ids = PredictionIds(await self.store.secret(SECRET_NAME))
        await self.gate.start()
        self.log.start()

    async def stop(self) -> None:
        """Flush the prediction log, stop refreshing, close the store."""
        await self.log.stop()
        await self.gate.stop()
        await self.store.close()

    def record(
        self,
        *,
        scan: Scan,
        decision: Decision,
        prediction_id: str,
        endpoint: str,
        at: datetime,
        model_version: str | None,
        predicted: Predicted | None,
    ) -> None:
        """Queue the log row of one answered scan (predicted None: the model did not run)."""
        values: Sequence[float | None] = (None,) * 7
        if predicted is not None:
            count, duration = predicted.result_count, predicted.duration_s
            values = (
                count.predicted,
                count.lower,
                count.upper,
                duration.predicted,
                duration.lower,
                duration.upper,
                predicted.p_empty,
            )
        self.log.record(
            PredictionRecord(
                prediction_id=prediction_id,
                created_at=at,
                user_id=scan.user_id,
                session_id=scan.session_id,
                experiment=decision.experiment,
                arm=decision.arm,
                ml_enabled=decision.ml_enabled,
                endpoint=endpoint,
                model_version=model_version,
                scan=scan,
                result_count=values[0],
                result_count_lo=values[1],
                result_count_hi=values[2],
                duration_s=values[3],
                duration_s_lo=values[4],
                duration_s_hi=values[5],
                p_empty=values[6],
            )
        )
