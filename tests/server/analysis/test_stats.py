"""Fixed-horizon tests against hand-computed textbook answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from server.analysis.moments import ArmMoments, moment_columns
from server.analysis.stats import (
    ArmEstimate,
    MetricKind,
    compare_estimates,
    estimate_arm,
    welch_df,
)


def arm(m: list[float], d: list[float] | None = None) -> ArmMoments:
    d = [1.0] * len(m) if d is None else d
    return ArmMoments.from_sums(moment_columns(m, d).sum(axis=0))


def scalar(n: float, mean: float, var: float) -> ArmEstimate:
    return ArmEstimate(n=np.array(n), mean=np.array(mean), var=np.array(var))


def test_welch_matches_the_hand_computed_textbook_example() -> None:
    """A = 1..5 and B = 2, 4, ..., 14: the difference's t, Welch df and p follow by hand."""
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    # By hand: mean A 3, s_A^2 = 10/4 = 2.5; mean B 8, s_B^2 = 112/6. Variances of the means:
    v_a, v_b = 2.5 / 5, (112 / 6) / 7
    t_hand = 5 / math.sqrt(v_a + v_b)  # 2.80976
    df_hand = (v_a + v_b) ** 2 / (v_a**2 / 4 + v_b**2 / 6)  # 8.03711
    ea, eb = estimate_arm(arm(a), MetricKind.MEAN), estimate_arm(arm(b), MetricKind.MEAN)
    diff = compare_estimates(ea, eb, alpha=0.05)
    assert float(diff.abs_diff / diff.abs_se) == pytest.approx(t_hand, rel=1e-12)
    assert t_hand == pytest.approx(2.80976, abs=1e-5)
    assert float(diff.df) == pytest.approx(df_hand, rel=1e-12)
    assert float(diff.df) == pytest.approx(8.03711, abs=1e-5)
    assert float(diff.abs_p_value) == pytest.approx(0.022747, abs=1e-6)
    # scipy's own Welch test on the raw samples agrees.
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert float(diff.abs_p_value) == pytest.approx(ref.pvalue, rel=1e-10)
    half = sps.t.ppf(0.975, df_hand) * math.sqrt(v_a + v_b)
    assert (float(diff.abs_low), float(diff.abs_high)) == pytest.approx((5 - half, 5 + half))


def test_proportions_use_welch_t_with_the_unpooled_variance() -> None:
    """120/1000 vs 150/1000: se = sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000), t on Welch df."""
    control = estimate_arm(arm([1.0] * 120 + [0.0] * 880), MetricKind.PROPORTION)
    treatment = estimate_arm(arm([1.0] * 150 + [0.0] * 850), MetricKind.PROPORTION)
    diff = compare_estimates(control, treatment, alpha=0.05)
    assert float(diff.abs_se) == pytest.approx(0.0152676, abs=1e-7)
    v_c, v_t = 0.12 * 0.88 / 1000, 0.15 * 0.85 / 1000
    df = (v_c + v_t) ** 2 / (v_c**2 / 999 + v_t**2 / 999)
    assert float(diff.df) == pytest.approx(df, rel=1e-12)
    t = 0.03 / math.sqrt(v_c + v_t)
    assert float(diff.abs_p_value) == pytest.approx(2 * sps.t.sf(t, df), rel=1e-12)
    half = sps.t.ppf(0.975, df) * math.sqrt(v_c + v_t)
    assert (float(diff.abs_low), float(diff.abs_high)) == pytest.approx((0.03 - half, 0.03 + half))


def test_delta_method_variance_of_a_ratio_matches_the_hand_computation() -> None:
    """M = 1, 2, 3, 6 over D = 2, 2, 4, 4: R = 1 and Var(R) = (14/3 - 4 + 4/3) / 36 = 1/18."""
    est = estimate_arm(arm([1.0, 2.0, 3.0, 6.0], [2.0, 2.0, 4.0, 4.0]), MetricKind.RATIO)
    # s_M^2 = 14/3, s_D^2 = 4/3, s_MD = 2, mu_D = 3, n = 4, in the delta-method
    # Var(R) = (s_M^2 - 2 R s_MD + R^2 s_D^2) / (n mu_D^2) of server.analysis.stats.
    assert float(est.mean) == pytest.approx(1.0)
    assert float(est.var) == pytest.approx(1 / 18, rel=1e-12)


def test_a_per_user_mean_is_the_ratio_with_unit_denominators() -> None:
    """With D = 1 the delta-method variance reduces to s^2 / n, Welch's per-arm variance."""
    values = [3.0, 7.0, 8.0, 1.0, 4.0]
    est = estimate_arm(arm(values), MetricKind.MEAN)
    assert float(est.var) == pytest.approx(np.var(values, ddof=1) / len(values), rel=1e-12)


def test_relative_lift_is_one_t_test_with_the_delta_method_variance() -> None:
    """Var(lift) = v_c mu_t^2 / mu_c^4 + v_t / mu_c^2; its CI and p share that se and Welch df."""
    c, t = scalar(50, 10.0, 0.04), scalar(60, 11.0, 0.09)
    diff = compare_estimates(c, t, alpha=0.05)
    se = math.sqrt(0.04 * 121 / 1e4 + 0.09 / 100)
    df = float(welch_df(c, t))
    assert float(diff.rel_diff) == pytest.approx(0.1)
    assert float(diff.rel_se) == pytest.approx(se, rel=1e-12)
    crit = sps.t.ppf(0.975, df)
    assert (float(diff.rel_low), float(diff.rel_high)) == pytest.approx(
        (0.1 - crit * se, 0.1 + crit * se)
    )
    assert float(diff.statistic) == pytest.approx(0.1 / se)
    assert float(diff.p_value) == pytest.approx(2 * sps.t.sf(0.1 / se, df), rel=1e-12)


def test_welch_df_lies_between_the_smaller_arm_and_the_pooled_df() -> None:
    """Satterthwaite df is at least min(n) - 1 and at most n_c + n_t - 2."""
    c, t = scalar(12, 1.0, 0.3), scalar(40, 1.0, 0.05)
    df = float(welch_df(c, t))
    assert 11 <= df <= 50


def test_a_single_user_arm_gives_nan_not_an_error() -> None:
    """One user has no variance: the estimate's variance and the p-value are NaN."""
    one = estimate_arm(arm([2.0]), MetricKind.MEAN)
    many = estimate_arm(arm([1.0, 2.0, 3.0]), MetricKind.MEAN)
    assert math.isnan(float(one.var))
    diff = compare_estimates(one, many, alpha=0.05)
    assert math.isnan(float(diff.p_value))


def test_estimates_broadcast_over_a_batch_of_arms() -> None:
    """A stack of sums gives the same numbers as each arm alone (the A/A fast path)."""
    rng = np.random.default_rng(3)
    columns = [moment_columns(rng.poisson(5, 30), rng.poisson(9, 30) + 1) for _ in range(4)]
    batch = estimate_arm(
        ArmMoments.from_sums(np.stack([c.sum(axis=0) for c in columns])), MetricKind.RATIO
    )
    for i, c in enumerate(columns):
        single = estimate_arm(ArmMoments.from_sums(c.sum(axis=0)), MetricKind.RATIO)
        assert batch.var[i] == pytest.approx(float(single.var))


def test_alpha_outside_zero_one_is_refused() -> None:
    """alpha = 1.5 names the bad value."""
    e = scalar(100, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 1.5"):
        compare_estimates(e, e, alpha=1.5)
