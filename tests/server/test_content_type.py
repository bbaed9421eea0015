"""Which Content-Type values count as JSON (the 415 rule itself; the app tests go through
the real app in tests/server/routes/test_bad_input.py)."""

from __future__ import annotations

import pytest

from server.content_type import is_json


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON ; charset=UTF-8",
        "application/merge-patch+json",
        "application/vnd.scanopt.scan+json; version=1",
    ],
)
def test_json_and_plus_json_types_are_json(value: str) -> None:
    """application/json with any parameters, and RFC 6839 +json types, are accepted."""
    assert is_json(value)


@pytest.mark.parametrize(
    "value",
    ["text/plain", "text/json", "application/xml", "application/x-www-form-urlencoded", "", "json"],
)
def test_everything_else_is_not(value: str) -> None:
    """Other types, text/json included, and garbage are not JSON."""
    assert not is_json(value)
