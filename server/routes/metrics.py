"""GET /metrics: Prometheus text format, summed over every worker."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.monitoring.metrics import CONTENT_TYPE, Metrics

__all__ = ["routes"]


def routes(metrics: Metrics) -> list[HTTPRouteHandler]:
    """The scrape handler."""

    # Merging the workers' files is file I/O: a thread keeps it off the event loop.
    @get("/metrics", tags=["monitoring"], include_in_schema=False, sync_to_thread=True)
    def scrape() -> Response[bytes]:
        """Every scanopt metric in the Prometheus exposition format."""
        # Set as a header: given as media_type, Litestar would add a second "; charset=utf-8".
        return Response(metrics.render(), headers={"content-type": CONTENT_TYPE})

    return [scrape]
