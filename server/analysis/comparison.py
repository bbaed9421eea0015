"""One metric, two arms: the single path from per-arm sums to every number the report shows.

    sums --estimate_arm--> means and variances --(CUPED)--> adjusted
         --compare_estimates--> fixed-horizon CI and p   (stats.py)
         --sequence_half_width / always_valid_p_value--> always-valid CI and p (sequential.py)

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
    StatTest,
    compare_estimates,
    estimate_arm,
)

__all__ = ["Comparison", "choose_test", "compare_arms"]


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
    seq_p_value: FloatArray
    cuped: CupedFit | None = None


def choose_test(kind: MetricKind, *, adjusted: bool) -> StatTest:
    """Welch for per-user means, the pooled z for plain proportions, else the delta-method z."""
    if kind is MetricKind.MEAN:
        return StatTest.WELCH_T
    if kind is MetricKind.PROPORTION and not adjusted:
        return StatTest.TWO_PROPORTION_Z
    return StatTest.DELTA_Z


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
    diff = compare_estimates(est_c, est_t, choose_test(kind, adjusted=fit is not None), alpha=alpha)
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
        seq_p_value=always_valid_p_value(diff.abs_diff, diff.abs_se, n, alpha=alpha, n_star=n_star),
        cuped=fit,
    )
