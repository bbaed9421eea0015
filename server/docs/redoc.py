"""Redoc, vendored: the render plugin for /schema and the route serving its bundle.

Litestar's Redoc plugin loads the bundle from cdn.redoc.ly, a web-font stylesheet from
fonts.googleapis.com and a favicon from jsdelivr, so /schema is a blank page without
internet. Here the bundle comes from `ASSET_PATH` on the app itself, the fonts are the
system's and there is no favicon: opening /schema sends no request off the machine.
The bundle is read once, at import, and served with a long cache lifetime (its URL
carries the version, so a new version is a new URL). The file stays byte for byte what
npm published; the one off-machine URL inside it, the "API docs by Redocly" logo that
the side menu loads from cdn.redoc.ly, is swapped for an empty inline SVG as it is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import RedocRenderPlugin

__all__ = ["ASSET_PATH", "BUNDLE_FILE", "REDOC_VERSION", "docs_render_plugin", "routes"]

REDOC_VERSION: Final = "2.5.2"
ASSET_PATH: Final = f"/docs/assets/redoc-{REDOC_VERSION}.standalone.js"
BUNDLE_FILE: Final = Path(__file__).parent / "assets" / "redoc.standalone.js"
_CDN_LOGO: Final = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_EMPTY_SVG: Final = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"
_BUNDLE: Final = BUNDLE_FILE.read_bytes().replace(_CDN_LOGO, _EMPTY_SVG)


def docs_render_plugin() -> RedocRenderPlugin:
    """Redoc at /schema (and /schema/redoc), loading only what the app serves."""
    return RedocRenderPlugin(js_url=ASSET_PATH, google_fonts=False, favicon="", path="/redoc")


def routes() -> list[HTTPRouteHandler]:
    """GET the vendored bundle."""

    @get(ASSET_PATH, include_in_schema=False, cache=False)
    async def redoc_bundle() -> Response[bytes]:
        """Redoc's standalone bundle."""
        return Response(
            _BUNDLE,
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=31536000, immutable"},
        )

    return [redoc_bundle]
