"""Sample-ratio mismatch: worked chi-square examples, gbstats' answers and the edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.srm import DEFAULT_SRM_THRESHOLD, srm_test
from tests.server.analysis.gbstats_reference import gbstats_module


def test_5100_4900_is_fine_and_5200_4800_is_a_mismatch() -> None:
    """Chi-square 4 on 1 df is p = 0.0455 (not flagged); 16 is p = 6.3e-5 (flagged at 0.001)."""
    fine, bad = srm_test([5100, 4900], [0.5, 0.5]), srm_test([5200, 4800], [0.5, 0.5])
    assert float(fine.statistic) == pytest.approx(4.0)
    assert float(fine.p_value) == pytest.approx(0.0455, abs=5e-5)
    assert float(fine.p_value) >= DEFAULT_SRM_THRESHOLD
    assert float(bad.statistic) == pytest.approx(16.0)
    assert float(bad.p_value) == pytest.approx(6.3e-5, abs=5e-7)
    assert float(bad.p_value) < DEFAULT_SRM_THRESHOLD


def test_counts_are_judged_against_uneven_weights() -> None:
    """7,000/3,000 is exactly a 70/30 split; 5,000/5,000 under 70/30 is a gross mismatch."""
    assert float(srm_test([7000, 3000], [0.7, 0.3]).p_value) == pytest.approx(1.0)
    assert float(srm_test([5000, 5000], [0.7, 0.3]).p_value) < 1e-100


def test_batched_counts_give_one_p_value_per_row() -> None:
    """A (runs x arms) array is tested row by row, as the A/A validation does."""
    result = srm_test(np.array([[5100, 4900], [5200, 4800]]), [1, 1])
    assert result.p_value.shape == (2,)
    assert result.p_value[0] == pytest.approx(0.0455, abs=5e-5)


def test_users_in_a_switched_off_arm_are_a_mismatch() -> None:
    """Weight 0 must hold nobody: three users there give p = 0; none give the live arms' p."""
    assert float(srm_test([5000, 5000, 3], [0.5, 0.5, 0.0]).p_value) == 0.0
    assert float(srm_test([5100, 4900, 0], [0.5, 0.5, 0.0]).p_value) == pytest.approx(
        0.0455, abs=5e-5
    )


def test_no_users_is_no_evidence() -> None:
    """An experiment nobody has reached yet is not flagged."""
    assert float(srm_test([0, 0], [0.5, 0.5]).p_value) == 1.0


@pytest.mark.parametrize(
    ("counts", "weights", "message"),
    [
        ([10, 10], [0.5], "one count per arm"),
        ([10, 10], [0.5, -0.5], "non-negative"),
        ([10, -1], [0.5, 0.5], "counts must be non-negative"),
    ],
)
def test_bad_input_names_what_is_wrong(
    counts: list[int], weights: list[float], message: str
) -> None:
    """Mismatched lengths, negative weights or counts are refused with the values."""
    with pytest.raises(ValueError, match=message):
        srm_test(counts, weights)


def test_p_values_equal_gbstats_check_srm() -> None:
    """On 200 random splits of 2-4 arms with random weights: gbstats' check_srm within 1e-6."""
    utils = gbstats_module("utils")
    rng = np.random.default_rng(31)
    for _ in range(200):
        arms = int(rng.integers(2, 5))
        weights = list(rng.uniform(0.05, 1.0, arms))
        counts = rng.multinomial(int(rng.integers(50, 20_000)), rng.dirichlet(np.ones(arms) * 20))
        ours = float(srm_test(counts, weights).p_value)
        ref = float(utils.check_srm([int(c) for c in counts], weights))
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-300)
