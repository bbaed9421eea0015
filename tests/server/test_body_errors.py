"""Malformed JSON bodies: the parser's byte offset becomes the field path it stopped in."""

from __future__ import annotations

import msgspec
import pytest

from server.body_errors import explain_malformed


def explain(body: bytes) -> tuple[str | None, str]:
    with pytest.raises(msgspec.DecodeError) as caught:
        msgspec.json.decode(body)
    return explain_malformed(body, str(caught.value))


@pytest.mark.parametrize(
    ("body", "field", "literal"),
    [
        (b'{"a": 1, "min_price": NaN}', "min_price", "NaN"),
        (b'{"scan": {"x": "a,b:{", "rsi_max": Infinity}}', "scan.rsi_max", "Infinity"),
        (b'{"scans": [{"a": 1}, {"b": [1, 2], "c": -Infinity}]}', "scans[1].c", "-Infinity"),
    ],
)
def test_non_finite_literals_name_their_field(body: bytes, field: str, literal: str) -> None:
    """NaN and (-)Infinity are named with their path, even past strings holding , : {."""
    assert explain(body) == (
        field,
        f"{field}: {literal} is not a JSON number: expected a finite number",
    )


def test_other_malformed_values_name_the_field_they_are_in() -> None:
    """A broken value inside a member names that member."""
    field, message = explain(b'{"user_id": u}')
    assert field == "user_id"
    assert message.startswith("user_id: the body is not valid JSON here")


def test_a_body_broken_outside_any_member_names_no_field() -> None:
    """Garbage at the top level has no field to name."""
    assert explain(b"user_id=u")[0] is None
    assert explain(b"")[0] is None
