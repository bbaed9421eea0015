"""CUPED: theta, the adjusted means and the variance removed, on examples done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from server.analysis.cuped import cuped_adjust
from server.analysis.moments import ArmMoments, moment_columns
from server.analysis.stats import MetricKind, estimate_arm


def arm(y: list[float], x: list[float], d: list[float] | None = None) -> ArmMoments:
    d = [1.0] * len(y) if d is None else d
    return ArmMoments.from_sums(moment_columns(y, d, x).sum(axis=0))


def test_theta_and_adjusted_means_match_the_hand_computation() -> None:
    """Pooled within-arm Cov/Var: (4 + 9) / (2 + 6) = 1.625; means shift by theta x imbalance."""
    # control   Y = 1, 3, 5  X = 1, 2, 3: S_yx = 4, S_xx = 2, mean Y 3, mean X 2
    # treatment Y = 4, 5, 9  X = 2, 2, 5: S_yx = 9, S_xx = 6, mean Y 6, mean X 3
    fit = cuped_adjust(arm([1, 3, 5], [1, 2, 3]), arm([4, 5, 9], [2, 2, 5]))
    assert float(fit.theta) == pytest.approx(1.625)
    # Pooled mean X = 15 / 6 = 2.5: 3 - 1.625 (2 - 2.5) and 6 - 1.625 (3 - 2.5).
    assert float(fit.control.mean) == pytest.approx(3.8125)
    assert float(fit.treatment.mean) == pytest.approx(5.1875)
    # Residual sums of squares 0.28125 and 0.59375, each over (n - 1) n = 6.
    assert float(fit.control.var) == pytest.approx(0.28125 / 6)
    assert float(fit.treatment.var) == pytest.approx(0.59375 / 6)
    # Unadjusted 8 / 6 + 14 / 6; 1 - 0.145833 / 3.666667.
    assert float(fit.variance_reduction) == pytest.approx(1 - (0.875 / 6) / (22 / 6))


def test_adjustment_removes_a_pre_existing_imbalance() -> None:
    """Y = X + 2 in treatment, Y = X in control, arms unequal in X: raw 4, adjusted 2."""
    fit = cuped_adjust(arm([1, 2, 3], [1, 2, 3]), arm([5, 6, 7], [3, 4, 5]))
    assert float(fit.theta) == pytest.approx(1.0)
    assert float(fit.treatment.mean - fit.control.mean) == pytest.approx(2.0)


def test_a_constant_covariate_changes_nothing() -> None:
    """theta 0 when X does not vary: the ratio estimate and its delta variance are unchanged."""
    control = arm([1, 2, 3, 6], [5, 5, 5, 5], d=[2, 2, 4, 4])
    treatment = arm([2, 2, 3, 5], [5, 5, 5, 5], d=[2, 3, 3, 4])
    fit = cuped_adjust(control, treatment)
    assert float(fit.theta) == 0.0
    raw = estimate_arm(control, MetricKind.RATIO)
    assert float(fit.control.mean) == pytest.approx(float(raw.mean))
    assert float(fit.control.var) == pytest.approx(float(raw.var))  # 1/18, the delta method
    assert float(fit.variance_reduction) == pytest.approx(0.0)


def test_a_correlated_covariate_cuts_the_variance_by_about_rho_squared() -> None:
    """With corr(Y, X) = 0.8 the variance drops by close to 0.64 on 20,000 users."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 10_000))
    y = 0.8 * x + 0.6 * rng.normal(size=(2, 10_000))
    fit = cuped_adjust(arm(list(y[0]), list(x[0])), arm(list(y[1]), list(x[1])))
    assert float(fit.theta) == pytest.approx(0.8, abs=0.02)
    assert float(fit.variance_reduction) == pytest.approx(0.64, abs=0.02)
