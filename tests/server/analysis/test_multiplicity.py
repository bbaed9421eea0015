"""Adjusted p-values: Holm and Benjamini-Hochberg by hand, NaN outside the family, batches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from server.analysis.multiplicity import Correction, adjust_p_values


def test_holm_matches_the_step_down_by_hand() -> None:
    """p = .01, .04, .03, .005: sorted .005 .01 .03 .04 -> x4 x3 x2 x1, running max."""
    adjusted = adjust_p_values([0.01, 0.04, 0.03, 0.005], Correction.HOLM)
    # .005*4 = .02; .01*3 = .03; .03*2 = .06; .04*1 = .04 -> max so far .06.
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_never_lowers_a_p_value() -> None:
    """Adjusted p lies in [p, 1] for random families."""
    rng = np.random.default_rng(4)
    p = rng.random((50, 9))
    adjusted = adjust_p_values(p, Correction.HOLM)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= 1.0)


def test_benjamini_hochberg_is_scipys() -> None:
    """BH row by row equals scipy.stats.false_discovery_control."""
    rng = np.random.default_rng(5)
    p = rng.random((4, 9)) ** 3
    adjusted = adjust_p_values(p, Correction.BENJAMINI_HOCHBERG)
    for row, values in zip(adjusted, p, strict=True):
        assert row.tolist() == pytest.approx(sps.false_discovery_control(values).tolist())


@pytest.mark.parametrize("correction", list(Correction))
def test_nan_is_outside_the_family(correction: Correction) -> None:
    """A metric without enough data neither counts in m nor gets an adjusted value."""
    with_gap = adjust_p_values([0.01, np.nan, 0.02], correction)
    without = adjust_p_values([0.01, 0.02], correction)
    assert np.isnan(with_gap[1])
    assert [with_gap[0], with_gap[2]] == pytest.approx(without.tolist())


def test_a_batch_adjusts_each_family_on_its_own() -> None:
    """Runs x metrics: every row is the family (the A/A fast path)."""
    rng = np.random.default_rng(6)
    p = rng.random((20, 5))
    batch = adjust_p_values(p, Correction.HOLM)
    for i in range(20):
        assert batch[i].tolist() == pytest.approx(adjust_p_values(p[i], Correction.HOLM).tolist())


def test_no_correction_returns_the_raw_values() -> None:
    """Correction.NONE is the identity."""
    assert adjust_p_values([0.2, 0.01], Correction.NONE).tolist() == [0.2, 0.01]


def test_values_outside_zero_one_and_scalars_are_refused() -> None:
    """A p of 1.5 or a bare number names the problem."""
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        adjust_p_values([0.5, 1.5], Correction.HOLM)
    with pytest.raises(ValueError, match="need a family"):
        adjust_p_values(0.5, Correction.HOLM)
