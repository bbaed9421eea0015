"""The per-user sums become columns: NaN for missing history, names checked."""

from __future__ import annotations

import math

import pytest

from server.analysis.user_metrics import columns_from_users
from server.store.records import UserMetrics


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
