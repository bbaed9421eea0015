"""CUPED: remove the part of a metric that each user's pre-experiment behaviour predicts.

    Y_adj = Y - theta (X - mean X),   theta = Cov(Y, X) / Var(X) pooled over both arms

(Deng, Xu, Kohavi and Walker, "Improving the Sensitivity of Online Controlled Experiments
by Utilizing Pre-Experiment Data", WSDM 2013.) X is measured before exposure, so it is
independent of the assignment: the adjustment leaves the expected difference alone and
shrinks its variance by about corr(Y, X)^2.

Ratio metrics (empty scans per scan) are first linearised by the delta method, per user
    Y_i = (M_i - R D_i) / mu_D,   R = sum M / sum D and mu_D = mean D within the arm,
whose mean is 0 and whose variance over n is the delta-method Var(R); the adjusted
estimate is R - theta (mean_arm X - mean_pooled X). A per-user mean is the case D = 1.
theta pools the within-arm covariances of both arms, as GrowthBook's gbstats does up to
the between-arm term, which vanishes under random assignment.
"""

from __future__ import annotations

import msgspec
import numpy as np

from server.analysis.moments import ArmMoments, FloatArray
from server.analysis.stats import ArmEstimate

__all__ = ["CupedFit", "cuped_adjust"]


class CupedFit(msgspec.Struct, frozen=True, kw_only=True):
    """Both arms' adjusted estimates, the pooled theta and the variance it removed."""

    control: ArmEstimate
    treatment: ArmEstimate
    theta: FloatArray
    # 1 - Var(adjusted difference) / Var(unadjusted difference); 0.3 = 30% less variance.
    variance_reduction: FloatArray


class _Centered(msgspec.Struct, frozen=True):
    ratio: FloatArray
    s_yy: FloatArray  # sum of squares of the linearised metric (its mean is 0)
    s_yx: FloatArray  # sum of its products with X
    s_xx: FloatArray  # centred sum of squares of X


def _center(mo: ArmMoments) -> _Centered:
    ratio = mo.m / mo.d
    mu_d = mo.d / mo.n
    # Sum (M - R D)^2 / mu_D^2 and sum (M - R D) X / mu_D, expanded into the stored sums.
    s_yy = (mo.mm - 2.0 * ratio * mo.md + ratio**2 * mo.dd) / mu_d**2
    s_yx = (mo.mx - ratio * mo.dx) / mu_d
    s_xx = mo.xx - mo.x**2 / mo.n
    return _Centered(ratio, s_yy, s_yx, s_xx)


def _variance(c: _Centered, theta: FloatArray, n: FloatArray) -> FloatArray:
    """Variance of the arm's adjusted estimate: Var(Y - theta X) / n."""
    resid = c.s_yy - 2.0 * theta * c.s_yx + theta**2 * c.s_xx
    var = resid / ((n - 1.0) * n)
    return np.asarray(np.where(n >= 2.0, var, np.nan), dtype=np.float64)


def cuped_adjust(control: ArmMoments, treatment: ArmMoments) -> CupedFit:
    """Adjust both arms with one theta fitted on the pooled within-arm covariances."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cc, ct = _center(control), _center(treatment)
        s_xx = cc.s_xx + ct.s_xx
        # A constant covariate predicts nothing: theta 0 leaves the estimate as it was.
        theta = np.where(s_xx > 0.0, (cc.s_yx + ct.s_yx) / s_xx, 0.0)
        x_pooled = (control.x + treatment.x) / (control.n + treatment.n)
        mean_c = cc.ratio - theta * (control.x / control.n - x_pooled)
        mean_t = ct.ratio - theta * (treatment.x / treatment.n - x_pooled)
        zero = np.zeros_like(theta)
        var_c, var_t = _variance(cc, theta, control.n), _variance(ct, theta, treatment.n)
        raw = _variance(cc, zero, control.n) + _variance(ct, zero, treatment.n)
        reduction = 1.0 - (var_c + var_t) / raw
    return CupedFit(
        control=ArmEstimate(n=control.n, mean=np.asarray(mean_c, dtype=np.float64), var=var_c),
        treatment=ArmEstimate(n=treatment.n, mean=np.asarray(mean_t, dtype=np.float64), var=var_t),
        theta=np.asarray(theta, dtype=np.float64),
        variance_reduction=np.asarray(reduction, dtype=np.float64),
    )
