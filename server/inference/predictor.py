"""The predictor: the one place a worker turns scans into predictions.

It holds a single reference to the `LoadedModel` in service. Every request reads that
reference once and finishes on what it read, so a hot reload (build, verify and warm the
new version off the event loop, then swap the reference) never disturbs requests in
flight, and a version that fails verification never replaces the one serving.

Small inputs run inline on the event loop: one row costs microseconds, less than a thread
hand-off. Batches above `INLINE_MAX_ROWS` run on a worker thread (onnxruntime releases
the GIL). With SCANOPT_BATCHER on, single scans go through the micro-batcher instead.

Benchmarks call `predict_one` directly: it is the whole in-process path (encode, cache,
one run, response struct). Rows are encoded as served (server.inference.clock: the time
of day to the minute), so the cache hits for the same scan within a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Final

from server.domain.artifact import confidence_score
from server.domain.scan import Scan
from server.errors import NotReadyError
from server.inference.batcher import MicroBatcher
from server.inference.cache import RowValues
from server.inference.clock import served_matrix, served_row
from server.inference.model import Features, LoadedModel, Outputs, load_model
from server.monitoring.counts import DriftCounter
from server.monitoring.metrics import Metrics
from server.schemas import Interval, Outcome, Prediction
from server.settings import Settings

__all__ = ["INLINE_MAX_ROWS", "Predictor", "outcome_of"]

# Above this many rows a run goes to a thread; below, the hand-off costs more than the run.
INLINE_MAX_ROWS: Final = 32
_THREADS: Final = 2


class Predictor:
    """Loads, swaps and runs model versions for one worker process."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._model: LoadedModel | None = None
        self._executor = ThreadPoolExecutor(_THREADS, thread_name_prefix="scanopt-infer")
        self._batcher: MicroBatcher[LoadedModel] | None = None
        if settings.batcher:
            self._batcher = MicroBatcher(
                self._run_current,
                max_size=settings.batch_max_size,
                max_wait_s=settings.batch_max_wait_us / 1e6,
                executor=self._executor,
            )
        self._reload_lock = asyncio.Lock()
        # Set by the worker: every served scan's features and outputs, for drift.
        self.drift: DriftCounter | None = None

    # -- the model in service -------------------------------------------------------------

    @property
    def model(self) -> LoadedModel:
        """The version in service; NotReadyError before the first successful load."""
        model = self._model
        if model is None:
            raise NotReadyError("no model version is loaded yet: the worker is not ready")
        return model

    @property
    def ready(self) -> bool:
        """True once a version is loaded and warmed."""
        return self._model is not None

    def load(self, version: str | None = None) -> LoadedModel:
        """Build, verify and warm a version (default: artifacts/current) without serving it."""
        return load_model(
            self._settings.artifacts,
            intra_op_threads=self._settings.intra_op_threads,
            cache_size=self._settings.cache_size,
            version=version,
        )

    def install(self, model: LoadedModel) -> LoadedModel | None:
        """Serve `model` from now on (one reference swap); returns the version it replaced."""
        previous = self._model
        self._model = model
        self._metrics.serving(
            model.version,
            model.sha256,
            None if previous is None else (previous.version, previous.sha256),
        )
        return previous

    async def reload(self) -> tuple[LoadedModel, LoadedModel | None]:
        """Load artifacts/current off the loop and swap it in; ArtifactError keeps the old."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(self._executor, self.load)
            return model, self.install(model)

    async def close(self) -> None:
        """Finish queued work and release the threads."""
        if self._batcher is not None:
            await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- predictions ----------------------------------------------------------------------

    def predict_one(self, scan: Scan, now: datetime | None = None) -> Prediction:
        """One scan, inline: encode, cache or one run, response."""
        model = self.model
        row = served_row(scan, now)
        key = row.tobytes()
        values = self._cache_get(model, key)
        if values is None:
            outputs = self._timed_run(model, row.reshape(1, -1))
            values = tuple(float(out[0]) for out in outputs)
            model.cache.put(key, values)
        self._metrics.predicted(model.version)
        if self.drift is not None:
            self.drift.observe_row(model.version, row, values)
        return self._prediction(model, values)

    async def predict(self, scan: Scan) -> Prediction:
        """One scan: through the micro-batcher when it is on, inline otherwise."""
        if self._batcher is None:
            return self.predict_one(scan)
        model = self.model
        row = served_row(scan)
        key = row.tobytes()
        values = self._cache_get(model, key)
        if values is None:
            model, values = await self._batcher.submit(row)
            model.cache.put(key, values)
        self._metrics.predicted(model.version)
        if self.drift is not None:
            self.drift.observe_row(model.version, row, values)
        return self._prediction(model, values)

    async def predict_many(self, scans: Sequence[Scan]) -> tuple[str, list[Prediction]]:
        """Many scans in one run (off the loop when large); (model version, predictions)."""
        features = served_matrix(scans, datetime.now(UTC))
        model, outputs = await self.run(features)
        columns = [out.tolist() for out in outputs]
        self._metrics.predicted(model.version, len(features))
        if self.drift is not None:
            self.drift.observe_batch(model.version, features, outputs)
        return model.version, [self._prediction(model, v) for v in zip(*columns, strict=True)]

    async def infer(self, features: Features) -> tuple[LoadedModel, Outputs]:
        """`run`, counted as predictions (the V2 protocol's raw-tensor path)."""
        model, outputs = await self.run(features)
        self._metrics.predicted(model.version, len(features))
        return model, outputs

    async def run(self, features: Features) -> tuple[LoadedModel, Outputs]:
        """Every output for a feature matrix, on one version; a thread above INLINE_MAX_ROWS."""
        if len(features) <= INLINE_MAX_ROWS:
            return self._run_current(features)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_current, features)

    # -- internals ------------------------------------------------------------------------

    def _run_current(self, features: Features) -> tuple[LoadedModel, Outputs]:
        model = self.model
        return model, self._timed_run(model, features)

    def _timed_run(self, model: LoadedModel, features: Features) -> Outputs:
        started = time.perf_counter()
        outputs = model.run(features)
        self._metrics.observe_run(model.version, time.perf_counter() - started, len(features))
        return outputs

    def _cache_get(self, model: LoadedModel, key: bytes) -> RowValues | None:
        if model.cache.capacity <= 0:
            return None
        values = model.cache.get(key)
        if values is None:
            self._metrics.cache_misses.inc()
        else:
            self._metrics.cache_hits.inc()
        return values

    @staticmethod
    def _prediction(model: LoadedModel, values: RowValues) -> Prediction:
        outcome = outcome_of(values)
        return Prediction(
            model_version=model.version,
            result_count=outcome.result_count,
            duration_s=outcome.duration_s,
            p_empty=outcome.p_empty,
            confidence=outcome.confidence,
        )


def outcome_of(values: RowValues) -> Outcome:
    """The wire outcome of one row's model outputs (MODEL_OUTPUTS order)."""
    count, count_lo, count_hi, dur, dur_lo, dur_hi, p_empty = values
    return Outcome(
        result_count=Interval(predicted=count, lower=count_lo, upper=count_hi),
        duration_s=Interval(predicted=dur, lower=dur_lo, upper=dur_hi),
        p_empty=p_empty,
        confidence=confidence_score(count, count_lo, count_hi, dur, dur_lo, dur_hi),
    )
