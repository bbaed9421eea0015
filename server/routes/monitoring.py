"""GET /v1/monitoring/accuracy, /drift, /importance and /business: the monitoring read API.

Thin handlers: parse and check the query (a bad value is a 400 naming the parameter and
what is allowed), then ask the worker's `Monitor`. The wire types and what each figure
means are in server.monitoring.schemas.
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from server.monitoring.accuracy import WINDOWS
from server.monitoring.monitor import BUSINESS_WINDOWS, Monitor
from server.monitoring.schemas import (
    AccuracyReport,
    BusinessReport,
    DriftReport,
    ImportanceReport,
)
from server.routes.params import MODEL_VERSION, one_of, one_value_each, window_param

__all__ = ["MAX_WINDOW_MINUTES", "routes"]

MAX_WINDOW_MINUTES: Final = 10_080  # 7 days
WindowMinutes = Annotated[
    int | None,
    Parameter(ge=1, le=MAX_WINDOW_MINUTES, description="the drift window, minutes"),
]
Version = Annotated[str | None, MODEL_VERSION]  # optional: not ModelVersion
AccuracyWindow = Annotated[str, window_param(WINDOWS, "the accuracy window")]
BusinessWindow = Annotated[str, window_param(BUSINESS_WINDOWS, "the window, by arrival")]


def routes(monitor: Monitor) -> list[HTTPRouteHandler]:
    """The monitoring read handlers."""
    windows = tuple(WINDOWS)

    @get("/v1/monitoring/accuracy", tags=["monitoring"], guards=[one_value_each])
    async def accuracy(window: AccuracyWindow = "1h", version: Version = None) -> AccuracyReport:
        """Online accuracy of labelled outcomes per model version and arm over a window
        (1h, 24h, 7d or live), with n and the training figure beside each."""
        return await monitor.accuracy(one_of("window", window, windows), version)

    @get("/v1/monitoring/drift", tags=["monitoring"], guards=[one_value_each])
    async def drift(window_minutes: WindowMinutes = None, version: Version = None) -> DriftReport:
        """PSI, Wasserstein and Jensen-Shannon drift of every feature and output of recent
        predictions against the manifest's reference, each with its threshold."""
        return await monitor.drift(window_minutes, version)

    @get("/v1/monitoring/importance", tags=["monitoring"], guards=[one_value_each])
    async def importance(version: Version = None) -> ImportanceReport:
        """The latest nDCG of recent permutation importances against the manifest's ranking
        (below 0.9 is a violation)."""
        return await monitor.importance(version)

    @get("/v1/monitoring/business", tags=["monitoring"], guards=[one_value_each])
    async def business(window: BusinessWindow = "24h") -> BusinessReport:
        """Per arm over a window (1h, 24h or 7d, by arrival): empty-scan rate, time to first
        result, satisfaction, positive feedback share, adoption and regular usage."""
        return await monitor.business(one_of("window", window, BUSINESS_WINDOWS))

    return [accuracy, drift, importance, business]
