"""The per-user input struct: what it accepts and how it becomes columns."""

from __future__ import annotations

import math

import msgspec
import pytest

from server.analysis.user_metrics import UserMetrics, columns_from_users


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


def test_columns_turn_missing_history_into_nan() -> None:
    """None pre-period fields become NaN, booleans 0/1, one entry per user."""
    cols = columns_from_users(
        [
            UserMetrics(
                user_id="a", arm="x", n_sessions=1, n_scans=2, returned=True, pre_n_scans=4
            ),
            UserMetrics(user_id="b", arm="x", n_sessions=3, n_scans=6),
        ]
    )
    assert len(cols) == 2
    assert cols.returned.tolist() == [1.0, 0.0]
    assert cols.pre_n_scans[0] == 4.0
    assert math.isnan(cols.pre_n_scans[1])


def test_unknown_column_names_list_the_known_ones() -> None:
    """column('scans') says which names exist."""
    cols = columns_from_users([UserMetrics(user_id="a", arm="x", n_sessions=1, n_scans=1)])
    with pytest.raises(KeyError, match="n_scans"):
        cols.column("scans")
