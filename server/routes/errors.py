"""The one place errors become HTTP responses.

Domain errors (server.errors) map to a status by class; Litestar's own HTTP errors (no
route, wrong method, body too large) are rewritten into the same body shape, `ErrorBody`:
{"error": <message naming the value and what was expected>, "kind": ..., "field": ...}.
Anything else is a bug: logged with its traceback, answered 500 without details.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from server.errors import (
    ArtifactError,
    AuthError,
    BadTokenError,
    BodyTooLargeError,
    ConflictError,
    InputError,
    InvalidInputError,
    ModelNotFoundError,
    NotFoundError,
    NotReadyError,
    ScanoptError,
    StoreUnavailableError,
    UnsupportedMediaTypeError,
)
from server.monitoring.metrics import Metrics
from server.routes.params import parameter_message
from server.schemas import ErrorBody
from server.settings import Settings

__all__ = ["STATUS", "exception_handlers"]

# Most specific first: the first class the error is an instance of decides.
STATUS: Final[tuple[tuple[type[ScanoptError], int], ...]] = (
    (BodyTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (InputError, 400),
    (ArtifactError, 409),
    (NotReadyError, 503),
    (ModelNotFoundError, 404),
    (BadTokenError, 403),
    (AuthError, 401),
    (StoreUnavailableError, 503),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
)
_HTTP_KINDS: Final = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}

Req = Request[Any, Any, Any]


def _parameter_problems(extra: object) -> tuple[str | None, str | None]:
    """Litestar's parameter validation details as one message naming each parameter.

    Litestar puts `[{"message", "key", "source"}, ...]` in `extra` when a query, path or
    header parameter does not parse; its own text would show the Python repr of `source`.
    """
    if not isinstance(extra, list) or not extra:
        return None, None
    parts: list[str] = []
    for item in extra:
        if not isinstance(item, dict) or "key" not in item or "message" not in item:
            return None, None
        source = getattr(item.get("source"), "value", item.get("source"))
        where = f" ({source} parameter)" if source else ""
        parts.append(f"{item['key']}{where}: {parameter_message(str(item['message']))}")
    return "; ".join(parts), str(extra[0]["key"])


def exception_handlers(
    settings: Settings, metrics: Metrics, logger: logging.Logger
) -> ExceptionHandlersMap:
    """Litestar exception handlers for domain errors, HTTP errors and bugs."""

    def respond(
        body: ErrorBody, status: int, headers: dict[str, str] | None = None
    ) -> Response[Any]:
        metrics.errors.labels(body.kind).inc()
        return Response(body, status_code=status, headers=headers)

    def on_domain(_: Req, exc: Exception) -> Response[Any]:
        assert isinstance(exc, ScanoptError)
        status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "1"}
        return respond(
            ErrorBody(error=exc.message, kind=exc.kind, field=exc.field), status, headers
        )

    def on_http(request: Req, exc: Exception) -> Response[Any]:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        kind = _HTTP_KINDS.get(status, "bad_input" if status < 500 else "internal")
        headers = dict(exc.headers or {})
        field: str | None = None
        if status == 404:
            message = (
                f"no route {request.method} {request.url.path}: the endpoints are listed at /schema"
            )
        elif status == 405:
            allowed = headers.get("allow", "")
            message = f"{request.method} is not allowed on {request.url.path}: expected {allowed}"
        elif status == 413:
            message = (
                f"the request body is over the {settings.max_body_bytes} byte limit "
                "(SCANOPT_MAX_BODY_BYTES)"
            )
        else:
            named, field = _parameter_problems(exc.extra)
            message = named or str(exc.detail) + (f": {exc.extra}" if exc.extra else "")
        if status >= 500:
            logger.error("request failed", extra={"fields": {"error": message}})
        return respond(ErrorBody(error=message, kind=kind, field=field), status, headers or None)

    def on_bug(_: Req, exc: Exception) -> Response[Any]:
        logger.error("unhandled error", exc_info=exc)
        return respond(
            ErrorBody(error="internal error (logged with its request id)", kind="internal"), 500
        )

    return {ScanoptError: on_domain, HTTPException: on_http, Exception: on_bug}
