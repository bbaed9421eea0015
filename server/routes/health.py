"""GET /health/live and /health/ready (Kubernetes probes)."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.inference.predictor import Predictor
from server.schemas import Health

__all__ = ["readiness", "routes"]


def readiness(predictor: Predictor) -> Response[Health]:
    """200 once a model is loaded and warmed in this worker, 503 before."""
    if predictor.ready:
        return Response(Health(status="ready", model_version=predictor.model.version))
    return Response(
        Health(status="not_ready", reason="no model version loaded yet"), status_code=503
    )


def routes(predictor: Predictor) -> list[HTTPRouteHandler]:
    """The probe handlers."""

    @get("/health/live", tags=["health"])
    async def live() -> Health:
        """The worker's event loop answers."""
        return Health(status="ok")

    @get("/health/ready", tags=["health"])
    async def ready() -> Response[Health]:
        """Ready only after the model is loaded and warmed (503 before)."""
        return readiness(predictor)

    return [live, ready]
