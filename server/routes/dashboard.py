"""GET /dashboard (the page and its vendored assets) and the JSON it polls.

/v1/dashboard/live comes from /metrics only; /v1/dashboard/history?window=1h|24h|7d and
/v1/dashboard/stored?window=... from the store's rollups (503 while it is unreachable,
which the page shows as a store outage). A bad window is a 400 naming it.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Final

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from server.dashboard.schemas import DashboardHistory, DashboardLive, DashboardStored
from server.dashboard.service import HISTORY_WINDOWS, Dashboard
from server.routes.params import one_of, one_value_each, window_param

__all__ = ["routes"]

_ASSETS: Final = files("server.dashboard")
_PAGE: Final = (_ASSETS / "page.html").read_bytes()
# The vendored files, read once: name -> (bytes, media type). Nothing else is served.
_FILES: Final = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_VENDORED: Final = {
    name: ((_ASSETS / "assets" / name).read_bytes(), media) for name, media in _FILES.items()
}
# The page runs only its own script and style: no inline handlers, no other origin.
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


Window = Annotated[str, window_param(HISTORY_WINDOWS, "the window to show")]


def routes(dashboard: Dashboard) -> list[HTTPRouteHandler]:
    """The page, its assets and its JSON endpoints."""

    @get("/dashboard", tags=["monitoring"], include_in_schema=False)
    async def page() -> Response[bytes]:
        """The dashboard page (self-contained: served assets only)."""
        return Response(
            _PAGE,
            media_type="text/html",
            headers={"content-security-policy": _CSP, "cache-control": "no-cache"},
        )

    @get("/dashboard/assets/{name:str}", tags=["monitoring"], include_in_schema=False)
    async def asset(name: FromPath[str]) -> Response[bytes]:
        """One vendored file (uPlot and its licence, the page's script and style)."""
        found = _VENDORED.get(name)
        if found is None:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(found[0], media_type=found[1], headers={"cache-control": "max-age=3600"})

    # Merging the workers' metric files is file I/O: a thread keeps it off the event loop.
    @get("/v1/dashboard/live", tags=["monitoring"], sync_to_thread=True)
    def live() -> DashboardLive:
        """Status, model version, cumulative counters, latency histogram, alerts holding now."""
        return dashboard.live()

    @get("/v1/dashboard/history", tags=["monitoring"], guards=[one_value_each])
    async def history(window: Window = "1h") -> DashboardHistory:
        """Requests/s, 5xx and slow shares, latency quantiles and drift per feature over the
        window, from the store's rollups (503: store down)."""
        return await dashboard.history_points(one_of("window", window, HISTORY_WINDOWS))

    @get("/v1/dashboard/stored", tags=["monitoring"], guards=[one_value_each])
    async def stored(window: Window = "24h") -> DashboardStored:
        """Recent feedback, the A/B arms and online accuracy history (503: store down)."""
        return await dashboard.stored(one_of("window", window, HISTORY_WINDOWS))

    return [page, asset, live, history, stored]
