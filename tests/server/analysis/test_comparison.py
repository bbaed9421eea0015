"""The one path from sums to a comparison: test choice, CUPED and always-valid intervals."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.comparison import choose_test, compare_arms
from server.analysis.moments import ArmMoments, moment_columns
from server.analysis.stats import MetricKind, StatTest


def sums(m: np.ndarray, d: np.ndarray, x: np.ndarray | None = None) -> ArmMoments:
    return ArmMoments.from_sums(moment_columns(m, d, x).sum(axis=0))


@pytest.mark.parametrize(
    ("kind", "adjusted", "test"),
    [
        (MetricKind.MEAN, False, StatTest.WELCH_T),
        (MetricKind.MEAN, True, StatTest.WELCH_T),
        (MetricKind.PROPORTION, False, StatTest.TWO_PROPORTION_Z),
        (MetricKind.PROPORTION, True, StatTest.DELTA_Z),
        (MetricKind.RATIO, False, StatTest.DELTA_Z),
    ],
)
def test_each_kind_gets_its_test(kind: MetricKind, adjusted: bool, test: StatTest) -> None:
    """Welch for means, pooled z for plain rates, the delta-method z otherwise."""
    assert choose_test(kind, adjusted=adjusted) is test


def test_always_valid_interval_contains_the_fixed_one() -> None:
    """The sequence is wider than the fixed-horizon CI and its p-value larger."""
    rng = np.random.default_rng(5)
    c = sums(rng.poisson(3, 4000).astype(float), rng.poisson(8, 4000) + 1.0)
    t = sums(rng.poisson(3, 4000).astype(float), rng.poisson(8, 4000) + 1.0)
    cmp = compare_arms(c, t, MetricKind.RATIO, alpha=0.05)
    d = cmp.difference
    assert cmp.seq_abs_low < d.abs_low < d.abs_diff < d.abs_high < cmp.seq_abs_high
    assert cmp.seq_rel_low < d.rel_low < d.rel_high < cmp.seq_rel_high
    assert cmp.seq_p_value >= d.p_value
    assert cmp.cuped is None


def test_cuped_narrows_the_interval_but_keeps_raw_arm_values() -> None:
    """With a predictive covariate the CI shrinks; the arm means shown stay unadjusted."""
    rng = np.random.default_rng(9)
    x = rng.gamma(2.0, 1.0, (2, 3000))
    y = x + rng.normal(0, 0.5, (2, 3000))
    ones = np.ones(3000)
    c, t = sums(y[0], ones, x[0]), sums(y[1], ones, x[1])
    plain = compare_arms(c, t, MetricKind.MEAN, alpha=0.05)
    adjusted = compare_arms(c, t, MetricKind.MEAN, alpha=0.05, cuped=True)
    assert adjusted.cuped is not None
    assert float(adjusted.cuped.variance_reduction) > 0.5
    assert adjusted.difference.abs_se < plain.difference.abs_se
    assert float(adjusted.control.mean) == pytest.approx(float(np.mean(y[0])))


def test_a_batch_of_assignments_matches_one_at_a_time() -> None:
    """Arrays of sums (the A/A runs) give exactly the per-run answers."""
    rng = np.random.default_rng(2)
    table = moment_columns(rng.poisson(2, 500).astype(float), rng.poisson(6, 500) + 1.0)
    labels = rng.random((3, 500)) < 0.5
    treated = ArmMoments.from_sums(labels.astype(float) @ table)
    control = ArmMoments.from_sums(table.sum(axis=0)).minus(treated)
    batch = compare_arms(control, treated, MetricKind.RATIO, alpha=0.05)
    for i in range(3):
        one = compare_arms(
            ArmMoments.from_sums(table[~labels[i]].sum(axis=0)),
            ArmMoments.from_sums(table[labels[i]].sum(axis=0)),
            MetricKind.RATIO,
            alpha=0.05,
        )
        assert batch.difference.p_value[i] == pytest.approx(float(one.difference.p_value))
        assert batch.seq_p_value[i] == pytest.approx(float(one.seq_p_value))
