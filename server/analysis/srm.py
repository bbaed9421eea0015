"""Sample-ratio mismatch: do the arms hold the share of users their weights promise?

A chi-square goodness-of-fit test of the users per arm against total x weight share
(scipy.stats.chisquare). A mismatch means assignment or logging lost users unevenly (a
redirect that drops some, a bot filter, a crash in one arm), and then every comparison is
between groups that differ in more than the treatment: the report shows it first.
GrowthBook flags p < 0.001 (Statsig alerts below 0.001 too). On 10,000 users with 50/50
weights, 5,100/4,900 gives p = 0.0455 (fine) and 5,200/4,800 gives p = 6.3e-5 (mismatch).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from server.analysis.moments import FloatArray

__all__ = ["DEFAULT_SRM_THRESHOLD", "SrmTest", "srm_test"]

DEFAULT_SRM_THRESHOLD = 0.001


class SrmTest(msgspec.Struct, frozen=True, kw_only=True):
    """Expected counts, chi-square statistic and p-value; arrays when counts are batched."""

    expected: FloatArray
    statistic: FloatArray
    p_value: FloatArray


def srm_test(counts: npt.ArrayLike, weights: Sequence[float]) -> SrmTest:
    """Chi-square test of counts (last axis: one entry per arm) against the weights.

    Users in an arm of weight 0 are a mismatch by definition (p = 0).
    """
    observed = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if observed.shape[-1:] != w.shape or w.ndim != 1 or len(w) < 2:
        raise ValueError(
            f"need one count per arm and at least two arms: counts have shape {observed.shape}, "
            f"weights {list(weights)}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0.0) or not w.sum() > 0.0:
        raise ValueError(f"weights must be non-negative, finite and not all 0, got {list(weights)}")
    if np.any(observed < 0.0):
        raise ValueError(f"counts must be non-negative, got {observed.tolist()}")
    total = observed.sum(axis=-1, keepdims=True)
    expected = total * (w / w.sum())
    # An arm switched off (weight 0) must hold nobody; the test runs on the others.
    live = w > 0.0
    statistic = np.zeros(observed.shape[:-1])
    p_value = np.ones(observed.shape[:-1])
    if live.sum() >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            live_obs = observed[..., live]
            live_total = live_obs.sum(axis=-1, keepdims=True)
            live_exp = live_total * (w[live] / w[live].sum())
            result = sps.chisquare(live_obs, f_exp=live_exp, axis=-1)
        # No users yet is no evidence of a mismatch.
        empty = live_total[..., 0] == 0.0
        statistic = np.where(empty, 0.0, result.statistic)
        p_value = np.where(empty, 1.0, result.pvalue)
    stray = observed[..., ~live].sum(axis=-1) > 0.0
    statistic = np.where(stray, np.inf, statistic)
    p_value = np.where(stray, 0.0, p_value)
    return SrmTest(
        expected=np.asarray(expected, dtype=np.float64),
        statistic=np.asarray(statistic, dtype=np.float64),
        p_value=np.asarray(p_value, dtype=np.float64),
    )
