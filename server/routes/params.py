"""Query and path parameters shared by the routes: ids, names, windows, instants.

Each parameter is declared once with its rule (pattern, length, range, allowed values),
so the OpenAPI document states it and Litestar enforces it: a value that breaks it is a
400 naming the parameter (`server.routes.errors`). Ids in parameters follow the rule of
ids in bodies (`server.domain.scan.ID_PATTERN`: no control or bidirectional-control
characters); experiment names and model versions are the slugs their folders and rows use.

Litestar reads a repeated query parameter as its last value and the text `null` of an
optional one as absent; neither is what a client meant, so `one_value_each` (a guard on
every route with query parameters) refuses both with a 400 naming the parameter.

A window is a short code from a fixed list: the list is declared as the parameter's enum,
and `one_of` checks it with a message listing the allowed codes. Instants (`since`,
`until`) are RFC 3339 date-times with an offset, read strictly: Litestar's own `datetime`
parsing also takes a bare number as a Unix time (`until=0.5`), which the document's
`date-time` format does not allow.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter

from server.domain.scan import ID_PATTERN, ID_RULE, NAME_PATTERN, NAME_RULE
from server.domain.versions import VERSION_NAME
from server.errors import InputError

__all__ = [
    "EXPERIMENT_NAME",
    "ID",
    "MODEL_VERSION",
    "PATTERN_WORDS",
    "ExperimentName",
    "ModelVersion",
    "instant",
    "one_of",
    "one_value_each",
    "parameter_message",
    "window_param",
]

# What each pattern means, for messages: msgspec's own text shows the regular expression.
PATTERN_WORDS: Final = {
    ID_PATTERN: ID_RULE,
    NAME_PATTERN: NAME_RULE,
    VERSION_NAME.pattern: (
        "expected a version name: a letter or digit, then letters, digits, '_', '.' or '-'"
    ),
}

ID: Final = Parameter(
    pattern=ID_PATTERN,
    min_length=1,
    max_length=128,
    description="1-128 characters; no control or bidirectional-control characters",
)
EXPERIMENT_NAME: Final = Parameter(
    pattern=NAME_PATTERN,
    min_length=1,
    max_length=64,
    description="the experiment's name: 1-64 letters, digits, '_', '.' or '-'",
)
MODEL_VERSION: Final = Parameter(
    pattern=VERSION_NAME.pattern,
    min_length=1,
    max_length=128,
    description="a model version's name (its folder under artifacts/models/)",
)
ExperimentName = Annotated[str, EXPERIMENT_NAME]
ModelVersion = Annotated[str, MODEL_VERSION]
_AWARE: Final = Annotated[datetime, msgspec.Meta(tz=True)]


def one_value_each(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard: each query parameter at most once, and never the text "null"."""
    seen: set[str] = set()
    for key, value in connection.query_params.multi_items():
        if key in seen:
            raise InputError(f"{key}: given more than once; expected one value", field=key)
        seen.add(key)
        if value == "null":
            raise InputError(
                f"{key}: 'null' is not a value: leave the parameter out for its default",
                field=key,
            )


def window_param(allowed: Iterable[str], description: str) -> Any:
    """A window parameter whose codes are declared as the schema's enum."""
    return Parameter(description=description, schema_extra={"enum": list(allowed)})


def one_of(name: str, raw: str, allowed: Iterable[str]) -> str:
    """`raw` if it is one of `allowed`; an InputError naming `name` and listing them."""
    codes = list(allowed)
    if raw not in codes:
        raise InputError(f"{name}: {raw!r}: expected one of {', '.join(codes)}", field=name)
    return raw


def instant(name: str, raw: str | None) -> datetime | None:
    """An RFC 3339 date-time with an offset, or None; an InputError naming `name`."""
    if raw is None:
        return None
    try:
        moment: datetime = msgspec.convert(raw, _AWARE)
    except msgspec.ValidationError:
        raise InputError(
            f"{name}: {raw!r} is not a date-time: expected RFC 3339 with an offset, "
            "e.g. 2026-03-02T15:00:00Z",
            field=name,
        ) from None
    return moment


def parameter_message(message: str) -> str:
    """Litestar's (msgspec's) text for a parameter that broke its rule, in plain words."""
    for pattern, words in PATTERN_WORDS.items():
        if repr(pattern) in message:  # msgspec quotes the pattern with repr()
            return words
    return message[:1].lower() + message[1:]
