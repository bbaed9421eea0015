"""The HTTP observer: request id, duration and count metrics, and one access log line.

It wraps the whole Litestar ASGI handler (outside routing and the exception handlers, as
Litestar's own OpenTelemetry middleware does), so it also sees 404s, 405s and errors.
Route labels are templates (`/v2/models/{name}`), never raw paths. Litestar names the
template in the scope only once a handler is chosen, so a 405 (the path matched, the method
did not) is labelled by matching its path against the app's templates here; a request that
matched no route is labelled "unmatched".
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterable
from typing import Final, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from server.logs import REQUEST_ID, log_fields
from server.monitoring.metrics import Metrics

__all__ = ["REQUEST_ID_HEADER", "HttpObserver", "RouteTemplates"]

REQUEST_ID_HEADER: Final = "x-request-id"
_HEADER_BYTES: Final = REQUEST_ID_HEADER.encode()
# A client's id is echoed only if it is short and printable; otherwise we make one.
_VALID_ID: Final = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Probes and scrapes arrive every few seconds; their access lines go to DEBUG.
_QUIET_PREFIXES: Final = ("/health", "/metrics", "/v2/health")
_PARAMETER: Final = re.compile(r"\{[^}:]+(?::([a-z]+))?\}")


class RouteTemplates:
    """Finds the template a path belongs to, for the requests Litestar did not label (405)."""

    def __init__(self, routes: Iterable[tuple[str, str]]) -> None:
        """`routes`: (path as declared, e.g. `/v2/models/{name:str}`, its template)."""
        self._patterns = [(re.compile(_pattern(path)), template) for path, template in routes]

    def match(self, path: str) -> str | None:
        """The template of the first route whose path matches, or None."""
        normalized = "/" + path.strip("/")
        for pattern, template in self._patterns:
            if pattern.fullmatch(normalized):
                return template
        return None


def _pattern(path: str) -> str:
    parts, last = [], 0
    for found in _PARAMETER.finditer(path):
        parts.append(re.escape(path[last : found.start()]))
        parts.append(".*" if found.group(1) == "path" else "[^/]+")
        last = found.end()
    parts.append(re.escape(path[last:]))
    return "".join(parts)


class HttpObserver:
    """ASGI wrapper measuring and logging every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        logger: logging.Logger,
        templates: RouteTemplates | None = None,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._logger = logger
        self._templates = templates or RouteTemplates(())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self._observe(scope, receive, send)

    async def _observe(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id.decode())
        status = 500  # what the client sees if the app dies before answering
        started = time.perf_counter()
        self._metrics.in_flight.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                headers.append((_HEADER_BYTES, request_id))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(cast("Scope", scope), receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.in_flight.dec()
            route = scope.get("path_template") or (
                (status == 405 and self._templates.match(scope["path"])) or "unmatched"
            )
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self._metrics.observe_request(route, method, str(status), elapsed)
            path = scope["path"]
            level = logging.DEBUG if path.startswith(_QUIET_PREFIXES) else logging.INFO
            if self._logger.isEnabledFor(level):
                fields = {
                    "method": scope["method"],
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
                log_fields(self._logger, level, "request", fields)
            REQUEST_ID.reset(token)


def _request_id(scope: HTTPScope) -> bytes:
    for name, value in scope["headers"]:
        if name == _HEADER_BYTES and _VALID_ID.match(value):
            return bytes(value)
    # 128 random bits as 32 hex digits, the shape uuid4().hex had, at a tenth of its cost:
    # a request id must be unique, not unguessable, and `random` is reseeded in each fork.
    return b"%032x" % random.getrandbits(128)
