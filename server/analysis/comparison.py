"""One metric, two arms: the single path from per-arm sums to every number the report shows.

    sums --estimate_arm--> means and variances --(CUPED)--> adjusted
         --compare_estimates--> fixed-horizon CI and p   (stats.py)
         --sequence_half_width / always_valid_p_value--> always-valid CI and p (sequential.py)

Fixed and always-valid figures alike are built per scale from one (estimate, se) pair: the
relative lift's sequence and always-valid p come from the lift and its delta-method se, the
absolute difference's from the difference and its se. So on either scale and in either
analysis, p < alpha exactly when that scale's interval excludes zero.

The report calls it once per metric and treatment arm; the A/A validation calls it with
arrays of a thousand re-randomizations, so what is validated is what is reported.
"""

from __future__ import annotations

import msgspec
import numpy as np

from server.analysis.cuped import CupedFit, cuped_adjust
from server.analysis.moments import ArmMoments, FloatArray
from server.analysis.sequential import (
    DEFAULT_N_STAR,
    always_valid_p_value,
    sequence_half_width,
)
from server.analysis.stats import (
    ArmEstimate,
    Difference,
    MetricKind,
    compare_estimates,
    estimate_arm,
)

__all__ = ["Comparison", "compare_arms"]


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known about treatment vs control on one metric (arrays broadcast)."""

    kind: MetricKind
    control: ArmEstimate  # unadjusted, as users would recognise the number
    treatment: ArmEstimate
    difference: Difference  # CUPED-adjusted when a covariate was used
    seq_abs_low: FloatArray
    seq_abs_high: FloatArray
    seq_rel_low: FloatArray
    seq_rel_high: FloatArray
    seq_p_value: FloatArray  # the relative lift's, like difference.p_value
    seq_abs_p_value: FloatArray
    cuped: CupedFit | None = None


def compare_arms(
    control: ArmMoments,
    treatment: ArmMoments,
    kind: MetricKind,
    *,
    alpha: float,
    n_star: float = DEFAULT_N_STAR,
    cuped: bool = False,
) -> Comparison:
    """Compare two arms' sums; with cuped=True the x sums are the pre-experiment covariate."""
    raw_c, raw_t = estimate_arm(control, kind), estimate_arm(treatment, kind)
    fit = cuped_adjust(control, treatment) if cuped else None
    est_c, est_t = (fit.control, fit.treatment) if fit is not None else (raw_c, raw_t)
    diff = compare_estimates(est_c, est_t, alpha=alpha)
    n = np.asarray(control.n + treatment.n, dtype=np.float64)
    abs_width = sequence_half_width(diff.abs_se, n, alpha=alpha, n_star=n_star)
    rel_width = sequence_half_width(diff.rel_se, n, alpha=alpha, n_star=n_star)
    return Comparison(
        kind=kind,
        control=raw_c,
        treatment=raw_t,
        difference=diff,
        seq_abs_low=diff.abs_diff - abs_width,
        seq_abs_high=diff.abs_diff + abs_width,
        seq_rel_low=diff.rel_diff - rel_width,
        seq_rel_high=diff.rel_diff + rel_width,
        seq_p_value=always_valid_p_value(diff.rel_diff, diff.rel_se, n, alpha=alpha, n_star=n_star),
        seq_abs_p_value=always_valid_p_value(
            diff.abs_diff, diff.abs_se, n, alpha=alpha, n_star=n_star
        ),
        cuped=fit,
    )
