"""Fixed-horizon tests: per-arm estimates, Welch's t, the two-proportion z and the delta method.

    per-arm estimate (ratio R = sum M / sum D over the arm's users; a per-user mean is R with D = 1)
        Var(R) = (s_M^2 - 2 R s_MD + R^2 s_D^2) / (n mu_D^2)          delta method
        Var(p) = p (1 - p) / n                                       proportions
    difference  delta = R_t - R_c,  Var = Var(R_t) + Var(R_c)
        Welch:     t = delta / se,  df = (v_c + v_t)^2 / (v_c^2 / (n_c - 1) + v_t^2 / (n_t - 1))
        2-prop z:  z = delta / sqrt(p (1 - p) (1/n_c + 1/n_t)), p pooled; the CI is unpooled
        ratio z:   z = delta / se (the delta method makes R asymptotically normal)
    relative lift  L = delta / R_c,  Var(L) = Var(R_c) R_t^2 / R_c^4 + Var(R_t) / R_c^2

(REFERENCE.md, "Analysis"; GrowthBook gbstats uses the same forms.) Every function takes
arrays and broadcasts, so the A/A validation runs a thousand re-randomizations in one call.
Impossible cases (an arm with fewer than two users, zero variance) come out as NaN, never as
an exception: the caller decides how to say "not enough data".
"""

from __future__ import annotations

import msgspec
import numpy as np
from scipy import stats as sps

from server.analysis.kinds import MetricKind, StatTest
from server.analysis.moments import ArmMoments, FloatArray

__all__ = [
    "ArmEstimate",
    "Difference",
    "MetricKind",
    "StatTest",
    "compare_estimates",
    "estimate_arm",
    "welch_df",
]


class ArmEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """An arm's estimate of a metric and the variance of that estimate (not of the users)."""

    n: FloatArray
    mean: FloatArray
    var: FloatArray


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """Treatment minus control: absolute and relative, each with its CI, and one p-value."""

    test: StatTest
    abs_diff: FloatArray
    abs_se: FloatArray
    abs_low: FloatArray
    abs_high: FloatArray
    rel_diff: FloatArray
    rel_se: FloatArray
    rel_low: FloatArray
    rel_high: FloatArray
    statistic: FloatArray
    df: FloatArray  # inf for z-tests
    p_value: FloatArray


def _sample_cov(
    sum_ab: FloatArray, sum_a: FloatArray, sum_b: FloatArray, n: FloatArray
) -> FloatArray:
    """Sample covariance (n - 1 in the denominator) from sums."""
    return np.asarray((sum_ab - sum_a * sum_b / n) / (n - 1.0), dtype=np.float64)


def estimate_arm(moments: ArmMoments, kind: MetricKind) -> ArmEstimate:
    """The arm's metric value and its variance, by the formula its kind calls for."""
    mo = moments
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = mo.m / mo.d
        if kind is MetricKind.PROPORTION:
            var = mean * (1.0 - mean) / mo.n
        else:
            mu_d = mo.d / mo.n
            s_mm = _sample_cov(mo.mm, mo.m, mo.m, mo.n)
            s_dd = _sample_cov(mo.dd, mo.d, mo.d, mo.n)
            s_md = _sample_cov(mo.md, mo.m, mo.d, mo.n)
            var = (s_mm - 2.0 * mean * s_md + mean**2 * s_dd) / (mo.n * mu_d**2)
        # One user gives no variance; mark it unknown rather than zero.
        var = np.where(mo.n >= 2.0, var, np.nan)
    return ArmEstimate(
        n=np.asarray(mo.n, dtype=np.float64),
        mean=np.asarray(mean, dtype=np.float64),
        var=np.asarray(var, dtype=np.float64),
    )


def welch_df(control: ArmEstimate, treatment: ArmEstimate) -> FloatArray:
    """Welch-Satterthwaite degrees of freedom from the variances of the two means."""
    vc, vt = control.var, treatment.var
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (vc + vt) ** 2 / (vc**2 / (control.n - 1.0) + vt**2 / (treatment.n - 1.0))
    return np.asarray(df, dtype=np.float64)


def compare_estimates(
    control: ArmEstimate, treatment: ArmEstimate, test: StatTest, *, alpha: float
) -> Difference:
    """Absolute and relative difference with (1 - alpha) CIs and a two-sided p-value."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = treatment.mean - control.mean
        se = np.sqrt(control.var + treatment.var)
        if test is StatTest.WELCH_T:
            df = welch_df(control, treatment)
            statistic = diff / se
            p_value = 2.0 * sps.t.sf(np.abs(statistic), df)
            crit = sps.t.ppf(1.0 - alpha / 2.0, df)
        else:
            df = np.full_like(diff, np.inf)
            if test is StatTest.TWO_PROPORTION_Z:
                # The p-value uses the variance under the null (one shared rate).
                pooled = (control.mean * control.n + treatment.mean * treatment.n) / (
                    control.n + treatment.n
                )
                se_null = np.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
                statistic = diff / se_null
            else:
                statistic = diff / se
            p_value = 2.0 * sps.norm.sf(np.abs(statistic))
            crit = np.full_like(diff, sps.norm.ppf(1.0 - alpha / 2.0))
        rel = diff / control.mean
        rel_se = np.sqrt(
            control.var * treatment.mean**2 / control.mean**4 + treatment.var / control.mean**2
        )
    return Difference(
        test=test,
        abs_diff=np.asarray(diff, dtype=np.float64),
        abs_se=np.asarray(se, dtype=np.float64),
        abs_low=np.asarray(diff - crit * se, dtype=np.float64),
        abs_high=np.asarray(diff + crit * se, dtype=np.float64),
        rel_diff=np.asarray(rel, dtype=np.float64),
        rel_se=np.asarray(rel_se, dtype=np.float64),
        rel_low=np.asarray(rel - crit * rel_se, dtype=np.float64),
        rel_high=np.asarray(rel + crit * rel_se, dtype=np.float64),
        statistic=np.asarray(statistic, dtype=np.float64),
        df=np.asarray(df, dtype=np.float64),
        p_value=np.asarray(p_value, dtype=np.float64),
    )
