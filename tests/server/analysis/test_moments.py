"""Per-arm sums: what a user contributes and how sums are split."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.moments import MOMENT_FIELDS, ArmMoments, moment_columns


def test_columns_hold_the_ten_products_in_order() -> None:
    """One row per user: 1, M, D, X, M^2, D^2, X^2, MD, MX, DX."""
    row = moment_columns([2.0], [3.0], [5.0])[0]
    assert row.tolist() == [1, 2, 3, 5, 4, 9, 25, 6, 10, 15]
    assert len(MOMENT_FIELDS) == 10


def test_invalid_users_contribute_nothing_not_even_a_nan() -> None:
    """A user outside the metric adds zeros, even when their covariate is NaN."""
    table = moment_columns([1.0, 7.0], [1.0, 0.0], [2.0, np.nan], valid=[True, False])
    assert table[1].tolist() == [0.0] * 10
    sums = ArmMoments.from_sums(table.sum(axis=0))
    assert float(sums.n) == 1.0
    assert float(sums.x) == 2.0


def test_without_a_covariate_the_x_sums_are_zero() -> None:
    """No X: its sums are 0, so a caller cannot mistake it for a real covariate."""
    sums = ArmMoments.from_sums(moment_columns([1.0, 2.0], [1.0, 1.0]).sum(axis=0))
    assert (float(sums.x), float(sums.xx), float(sums.mx)) == (0.0, 0.0, 0.0)


def test_minus_gives_the_sums_of_the_other_users() -> None:
    """All users minus treatment is control, the A/A fast path's trick."""
    table = moment_columns([1.0, 2.0, 4.0], [1.0, 2.0, 2.0])
    total = ArmMoments.from_sums(table.sum(axis=0))
    treated = ArmMoments.from_sums(table[[1]].sum(axis=0))
    control = total.minus(treated)
    expected = ArmMoments.from_sums(table[[0, 2]].sum(axis=0))
    for name in MOMENT_FIELDS:
        assert float(getattr(control, name)) == float(getattr(expected, name))


def test_wrong_shapes_are_refused() -> None:
    """Sums without the 10-long last axis, or m and d of different lengths, are errors."""
    with pytest.raises(ValueError, match="axis of 10"):
        ArmMoments.from_sums(np.zeros(9))
    with pytest.raises(ValueError, match="one value per user"):
        moment_columns([1.0, 2.0], [1.0])
