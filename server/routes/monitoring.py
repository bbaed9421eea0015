"""GET /v1/monitoring/accuracy, /drift, /importance and /business: the monitoring read API.

Thin handlers: parse and check the query (a bad value is a 400 naming the parameter and
what is allowed), then ask the worker's `Monitor`. The wire types and what each figure
means are in server.monitoring.schemas.
"""

from __future__ import annotations

from typing import Final

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery

from server.errors import InputError
from server.monitoring.accuracy import WINDOWS
from server.monitoring.monitor import BUSINESS_WINDOWS, Monitor
from server.monitoring.schemas import (
    AccuracyReport,
    BusinessReport,
    DriftReport,
    ImportanceReport,
)

__all__ = ["MAX_WINDOW_MINUTES", "parse_window_minutes", "routes"]

MAX_WINDOW_MINUTES: Final = 10_080  # 7 days


def parse_window(raw: str, allowed: tuple[str, ...]) -> str:
    """`raw` if it names a window; InputError listing the windows otherwise."""
    if raw not in allowed:
        raise InputError(
            f"window: {raw!r} is not a window; expected one of {', '.join(allowed)}",
            field="window",
        )
    return raw


def parse_window_minutes(raw: str | None) -> int | None:
    """Minutes from 1 to MAX_WINDOW_MINUTES, or None for the default."""
    if raw is None:
        return None
    expected = f"expected a whole number of minutes from 1 to {MAX_WINDOW_MINUTES}"
    try:
        minutes = int(raw)
    except ValueError:
        raise InputError(f"window_minutes: {raw!r}: {expected}", field="window_minutes") from None
    if not 1 <= minutes <= MAX_WINDOW_MINUTES:
        raise InputError(f"window_minutes: {minutes}: {expected}", field="window_minutes")
    return minutes


def routes(monitor: Monitor) -> list[HTTPRouteHandler]:
    """The monitoring read handlers."""
    windows = tuple(WINDOWS)

    @get("/v1/monitoring/accuracy", tags=["monitoring"])
    async def accuracy(
        window: FromQuery[str] = "1h", version: FromQuery[str | None] = None
    ) -> AccuracyReport:
        """Online accuracy of labelled outcomes per model version and arm over a window
        (1h, 24h, 7d or live), with n and the training figure beside each."""
        return await monitor.accuracy(parse_window(window, windows), version)

    @get("/v1/monitoring/drift", tags=["monitoring"])
    async def drift(
        window_minutes: FromQuery[str | None] = None, version: FromQuery[str | None] = None
    ) -> DriftReport:
        """PSI, Wasserstein and Jensen-Shannon drift of every feature and output of recent
        predictions against the manifest's reference, each with its threshold."""
        return await monitor.drift(parse_window_minutes(window_minutes), version)

    @get("/v1/monitoring/importance", tags=["monitoring"])
    async def importance(version: FromQuery[str | None] = None) -> ImportanceReport:
        """The latest nDCG of recent permutation importances against the manifest's ranking
        (below 0.9 is a violation)."""
        return await monitor.importance(version)

    @get("/v1/monitoring/business", tags=["monitoring"])
    async def business(window: FromQuery[str] = "24h") -> BusinessReport:
        """Per arm over a window (1h, 24h or 7d, by arrival): empty-scan rate, time to first
        result, satisfaction, positive feedback share, adoption and regular usage."""
        return await monitor.business(parse_window(window, tuple(BUSINESS_WINDOWS)))

    return [accuracy, drift, importance, business]
