"""Only JSON bodies reach a JSON route: anything else is 415, naming what is accepted.

A route declares its JSON body with `opt={"body": <wire type>}` (as the OpenAPI document
reads it); for those routes a request that carries a body must say
`Content-Type: application/json` (any parameters, such as a charset, allowed) or a
`+json` structured-syntax type such as `application/merge-patch+json`. A missing content
type is refused too: guessing would accept form posts and text/plain. Routes whose opt
sets `OPTIONAL_CONTENT_TYPE` (V2 inference: tritonclient sends its JSON requests with no
content type, as Triton accepts) take a body without one, and Triton's binary tensor
requests, recognised by their `Inference-Header-Content-Length` header, in any type.
A request without a body (content-length 0, no transfer-encoding) is not checked: the
route's decoder says what is missing.
"""

from __future__ import annotations

from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from server.errors import UnsupportedMediaTypeError

__all__ = ["ACCEPTED", "OPTIONAL_CONTENT_TYPE", "is_json", "json_bodies_only"]

ACCEPTED: Final = "application/json (a charset allowed) or a +json type"
OPTIONAL_CONTENT_TYPE: Final = "content_type_optional"
_BINARY_V2: Final = b"inference-header-content-length"


def is_json(content_type: str) -> bool:
    """Whether a Content-Type value names JSON (RFC 8259, or RFC 6839's +json suffix)."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def json_bodies_only(app: ASGIApp) -> ASGIApp:
    """The middleware: refuse non-JSON bodies on routes that declare a JSON body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            handler = scope.get("route_handler")
            opt = {} if handler is None else (handler.opt or {})
            if "body" in opt:
                _check(scope, optional=bool(opt.get(OPTIONAL_CONTENT_TYPE)))
        await app(scope, receive, send)

    return middleware


def _check(scope: Scope, *, optional: bool) -> None:
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is not None and length.strip() == b"0":
        return
    if length is None and b"transfer-encoding" not in headers:
        return
    if _BINARY_V2 in headers:
        return
    raw = headers.get(b"content-type")
    if raw is None and optional:
        return
    if raw is None:
        raise UnsupportedMediaTypeError(
            f"content-type: missing; expected {ACCEPTED}", field="content-type"
        )
    value = raw.decode("latin-1")
    if not is_json(value):
        raise UnsupportedMediaTypeError(
            f"content-type: {value[:100]!r} is not JSON; expected {ACCEPTED}",
            field="content-type",
        )
