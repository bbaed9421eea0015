"""GET /v1/models: the version in service; GET /v1/models/versions: every version on disk.

The listing reads each version's manifest (no graph, no checksum) on a worker thread, so
a folder of many versions never stalls the event loop; `serving` is what this worker
runs, `current` what artifacts/current names (the two differ for at most one poll
interval after a promotion, or while a refused version is named). With a shadow version
configured, `shadow` adds its paired comparison with each champion, read from the store
(server.monitoring.shadow).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar import get
from litestar.concurrency import sync_to_thread
from litestar.handlers import HTTPRouteHandler

from server.domain.versions import VersionList, list_versions
from server.inference.predictor import Predictor
from server.monitoring.shadow import ShadowMonitor
from server.schemas import ModelSummary

__all__ = ["routes", "summary", "versions"]


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


def versions(predictor: Predictor, artifacts: Path) -> VersionList:
    """Every version under `artifacts`, with the one this worker serves."""
    listing = list_versions(artifacts)
    serving = predictor.model.version if predictor.ready else None
    return msgspec.structs.replace(listing, serving=serving)


def routes(
    predictor: Predictor, artifacts: Path, shadow: ShadowMonitor | None = None
) -> list[HTTPRouteHandler]:
    """The model description handlers."""

    @get("/v1/models", tags=["models"])
    async def models() -> ModelSummary:
        """Version, features, metrics, importances and calibration of the model in service."""
        return summary(predictor)

    @get("/v1/models/versions", tags=["models"])
    async def model_versions() -> VersionList:
        """Every version on disk, newest first: lineage, held-out metrics, which is current
        (artifacts/current, the serving alias), which this worker serves and, with a shadow
        version, its paired comparison with the champion on the same requests."""
        listing = await sync_to_thread(versions, predictor, artifacts)
        if shadow is None:
            return listing
        return msgspec.structs.replace(listing, shadow=await shadow.report())

    return [models, model_versions]
