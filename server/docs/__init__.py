"""The API docs UI at /schema, served entirely by the app (no CDN, no web fonts).

`assets/` holds Redoc's standalone bundle as published on the npm registry (`npm pack
redoc@2.5.2`: `bundles/redoc.standalone.js`, with the package's MIT LICENSE as
`redoc.LICENSE` and the bundle's third-party notices as `redoc.standalone.js.LICENSE.txt`).
"""

from server.docs.redoc import ASSET_PATH, REDOC_VERSION, docs_render_plugin, routes

__all__ = ["ASSET_PATH", "REDOC_VERSION", "docs_render_plugin", "routes"]
