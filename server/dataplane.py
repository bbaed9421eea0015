"""The data plane: decide -> predict -> record -> answer, one method per endpoint, no HTTP.

Routes decode a body, call one method here and encode what it returns; everything a
prediction request does happens in this module, in this order:

1. **decide**: the experiment gate gives the scan's user an arm (server.experiments.gate):
   treatment users get ML content, control users and users outside the rollout get a
   prediction id and their decision only (the scanner runs its standard flow); with the
   kill switch on nobody gets ML.
2. **predict**: the model runs for every user inside the experiment, control included
   (cheap), so control scans are logged with what the model would have said; users
   outside the rollout cost no model run, which keeps a gradual re-enable gradual.
   /v1/recommend runs its neighbour search for treatment users only.
3. **record**: each answered scan becomes one `Served` and goes to the prediction log
   (queued, never awaited; the log adds the user's first exposure) and then to every
   observer, in the order they were added.
4. **answer**: the wire struct, ML content only when ML is on for the user.

The hook for monitoring and shadow scoring is `DataPlane.observe(observer)`: an
`Observer` gets every `Served` right after the prediction log, on the event loop, with the
scan, the decision, the prediction id, the endpoint, the time, the model version and the
outputs (None when the model did not run). It must return at once (count, or queue work
for a task of its own) and never raise into the request: `record` logs and counts an
observer's exception (`scanopt_errors_total{kind="observer"}`) and carries on, so a
broken monitor never costs an answer. A shadow model scoring the same scan fits that
shape. Drift counting does not use it: it needs the encoded feature row, which only the
predictor holds, so the predictor keeps it (server.monitoring.counts), and the online
accuracy join reads the prediction log in the store.

Counted here: `scanopt_predictions_total` rises by one per scan the model answered, on
every endpoint (a recommendation counts its scan once, not the neighbours it scored).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from server.domain.scan import Scan
from server.errors import InputError
from server.experiments.gate import Decision, ExperimentGate
from server.inference.predictor import Predictor
from server.inference.recommend import recommend
from server.monitoring.metrics import Metrics
from server.schemas import (
    BatchResponse,
    Outcome,
    PredictAnswer,
    Prediction,
    RecommendAnswer,
    RecommendRequest,
)
from server.store.buffer import PredictionLog
from server.store.prediction_ids import PredictionIds
from server.store.records import PredictionRecord

__all__ = ["DataPlane", "Observer", "Served", "answer_of", "log_record"]

_LOG = logging.getLogger(__name__)


class Served(msgspec.Struct, frozen=True, kw_only=True):
    """One answered scan, as the record step hands it to the log and the observers."""

    scan: Scan
    decision: Decision
    prediction_id: str
    endpoint: str  # "predict", "batch" or "recommend"
    at: datetime
    model_version: str | None
    predicted: Prediction | Outcome | None  # None: the model did not run for this scan


class Observer(Protocol):
    """Sees every answered scan after the prediction log; O(1), must not block."""

    def __call__(self, served: Served) -> None: ...


def answer_of(
    prediction_id: str, decision: Decision, prediction: Prediction | None
) -> PredictAnswer:
    """The wire answer: ML content only when ML is on for this user."""
    if prediction is None or not decision.ml_enabled:
        return PredictAnswer(prediction_id=prediction_id, arm=decision.arm, ml_enabled=False)
    return PredictAnswer(
        prediction_id=prediction_id,
        arm=decision.arm,
        ml_enabled=True,
        model_version=prediction.model_version,
        result_count=prediction.result_count,
        duration_s=prediction.duration_s,
        p_empty=prediction.p_empty,
        confidence=prediction.confidence,
    )


def log_record(served: Served) -> PredictionRecord:
    """The prediction log row of one answered scan (prediction columns None without a run)."""
    scan, decision, predicted = served.scan, served.decision, served.predicted
    count = None if predicted is None else predicted.result_count
    duration = None if predicted is None else predicted.duration_s
    return PredictionRecord(
        prediction_id=served.prediction_id,
        created_at=served.at,
        user_id=scan.user_id,
        session_id=scan.session_id,
        experiment=decision.experiment,
        arm=decision.arm,
        ml_enabled=decision.ml_enabled,
        endpoint=served.endpoint,
        model_version=served.model_version,
        scan=scan,
        result_count=None if count is None else count.predicted,
        result_count_lo=None if count is None else count.lower,
        result_count_hi=None if count is None else count.upper,
        duration_s=None if duration is None else duration.predicted,
        duration_s_lo=None if duration is None else duration.lower,
        duration_s_hi=None if duration is None else duration.upper,
        p_empty=None if predicted is None else predicted.p_empty,
    )


class DataPlane:
    """Decide, predict, record and answer for /v1/predict, /v1/predict/batch, /v1/recommend."""

    def __init__(
        self,
        predictor: Predictor,
        gate: ExperimentGate,
        log: PredictionLog,
        ids: PredictionIds,
        metrics: Metrics,
        *,
        max_batch: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._predictor = predictor
        self._gate = gate
        self._log = log
        self._ids = ids
        self._metrics = metrics
        self._max_batch = max_batch
        self._clock = clock
        self._observers: list[Observer] = []

    def observe(self, observer: Observer) -> None:
        """Hand every answered scan to `observer` too, after the prediction log."""
        self._observers.append(observer)

    async def predict(self, scan: Scan) -> PredictAnswer:
        """One scan: gated, predicted when its user is in the experiment, recorded."""
        decision = self._gate.decide(scan.user_id)
        prediction = await self._predictor.predict(scan) if decision.arm is not None else None
        prediction_id = self._record(scan, decision, "predict", prediction)
        return answer_of(prediction_id, decision, prediction)

    async def predict_batch(self, scans: Sequence[Scan]) -> BatchResponse:
        """Up to `max_batch` scans in one model run, each gated for its own user."""
        if len(scans) > self._max_batch:
            raise InputError(
                f"scans: {len(scans)} scans, expected at most {self._max_batch} per call",
                field="scans",
            )
        decisions = [self._gate.decide(scan.user_id) for scan in scans]
        inside = [scan for scan, d in zip(scans, decisions, strict=True) if d.arm is not None]
        version, predicted = await self._predictor.predict_many(inside) if inside else (None, [])
        ran = iter(predicted)
        answers = []
        for scan, decision in zip(scans, decisions, strict=True):
            prediction = next(ran) if decision.arm is not None else None
            prediction_id = self._record(scan, decision, "batch", prediction)
            answers.append(answer_of(prediction_id, decision, prediction))
        return BatchResponse(predictions=answers, model_version=version)

    async def recommend(self, request: RecommendRequest) -> RecommendAnswer:
        """Suggestions for treatment users; the others get what /v1/predict would log."""
        scan = request.scan
        decision = self._gate.decide(scan.user_id)
        if not decision.ml_enabled:
            # Control still logs what the model would say, without the costly search.
            base = await self._predictor.predict(scan) if decision.arm is not None else None
            prediction_id = self._record(scan, decision, "recommend", base)
            return RecommendAnswer(prediction_id=prediction_id, arm=decision.arm, ml_enabled=False)
        found = await recommend(self._predictor, request)
        self._metrics.predicted(found.model_version)
        prediction_id = self._record(
            scan, decision, "recommend", found.current, model_version=found.model_version
        )
        return RecommendAnswer(
            prediction_id=prediction_id,
            arm=decision.arm,
            ml_enabled=True,
            **msgspec.structs.asdict(found),
        )

    def _record(
        self,
        scan: Scan,
        decision: Decision,
        endpoint: str,
        predicted: Prediction | Outcome | None,
        *,
        model_version: str | None = None,
    ) -> str:
        """Issue the id, queue the log row, tell the observers; returns the id."""
        if isinstance(predicted, Prediction):
            model_version = predicted.model_version
        served = Served(
            scan=scan,
            decision=decision,
            prediction_id=self._ids.new(),
            endpoint=endpoint,
            at=self._clock(),
            model_version=model_version,
            predicted=predicted,
        )
        self._log.record(log_record(served))
        for observer in self._observers:
            try:
                observer(served)
            except Exception:  # a broken monitor never costs an answer
                self._metrics.errors.labels("observer").inc()
                _LOG.exception(
                    "observer %r failed on prediction %s", observer, served.prediction_id
                )
        return served.prediction_id
