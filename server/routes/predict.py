"""POST /v1/predict, /v1/predict/batch and /v1/recommend: decode, call the data plane, encode.

What each answer holds (the A/B decision, ML content for treatment users only, the
prediction id) and what is recorded is the data plane's business (server.dataplane).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler

from server.dataplane import DataPlane
from server.domain.scan import Scan
from server.schemas import (
    BatchRequest,
    BatchResponse,
    PredictAnswer,
    RecommendAnswer,
    RecommendRequest,
    decode_body,
)

__all__ = ["routes"]

_SCAN = msgspec.json.Decoder(Scan)
_BATCH = msgspec.json.Decoder(BatchRequest)
_RECOMMEND = msgspec.json.Decoder(RecommendRequest)


def routes(plane: DataPlane) -> list[HTTPRouteHandler]:
    """The prediction handlers, bound to this worker's data plane."""

    @post("/v1/predict", status_code=200, opt={"body": Scan}, tags=["predict"])
    async def predict(request: Request[Any, Any, Any]) -> PredictAnswer:
        """Predict one scan's result count, duration (90% intervals) and p_empty, for users
        the experiment gives ML to; always the arm, ml_enabled and a prediction id."""
        return await plane.predict(decode_body(_SCAN, await request.body()))

    @post("/v1/predict/batch", status_code=200, opt={"body": BatchRequest}, tags=["predict"])
    async def predict_batch(request: Request[Any, Any, Any]) -> BatchResponse:
        """Predict up to SCANOPT_MAX_BATCH scans in one onnxruntime run, each gated for its
        own user as /v1/predict is."""
        return await plane.predict_batch(decode_body(_BATCH, await request.body()).scans)

    @post("/v1/recommend", status_code=200, opt={"body": RecommendRequest}, tags=["predict"])
    async def recommend(request: Request[Any, Any, Any]) -> RecommendAnswer:
        """Suggest small parameter changes that land the scan in the desired result range
        (treatment users); others get the arm, ml_enabled and a prediction id."""
        return await plane.recommend(decode_body(_RECOMMEND, await request.body()))

    return [predict, predict_batch, recommend]
