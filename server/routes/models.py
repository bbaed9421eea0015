"""GET /v1/models: the manifest summary of the version in service."""

from __future__ import annotations

from litestar import get
from litestar.handlers import HTTPRouteHandler

from server.inference.predictor import Predictor
from server.schemas import ModelSummary

__all__ = ["routes", "summary"]


def summary(predictor: Predictor) -> ModelSummary:
    """The served version's manifest without its reference histograms."""
    model = predictor.model
    m = model.manifest
    return ModelSummary(
        version=m.version,
        created_at=m.created_at,
        parent_version=m.parent_version,
        model_sha256=model.sha256,
        feature_spec_sha256=m.feature_spec_sha256,
        features=m.feature_spec,
        outputs=m.output_names,
        metrics=m.metrics,
        importances=m.importances,
        conformal=m.conformal,
        calibration=m.calibration,
        training_data=m.training_data,
        packages=m.packages,
    )


def routes(predictor: Predictor) -> list[HTTPRouteHandler]:
    """The model description handler."""

    @get("/v1/models", tags=["models"])
    async def models() -> ModelSummary:
        """Version, features, metrics, importances and calibration of the model in service."""
        return summary(predictor)

    return [models]
