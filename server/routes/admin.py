"""POST /v1/admin/reload, behind a bearer token (SCANOPT_ADMIN_TOKEN).

Without a token configured the admin routes are not registered at all, so they answer
404 like any unknown path. `admin_guard` is reusable by other admin routes.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import Guard

from server.errors import BadTokenError, MissingTokenError
from server.inference.predictor import Predictor
from server.inference.watcher import ModelWatcher
from server.schemas import ReloadResponse

__all__ = ["admin_guard", "routes"]


def admin_guard(token: str) -> Guard:
    """A Litestar guard: 401 without `Authorization: Bearer ...`, 403 with a wrong token."""
    expected = token.encode()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _sep, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise MissingTokenError(
                "admin endpoints need the header 'Authorization: Bearer <SCANOPT_ADMIN_TOKEN>'"
            )
        # Constant-time comparison: response timing must not leak the token.
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise BadTokenError("the bearer token is not SCANOPT_ADMIN_TOKEN")

    return guard


def routes(token: str, predictor: Predictor, watcher: ModelWatcher) -> list[HTTPRouteHandler]:
    """The admin handlers, guarded by `token`."""

    @post("/v1/admin/reload", status_code=200, guards=[admin_guard(token)], tags=["admin"])
    async def reload() -> ReloadResponse:
        """Load artifacts/current again in this worker (409 and the old version keeps serving
        if the new one is refused); the other workers follow within SCANOPT_RELOAD_POLL_S."""
        previous = predictor.model.version if predictor.ready else None
        await watcher.reload(raise_refused=True)
        return ReloadResponse(model_version=predictor.model.version, previous_version=previous)

    return [reload]
