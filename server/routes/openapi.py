"""Request bodies in the OpenAPI document for handlers that decode their own body.

Handlers read the raw body and decode it with msgspec (faster, and better error messages
than Litestar's `data` parameter), so Litestar does not know their body type. Each such
handler names it in ``opt={"body": Type}``; `document_bodies` adds those types' JSON
schemas (from msgspec) to the generated document, once, when the app is built.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, Reference, RequestBody, Schema
from litestar.routes import HTTPRoute

__all__ = ["document_bodies"]

_REF = "#/components/schemas/{name}"


def document_bodies(app: Litestar) -> None:
    """Give every POST with ``opt["body"]`` its JSON request body schema."""
    bodies: dict[tuple[str, str], type[Any]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if isinstance(handler, HTTPRouteHandler) and "body" in handler.opt:
                for verb in handler.http_methods:
                    bodies[(route.path_format, verb.lower())] = handler.opt["body"]
    if not bodies:
        return
    # A body may be a union of tagged structs (POST /v1/events), which has no __name__.
    types = sorted(set(bodies.values()), key=lambda t: getattr(t, "__name__", str(t)))
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    ref_of = dict(zip(types, refs, strict=True))
    openapi = app.openapi_schema  # built once here and cached by Litestar
    schemas = openapi.components.schemas
    for name, schema in components.items():
        # Litestar may have generated the same type for a response; keep its version, but
        # say what the decoder enforces: no fields beyond the declared ones (msgspec's
        # forbid_unknown_fields, which Litestar's version leaves out).
        existing = schemas.setdefault(name, cast(Schema, schema))
        if schema.get("additionalProperties") is False and isinstance(existing, Schema):
            existing.additional_properties = False
    for (path, attribute), body in bodies.items():
        item = openapi.paths.get(path) if openapi.paths else None
        operation = getattr(item, attribute, None) if item else None
        if operation is not None:
            ref = ref_of[body]
            # A struct is a $ref; a union is an inline anyOf of $refs with its discriminator.
            schema = Reference(ref=ref["$ref"]) if "$ref" in ref else cast(Schema, ref)
            operation.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)},
                required=True,
            )
