"""POST /v1/predict, /v1/predict/batch and /v1/recommend."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler

from server.domain.scan import Scan
from server.errors import InputError
from server.inference.predictor import Predictor
from server.inference.recommend import recommend as recommend_scans
from server.schemas import (
    BatchRequest,
    BatchResponse,
    Prediction,
    RecommendRequest,
    RecommendResponse,
    decode_body,
)
from server.settings import Settings

__all__ = ["routes"]

_SCAN = msgspec.json.Decoder(Scan)
_BATCH = msgspec.json.Decoder(BatchRequest)
_RECOMMEND = msgspec.json.Decoder(RecommendRequest)


def routes(settings: Settings, predictor: Predictor) -> list[HTTPRouteHandler]:
    """The prediction handlers, bound to this worker's predictor."""
    max_batch = settings.max_batch

    @post("/v1/predict", status_code=200, opt={"body": Scan}, tags=["predict"])
    async def predict(request: Request[Any, Any, Any]) -> Prediction:
        """Predict one scan's result count, duration (90% intervals) and p_empty."""
        scan = decode_body(_SCAN, await request.body())
        return await predictor.predict(scan)

    @post("/v1/predict/batch", status_code=200, opt={"body": BatchRequest}, tags=["predict"])
    async def predict_batch(request: Request[Any, Any, Any]) -> BatchResponse:
        """Predict up to SCANOPT_MAX_BATCH scans in one onnxruntime run."""
        batch = decode_body(_BATCH, await request.body())
        if len(batch.scans) > max_batch:
            raise InputError(
                f"scans: {len(batch.scans)} scans, expected at most {max_batch} per call",
                field="scans",
            )
        version, predictions = await predictor.predict_many(batch.scans)
        return BatchResponse(model_version=version, predictions=predictions)

    @post("/v1/recommend", status_code=200, opt={"body": RecommendRequest}, tags=["predict"])
    async def recommend(request: Request[Any, Any, Any]) -> RecommendResponse:
        """Suggest small parameter changes that land the scan in the desired result range."""
        wanted = decode_body(_RECOMMEND, await request.body())
        return await recommend_scans(predictor, wanted)

    return [predict, predict_batch, recommend]
