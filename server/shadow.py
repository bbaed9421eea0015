"""Shadow scoring: a challenger version scores answered scans off the request path.

With SCANOPT_SHADOW_VERSION set, each worker loads that version beside the one it serves
(verified exactly like a served version: manifest, feature spec, checksums, signature,
warm-up) and registers a `ShadowScorer` as a data plane observer. For every answered
scan the model ran on, the observer keeps a `SCANOPT_SHADOW_SHARE` at random and appends
it to a bounded queue (O(1), on the event loop, after the prediction log row is queued):
the answer is already built and is neither delayed by more than that append nor changed.
A background task on the worker's event loop takes the queue in batches of
`SHADOW_BATCH` (waiting `LINGER_S` after a scan arrives, so a busy worker makes few runs of
many rows rather than many of one) and scores each batch between requests: encoding, one
onnxruntime run, the rows, then it yields to the loop before the next batch. So a request
that arrives meanwhile waits for at most one batch (16 scans: 0.25 to 2.8 ms measured on
a loaded machine), and no thread competes with the loop for the GIL: with the scoring on
a thread of its own, `just bench-shadow` saw the shadow rounds' median latency at 2 to 3
times plain's in most rounds on the oversubscribed machine. Each row goes to the
prediction log's buffered, retrying writer (`PredictionLog.record_shadow`) as a shadow
row: the shadow's version, its outputs, and `shadow_of` = the served prediction's id.

When the queue holds SCANOPT_SHADOW_QUEUE scans, a new one is dropped and counted
(`scanopt_shadow_dropped_total{reason="queue_full"}`); the answer is never dropped. A
worker whose shadow version fails to load logs it and serves on without a shadow
(`python -m server.serve` refuses such a version before any worker starts).

    scanopt_shadow_scored_total{version}    scans the shadow version scored
    scanopt_shadow_dropped_total{reason}    sampled scans not scored (queue_full, failed,
                                            shutdown)
    scanopt_shadow_queue                    scans waiting at the last batch, summed over
                                            live workers
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Final

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from server.dataplane import Served
from server.errors import ArtifactError
from server.inference.clock import served_row
from server.inference.model import LoadedModel
from server.store.buffer import PredictionLog
from server.store.records import PredictionRecord

__all__ = ["LINGER_S", "SHADOW_BATCH", "ShadowScorer", "shadow_id", "shadow_rows"]

_LOG = logging.getLogger(__name__)
# Most scans per shadow run: large enough to amortise a run, small enough that a request
# arriving meanwhile waits little (the predictor runs up to 32 rows inline too).
SHADOW_BATCH: Final = 16
# After the first scan arrives the task waits this long for company: nobody waits for a
# shadow row, and one run of many rows costs far less CPU (hand-offs, wake-ups) than many
# runs of one, CPU the answers share.
LINGER_S: Final = 0.05
_SUFFIX: Final = "-shadow"


def shadow_id(prediction_id: str) -> str:
    """The shadow row's own id: never an issued id, so no client can cite it."""
    return prediction_id + _SUFFIX


class ShadowScorer:
    """Scores a share of answered scans with a challenger, after they were answered."""

    def __init__(
        self,
        version: str,
        log: PredictionLog,
        registry: CollectorRegistry,
        *,
        load: Callable[[], LoadedModel],
        share: float,
        capacity: int,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share={share!r}: expected a number from 0 to 1")
        self.version = version
        self.share = share
        self._log = log
        self._load = load
        self._capacity = capacity
        self._rng = rng
        self._model: LoadedModel | None = None
        self._queue: deque[Served] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.scored = Counter(
            "scanopt_shadow_scored",
            "Answered scans the shadow version scored after the answer was sent.",
            ["version"],
            registry=registry,
        )
        self.dropped = Counter(
            "scanopt_shadow_dropped",
            "Sampled scans the shadow version did not score, by reason (queue_full, failed, "
            "shutdown).",
            ["reason"],
            registry=registry,
        )
        self.waiting = Gauge(
            "scanopt_shadow_queue",
            "Scans waiting for the shadow version at its last batch, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )

    @property
    def ready(self) -> bool:
        """True once the shadow version is loaded and warmed in this worker."""
        return self._model is not None

    @property
    def pending(self) -> int:
        """Scans waiting for the shadow version."""
        return len(self._queue)

    def __call__(self, served: Served) -> None:
        """The observer: sample and queue one answered scan; O(1), never blocks or raises."""
        if self._model is None or served.predicted is None:
            return
        if self.share < 1.0 and self._rng() >= self.share:
            return
        if len(self._queue) >= self._capacity:
            self.dropped.labels("queue_full").inc()
            return
        self._queue.append(served)
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def start(self) -> None:
        """Load and warm the shadow version off the loop, then start scoring."""
        try:
            self._model = await asyncio.to_thread(self._load)
        except ArtifactError as exc:
            _LOG.error(
                "shadow version refused; serving without a shadow",
                extra={"fields": {"shadow_version": self.version, "reason": exc.message}},
            )
            return
        _LOG.info(
            "shadow version loaded",
            extra={"fields": {"shadow_version": self.version, "share": self.share}},
        )
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Score what is queued (for up to 2 s) and count what is left as dropped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=2.0)
        if self._queue:
            self.dropped.labels("shutdown").inc(len(self._queue))
            self._queue.clear()
        self.waiting.set(0)

    async def drain(self) -> None:
        """Score everything queued now (the background task does this by itself)."""
        while self._queue:
            # Set per batch, not per scan: the observer on the request path stays one append.
            self.waiting.set(len(self._queue))
            batch = [self._queue.popleft() for _ in range(min(SHADOW_BATCH, len(self._queue)))]
            self._score(batch)
            await asyncio.sleep(0)  # let waiting requests run before the next batch
        self.waiting.set(0)

    def _score(self, batch: list[Served]) -> None:
        model = self._model
        if model is None:
            return
        try:
            rows = shadow_rows(model, batch)
        except Exception:  # a failing shadow never touches serving: log, count, go on
            _LOG.exception("shadow scoring failed on %d scans", len(batch))
            self.dropped.labels("failed").inc(len(batch))
            return
        for row in rows:
            self._log.record_shadow(row)
        self.scored.labels(model.version).inc(len(rows))

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(LINGER_S)
            self._wakeup.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the scorer die
                _LOG.exception("shadow scoring crashed")


def shadow_rows(model: LoadedModel, batch: list[Served]) -> list[PredictionRecord]:
    """Encode, run and turn a batch into shadow rows."""
    features = np.stack([served_row(s.scan, s.at) for s in batch])
    outputs = [out.tolist() for out in model.run(features)]
    rows = []
    for served, (count, count_lo, count_hi, dur, dur_lo, dur_hi, p_empty) in zip(
        batch, zip(*outputs, strict=True), strict=True
    ):
        scan, decision = served.scan, served.decision
        rows.append(
            PredictionRecord(
                prediction_id=shadow_id(served.prediction_id),
                created_at=served.at,
                user_id=scan.user_id,
                session_id=scan.session_id,
                experiment=decision.experiment,
                arm=decision.arm,
                ml_enabled=decision.ml_enabled,
                endpoint=served.endpoint,
                model_version=model.version,
                scan=scan,
                result_count=count,
                result_count_lo=count_lo,
                result_count_hi=count_hi,
                duration_s=dur,
                duration_s_lo=dur_lo,
                duration_s_hi=dur_hi,
                p_empty=p_empty,
                shadow_of=served.prediction_id,
            )
        )
    return rows
