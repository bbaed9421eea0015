"""The store's record types: what the per-user sums (UserMetrics) accept and refuse."""

from __future__ import annotations

import msgspec
import pytest

from server.store.records import UserMetrics


def test_decodes_from_json_and_refuses_unknown_fields() -> None:
    """The store hands JSON; a misspelt field is an error, not silently zero."""
    good = b'{"user_id": "u1", "arm": "control", "n_sessions": 2, "n_scans": 5}'
    assert msgspec.json.decode(good, type=UserMetrics).n_scans == 5
    with pytest.raises(msgspec.ValidationError, match="n_scan"):
        msgspec.json.decode(good[:-1] + b', "n_scan": 1}', type=UserMetrics)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n_scans": 2, "n_empty_scans": 3}, r"n_empty_scans \(3\) cannot exceed n_scans \(2\)"),
        ({"n_scans": 2, "n_scans_in_desired_range": 5}, "n_scans_in_desired_range"),
        ({"n_sessions": 1, "n_time_to_first_result": 2}, "n_time_to_first_result"),
        ({"pre_n_scans": 1, "pre_n_empty_scans": 2}, "pre_n_empty_scans"),
    ],
)
def test_impossible_counts_are_refused(fields: dict[str, int], message: str) -> None:
    """More empties than scans (and the like) name the user and both values."""
    base = {"user_id": "u1", "arm": "control", "n_sessions": 1, "n_scans": 2}
    with pytest.raises(ValueError, match=message):
        UserMetrics(**{**base, **fields})  # type: ignore[arg-type]
