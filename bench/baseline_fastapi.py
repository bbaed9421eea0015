"""Baseline 1: the obvious service a team would write instead, FastAPI on uvicorn + scikit-learn.

    SCANOPT_BENCH_BASELINE_MODEL=var/bench/baseline/<version>.pkl \
        uvicorn --factory bench.baseline_fastapi:create_app

A pydantic model of the scan, the shared feature encoding, and `predict` on the fitted
scikit-learn estimators of the very version scanopt serves (bench.baseline_model pickles
them offline, for this baseline only: the real server never unpickles anything), with the
same post-processing as the ONNX graph (train.models.predict_outputs). The handler is a
plain `def`, as FastAPI advises for blocking work, so it runs in the threadpool.
"""

from __future__ import annotations

import os
import pickle
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import uuid4

import msgspec
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.baseline_model import BaselineModel
from server.domain.artifact import confidence_score
from server.domain.features import encode_scans
from server.domain.scan import Scan, Strategy, Timeframe, Universe
from train.models import predict_outputs

__all__ = ["ENV_MODEL", "IntervalOut", "PredictionOut", "ScanIn", "create_app"]

ENV_MODEL = "SCANOPT_BENCH_BASELINE_MODEL"


class ScanIn(BaseModel):
    """The scan as a pydantic model, with the same ranges as server.domain.scan."""

    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, Field(min_length=1, max_length=128)]
    session_id: Annotated[str, Field(min_length=1, max_length=128)]
    universe: Universe
    strategy: Strategy
    timeframe: Timeframe
    lookback_bars: Annotated[int, Field(ge=10, le=500)]
    min_price: Annotated[float, Field(ge=0, le=1_000_000)]
    max_price: Annotated[float, Field(ge=0, le=1_000_000)]
    min_avg_volume: Annotated[float, Field(ge=0, le=1e12)]
    min_market_cap_musd: Annotated[float, Field(ge=0, le=1e8)]
    min_abs_change_pct: Annotated[float, Field(ge=0, le=50)]
    min_relative_volume: Annotated[float, Field(ge=0, le=20)]
    rsi_min: Annotated[float, Field(ge=0, le=100)]
    rsi_max: Annotated[float, Field(ge=0, le=100)]
    n_extra_filters: Annotated[int, Field(ge=0, le=20)]
    volatility_index: Annotated[float, Field(ge=5, le=90)]
    timestamp: datetime | None = None

    @model_validator(mode="after")
    def _bands(self) -> ScanIn:
        if not self.min_price < self.max_price:
            raise ValueError("min_price must be below max_price")
        if not self.rsi_min < self.rsi_max:
            raise ValueError("rsi_min must be below rsi_max")
        return self


class IntervalOut(BaseModel):
    """A prediction with its 90% interval."""

    predicted: float
    lower: float
    upper: float


class PredictionOut(BaseModel):
    """What the baseline answers: the same figures scanopt does."""

    prediction_id: str
    model_version: str
    result_count: IntervalOut
    duration_s: IntervalOut
    p_empty: float
    confidence: float


def create_app() -> FastAPI:
    """The baseline app, loading the pickle named by SCANOPT_BENCH_BASELINE_MODEL."""
    path = Path(os.environ[ENV_MODEL])
    with path.open("rb") as fh:
        # Bench-only, and written by bench.baseline_model itself; the server never unpickles.
        baseline: BaselineModel = pickle.load(fh)
    app = FastAPI()

    @app.post("/v1/predict", response_model=PredictionOut)
    def predict(scan: ScanIn) -> PredictionOut:
        features = encode_scans([msgspec.convert(scan.model_dump(), Scan)])
        out = {
            name: float(values[0])
            for name, values in predict_outputs(baseline.models, features).items()
        }
        count = (out["result_count"], out["result_count_lo"], out["result_count_hi"])
        dur = (out["duration_s"], out["duration_s_lo"], out["duration_s_hi"])
        return PredictionOut(
            prediction_id=uuid4().hex,
            model_version=baseline.version,
            result_count=IntervalOut(predicted=count[0], lower=count[1], upper=count[2]),
            duration_s=IntervalOut(predicted=dur[0], lower=dur[1], upper=dur[2]),
            p_empty=out["p_empty"],
            confidence=confidence_score(*count, *dur),
        )

    @app.get("/health/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app
