"""server.routes.params: one value per query parameter, strict instants, plain messages."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from server.domain.scan import ID_PATTERN
from server.errors import InputError
from server.routes.params import instant, parameter_message


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("window=1h&window=24h", "window", "given more than once"),
        ("version=null", "version", "'null' is not a value"),
        ("window_minutes=null", "window_minutes", "'null' is not a value"),
    ],
)
def test_a_repeated_parameter_or_the_text_null_is_a_400(
    client: TestClient[Any], query: str, field: str, words: str
) -> None:
    """Litestar would take the last value, or read null as absent: both are refused."""
    path = "/v1/monitoring/drift" if "minutes" in query else "/v1/monitoring/accuracy"
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert words in response.json()["error"]


@pytest.mark.parametrize("raw", ["0.5", "1700000000", "2026-03-02", "2026-03-02T15:00:00"])
def test_an_instant_is_rfc3339_with_an_offset(raw: str) -> None:
    """A bare number, a date alone or a time without offset is refused, naming the field."""
    with pytest.raises(InputError, match=r"until: .* expected RFC 3339 with an offset") as caught:
        instant("until", raw)
    assert caught.value.field == "until"


def test_an_instant_with_an_offset_is_read() -> None:
    """Z and numeric offsets both work; nothing given is None."""
    moment = instant("since", "2026-03-02T15:00:00+01:00")
    assert moment is not None
    assert moment.utcoffset() is not None
    assert instant("since", None) is None


def test_pattern_messages_are_words_not_regular_expressions() -> None:
    """msgspec's message quotes the pattern; the client reads what it means instead."""
    message = parameter_message(f"Expected `str` matching regex {ID_PATTERN!r}")
    assert message.startswith("expected an id without control characters")
    assert parameter_message("Expected `int` >= 1") == "expected `int` >= 1"
