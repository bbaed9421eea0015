"""POST /v1/predict, /v1/predict/batch and /v1/recommend, gated by the A/B experiment.

Each scan's user gets a decision from the experiment gate (server.experiments.gate):
treatment users get the ML content, control users and users outside the rollout get
only a prediction id and their decision (the scanner runs its standard flow), and with
the kill switch on nobody gets ML and the model is not run at all. The model still runs
for control users (cheap) so their scans are logged with what it would have said; users
outside the rollout do not cost a model run, which keeps a gradual re-enable gradual.
Every answer is queued for the prediction log (never awaited), with the first exposure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler

from server.domain.scan import Scan
from server.errors import InputError
from server.experiments.gate import Decision
from server.inference.predictor import Predictor
from server.inference.recommend import recommend as recommend_scans
from server.schemas import (
    BatchRequest,
    BatchResponse,
    PredictAnswer,
    Prediction,
    RecommendAnswer,
    RecommendRequest,
    decode_body,
)
from server.settings import Settings
from server.store.runtime import StoreRuntime

__all__ = ["answer_of", "routes"]

_SCAN = msgspec.json.Decoder(Scan)
_BATCH = msgspec.json.Decoder(BatchRequest)
_RECOMMEND = msgspec.json.Decoder(RecommendRequest)


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


def routes(
    settings: Settings, predictor: Predictor, runtime: StoreRuntime
) -> list[HTTPRouteHandler]:
    """The prediction handlers, bound to this worker's predictor and store runtime."""
    max_batch = settings.max_batch

    def answer(
        scan: Scan, decision: Decision, prediction: Prediction | None, endpoint: str
    ) -> PredictAnswer:
        prediction_id = runtime.ids.new()
        runtime.record(
            scan=scan,
            decision=decision,
            prediction_id=prediction_id,
            endpoint=endpoint,
            at=datetime.now(UTC),
            model_version=None if prediction is None else prediction.model_version,
            predicted=prediction,
        )
        return answer_of(prediction_id, decision, prediction)

    @post("/v1/predict", status_code=200, opt={"body": Scan}, tags=["predict"])
    async def predict(request: Request[Any, Any, Any]) -> PredictAnswer:
        """Predict one scan's result count, duration (90% intervals) and p_empty, for users
        the experiment gives ML to; always the arm, ml_enabled and a prediction id."""
        scan = decode_body(_SCAN, await request.body())
        decision = runtime.gate.decide(scan.user_id)
        prediction = await predictor.predict(scan) if decision.arm is not None else None
        return answer(scan, decision, prediction, "predict")

    @post("/v1/predict/batch", status_code=200, opt={"body": BatchRequest}, tags=["predict"])
    async def predict_batch(request: Request[Any, Any, Any]) -> BatchResponse:
        """Predict up to SCANOPT_MAX_BATCH scans in one onnxruntime run, each gated for its
        own user as /v1/predict is."""
        batch = decode_body(_BATCH, await request.body())
        if len(batch.scans) > max_batch:
            raise InputError(
                f"scans: {len(batch.scans)} scans, expected at most {max_batch} per call",
                field="scans",
            )
        decisions = [runtime.gate.decide(scan.user_id) for scan in batch.scans]
        inside = [scan for scan, d in zip(batch.scans, decisions, strict=True) if d.arm is not None]
        version, predicted = await predictor.predict_many(inside) if inside else (None, [])
        ran = iter(predicted)
        answers = [
            answer(scan, d, next(ran) if d.arm is not None else None, "batch")
            for scan, d in zip(batch.scans, decisions, strict=True)
        ]
        return BatchResponse(predictions=answers, model_version=version)

    @post("/v1/recommend", status_code=200, opt={"body": RecommendRequest}, tags=["predict"])
    async def recommend(request: Request[Any, Any, Any]) -> RecommendAnswer:
        """Suggest small parameter changes that land the scan in the desired result range
        (treatment users); others get the arm, ml_enabled and a prediction id."""
        wanted = decode_body(_RECOMMEND, await request.body())
        decision = runtime.gate.decide(wanted.scan.user_id)
        if not decision.ml_enabled:
            # Control still logs what the model would say, without the costly search.
            base = await predictor.predict(wanted.scan) if decision.arm is not None else None
            gated = answer(wanted.scan, decision, base, "recommend")
            return RecommendAnswer(
                prediction_id=gated.prediction_id, arm=gated.arm, ml_enabled=False
            )
        found = await recommend_scans(predictor, wanted)
        prediction_id = runtime.ids.new()
        runtime.record(
            scan=wanted.scan,
            decision=decision,
            prediction_id=prediction_id,
            endpoint="recommend",
            at=datetime.now(UTC),
            model_version=found.model_version,
            predicted=found.current,
        )
        return RecommendAnswer(
            prediction_id=prediction_id,
            arm=decision.arm,
            ml_enabled=True,
            **msgspec.structs.asdict(found),
        )

    return [predict, predict_batch, recommend]
