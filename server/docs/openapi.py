"""The OpenAPI document's error responses and value ranges, added once when the app is built.

Every operation declares the errors it can answer, each with the one error body
(`ErrorBody`: `error` naming the bad value and what was expected, `kind`, `field`):

- 400, 413 and 415 for an operation with a JSON body (malformed, too large, not JSON);
- 400 for an operation with query or path parameters (one that does not parse or breaks
  its declared rule: pattern, range, allowed values);
- 401 and 403 on the admin operations (no bearer token, a wrong one);
- 404 where a path names something (an experiment, a V2 model or version) and for
  events and feedback (an unknown `prediction_id`);
- 409 for events and feedback (an id reused with another body) and the admin reload
  (a version refused, the old one keeps serving);
- 422 where a rule beyond the schema applies (events, feedback, experiment changes, the
  usage window's since < until);
- 503 wherever the model or the store is needed (not ready, store unreachable), with
  Retry-After.

A tagged union's tag property (an event's `type`) is described as such; a union whose
options overlap (`str | int | float`) is anyOf, not oneOf; an optional query parameter
is its type alone (Litestar writes `T | None` as oneOf [T, null], and a query string
cannot carry a JSON null). Every property
that has a description gets its range appended, read from the schema's own
constraints (minimum/maximum, lengths), so the numbers exist once: in the annotations of
the domain module that msgspec turned into this schema.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec
from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, Schema

from server.schemas import ErrorBody

__all__ = ["ERROR_STATUSES", "document_errors", "error_statuses"]

ERROR_STATUSES: Final[dict[int, str]] = {
    400: "Bad input: `error` names the field and what was expected, `field` is its path",
    401: "An admin call without the header Authorization: Bearer <SCANOPT_ADMIN_TOKEN>",
    403: "An admin call whose bearer token is not SCANOPT_ADMIN_TOKEN",
    404: "Not found: an unknown experiment, model, version or prediction_id, named",
    409: "Conflict: an id reused with another body, or a model version refused",
    413: "The body is over SCANOPT_MAX_BODY_BYTES",
    415: "The body is not JSON: send application/json (a charset allowed) or a +json type",
    422: "A rule beyond the schema is broken (weights, arms, timestamps, coverage), named",
    503: "Not ready (no model loaded yet) or the store is unreachable; retry after Retry-After",
}
_REF: Final = "#/components/schemas/{name}"
_NAMED: Final = ("/v1/events", "/v1/feedback")
_CONFLICT: Final = (*_NAMED, "/v1/admin/reload")
_RULES: Final = (*_NAMED, "/v1/admin/experiments/{name}", "/v1/analytics/usage")
_ADMIN: Final = "/v1/admin/"
_NO_STATE: Final = ("/health/live", "/v2/health/live", "/metrics", "/v2")
# Litestar's Schema spells JSON Schema keys in snake case.
_ATTRS: Final = {
    "anyOf": "any_of",
    "oneOf": "one_of",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
}


def error_statuses(path: str, has_body: bool, has_parameters: bool = False) -> list[int]:
    """The error statuses an operation on `path` can answer (module docstring)."""
    statuses = {400, 413, 415} if has_body else set()
    if has_parameters:
        statuses.add(400)
    if path.startswith(_ADMIN):
        statuses |= {401, 403}
    if "{" in path or path in _NAMED:
        statuses.add(404)
    if path in _CONFLICT:
        statuses.add(409)
    if path in _RULES:
        statuses.add(422)
    if path not in _NO_STATE:
        statuses.add(503)
    return sorted(statuses)


def document_errors(app: Litestar) -> None:
    """Declare every operation's error responses and append ranges to descriptions."""
    openapi = app.openapi_schema  # built once and cached by Litestar
    (ref,), components = msgspec.json.schema_components([ErrorBody], ref_template=_REF)
    schemas = openapi.components.schemas
    for name, schema in components.items():
        schemas.setdefault(name, cast(Schema, schema))
    body = {"application/json": OpenAPIMediaType(schema=Reference(ref=ref["$ref"]))}
    for path, item in (openapi.paths or {}).items():
        for verb in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, verb, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            has_body = operation.request_body is not None
            for status in error_statuses(path, has_body, bool(operation.parameters)):
                responses[str(status)] = OpenAPIResponse(
                    description=ERROR_STATUSES[status], content=body
                )
            operation.responses = responses
            for parameter in operation.parameters or []:
                _drop_null_option(parameter)
    for schema in schemas.values():
        _overlapping_unions_as_any_of(schema)
        for prop in (_get(schema, "properties") or {}).values():
            _describe_tag(prop)
            _append_range(prop)


def _overlapping_unions_as_any_of(schema: Any) -> None:
    """Litestar writes a union as oneOf, which means exactly one option: a value that
    fits two (5 is both an integer and a number, in `str | int | float`) would break it.
    anyOf says what the decoder accepts; msgspec's own schemas already use it."""
    if not isinstance(schema, Schema):
        return
    options = schema.one_of or []
    kinds = [getattr(o, "type", None) for o in options]
    if OpenAPIType.INTEGER in kinds and OpenAPIType.NUMBER in kinds:
        schema.any_of, schema.one_of = options, None
    for child in [*(schema.properties or {}).values(), *options, *(schema.any_of or [])]:
        _overlapping_unions_as_any_of(child)


def _drop_null_option(parameter: Any) -> None:
    """An optional parameter is one that may be left out, not one that may be "null".

    Litestar writes `x: T | None = None` as oneOf [T, null]; a query string cannot carry
    a JSON null (`?x=null` is the text "null"), so the document keeps T alone.
    """
    schema = getattr(parameter, "schema", None)
    options = getattr(schema, "one_of", None)
    if schema is None or not options:
        return
    kept = [o for o in options if getattr(o, "type", None) != OpenAPIType.NULL]
    if len(kept) == 1 and len(kept) < len(options):
        schema.one_of = None
        schema.type = kept[0].type
        schema.format = schema.format or kept[0].format


def _describe_tag(prop: Any) -> None:
    """Describe a tagged union's tag (an event's `type`): Litestar writes it as a bare
    one-value enum, and msgspec has no annotation to hang a description on."""
    values = _get(prop, "enum")
    if _get(prop, "description") or not values or len(values) != 1:
        return
    text = f"which kind of body this is: always {values[0]} for this schema"
    if isinstance(prop, dict):
        prop["description"] = text
    else:
        prop.description = text


def _get(schema: Any, key: str) -> Any:
    """A key of a schema that is either a plain dict (msgspec) or a Litestar Schema."""
    if isinstance(schema, dict):
        return schema.get(key)
    return getattr(schema, _ATTRS.get(key, key), None)


def _append_range(prop: Any) -> None:
    """Add "Range: ..." from the property's own constraints to its description."""
    description = _get(prop, "description")
    if not description or "Range:" in description:
        return
    text = _range_text(prop)
    for option in _get(prop, "anyOf") or _get(prop, "oneOf") or []:
        text = text or _range_text(option)  # an optional value: the range of its non-null
    if text is None:
        return
    if isinstance(prop, dict):
        prop["description"] = f"{description}. Range: {text}"
    else:
        prop.description = f"{description}. Range: {text}"


def _range_text(schema: Any) -> str | None:
    low = _get(schema, "minimum")
    exclusive_low = _get(schema, "exclusiveMinimum")
    high = _get(schema, "maximum")
    exclusive_high = _get(schema, "exclusiveMaximum")
    if any(v is not None for v in (low, exclusive_low, high, exclusive_high)):
        left = "(" if exclusive_low is not None else "["
        right = ")" if exclusive_high is not None else "]"
        first = exclusive_low if exclusive_low is not None else low
        last = exclusive_high if exclusive_high is not None else high
        return f"{left}{_number(first)}, {_number(last)}{right}"
    shortest, longest = _get(schema, "minLength"), _get(schema, "maxLength")
    if shortest is not None or longest is not None:
        return f"{shortest or 0} to {longest if longest is not None else 'any'} characters"
    return None


def _number(value: float | None) -> str:
    if value is None:
        return "any"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"
