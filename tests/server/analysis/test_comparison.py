"""The one path from sums to a comparison: one test per scale, CUPED, always-valid intervals."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.comparison import Comparison, compare_arms
from server.analysis.moments import ArmMoments, moment_columns
from server.analysis.stats import MetricKind
from tests.server.analysis.gbstats_reference import arm_statistic, gbstats_module


def sums(m: np.ndarray, d: np.ndarray, x: np.ndarray | None = None) -> ArmMoments:
    return ArmMoments.from_sums(moment_columns(m, d, x).sum(axis=0))


def random_arms(
    kind: MetricKind, rng: np.random.Generator, *, covariate: bool = False
) -> tuple[ArmMoments, ArmMoments]:
    """Two arms of a random size and a random (often small) true effect, of the given kind."""
    arms = []
    lift = rng.normal(0.0, 0.08)
    for effect in (0.0, lift):
        n = int(rng.integers(20, 600))
        if kind is MetricKind.PROPORTION:
            m = (rng.random(n) < 0.3 * (1.0 + effect)).astype(float)
            d = np.ones(n)
        elif kind is MetricKind.MEAN:
            m, d = rng.lognormal(1.0 + effect, 0.9, n), np.ones(n)
        else:
            d = rng.poisson(4.0, n).astype(float)
            m = rng.binomial(d.astype(int), min(0.3 * (1.0 + effect), 1.0)).astype(float)
        x = m + rng.normal(0.0, 1.0, n) if covariate else None
        arms.append(sums(m, d, x))
    return arms[0], arms[1]


def excludes_zero(low: object, high: object) -> bool:
    return bool(np.asarray(low) > 0.0 or np.asarray(high) < 0.0)


def assert_one_test_per_interval(cmp: Comparison, alpha: float) -> None:
    d = cmp.difference
    pairs = [
        (d.p_value, d.rel_low, d.rel_high),
        (d.abs_p_value, d.abs_low, d.abs_high),
        (cmp.seq_p_value, cmp.seq_rel_low, cmp.seq_rel_high),
        (cmp.seq_abs_p_value, cmp.seq_abs_low, cmp.seq_abs_high),
    ]
    for p, low, high in pairs:
        assert bool(np.asarray(p) < alpha) == excludes_zero(low, high)


@pytest.mark.parametrize("kind", list(MetricKind))
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_p_below_alpha_exactly_when_the_interval_excludes_zero(
    kind: MetricKind, alpha: float
) -> None:
    """On 300 random data sets per kind: fixed and always-valid, relative and absolute."""
    rng = np.random.default_rng(11)
    seen = set()
    for _ in range(300):
        control, treatment = random_arms(kind, rng)
        cmp = compare_arms(control, treatment, kind, alpha=alpha)
        assert_one_test_per_interval(cmp, alpha)
        seen.add(bool(cmp.difference.p_value < alpha))
    assert seen == {True, False}  # both sides of alpha were exercised


def test_cuped_keeps_each_p_with_its_interval() -> None:
    """With a covariate the adjusted figures obey the same rule, fixed and always-valid."""
    rng = np.random.default_rng(12)
    for kind in (MetricKind.MEAN, MetricKind.RATIO):
        for _ in range(100):
            control, treatment = random_arms(kind, rng, covariate=True)
            cmp = compare_arms(control, treatment, kind, alpha=0.05, cuped=True)
            assert cmp.cuped is not None
            assert_one_test_per_interval(cmp, 0.05)


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


def per_user(kind: MetricKind, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random per-user M and D for one arm of a random size, in the shape the kind expects."""
    n = int(rng.integers(30, 900))
    if kind is MetricKind.PROPORTION:
        return (rng.random(n) < rng.uniform(0.05, 0.6)).astype(float), np.ones(n)
    if kind is MetricKind.MEAN:
        return rng.lognormal(rng.uniform(0.0, 2.0), 0.9, n), np.ones(n)
    d = rng.poisson(rng.uniform(0.5, 6.0), n).astype(float)  # zeros: users with no ratings
    return d * rng.uniform(1.0, 5.0, n), d


@pytest.mark.parametrize("kind", list(MetricKind))
def test_fixed_horizon_figures_equal_gbstats_two_sided_t_test(kind: MetricKind) -> None:
    """Lift, its CI and p equal gbstats' TwoSidedTTest within 1e-6 relative, 100 data sets."""
    tests = gbstats_module("frequentist.tests")
    rng = np.random.default_rng(21)
    for _ in range(100):
        (mc, dc), (mt, dt) = per_user(kind, rng), per_user(kind, rng)
        ours = compare_arms(sums(mc, dc), sums(mt, dt), kind, alpha=0.05).difference
        ref = tests.TwoSidedTTest(
            arm_statistic(kind.value, mc, dc),
            arm_statistic(kind.value, mt, dt),
            tests.FrequentistConfig(alpha=0.05),
        ).compute_result()
        assert ref.error_message is None
        assert float(ours.rel_diff) == pytest.approx(ref.expected, rel=1e-6)
        assert [float(ours.rel_low), float(ours.rel_high)] == pytest.approx(ref.ci, rel=1e-6)
        assert float(ours.p_value) == pytest.approx(ref.p_value, rel=1e-6)


# gbstats computes its e-value as exp(...) and overflows to inf for huge lifts (its p is then
# 0, as ours is); the warning is gbstats' own.
@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("kind", list(MetricKind))
def test_always_valid_figures_equal_gbstats_sequential_t_test(kind: MetricKind) -> None:
    """The confidence sequence and always-valid p equal gbstats' SequentialTwoSidedTTest."""
    tests = gbstats_module("frequentist.tests")
    rng = np.random.default_rng(22)
    for _ in range(100):
        (mc, dc), (mt, dt) = per_user(kind, rng), per_user(kind, rng)
        ours = compare_arms(sums(mc, dc), sums(mt, dt), kind, alpha=0.05, n_star=5000)
        ref = tests.SequentialTwoSidedTTest(
            arm_statistic(kind.value, mc, dc),
            arm_statistic(kind.value, mt, dt),
            tests.SequentialConfig(alpha=0.05, sequential_tuning_parameter=5000),
        ).compute_result()
        low, high = float(ours.seq_rel_low), float(ours.seq_rel_high)
        assert [low, high] == pytest.approx(ref.ci, rel=1e-6)
        assert float(ours.seq_p_value) == pytest.approx(ref.p_value, rel=1e-6)
