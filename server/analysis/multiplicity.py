"""Multiple-comparison corrections: adjusted p-values for a family of tests.

A report tests nine metrics at once. Read raw, each at alpha = 0.05, an experiment with no
effect at all shows at least one "significant" metric far more often than 5% of the time
(up to 1 - 0.95^9 = 37% for independent metrics). Adjusted p-values fix that for the family:

    Holm (1979), step-down:  sort p ascending; adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))
        the chance that any true null is rejected (family-wise error rate) stays <= alpha,
        for any dependence between the tests; uniformly more powerful than Bonferroni.
    Benjamini-Hochberg (1995), step-up:  adj_(i) = min_{j >= i} min(1, m p_(j) / j)
        the expected share of false discoveries among rejections stays <= alpha (for
        independent or positively dependent tests); more power, weaker promise.

Both are what GrowthBook offers. BH is scipy's `false_discovery_control`; scipy has no
Holm, so it is written out here. Tests whose p-value is NaN (not enough data) are not part
of the family: they neither count in m nor get an adjusted value. Arrays broadcast over the
leading axes, the family is the last axis, so the A/A validation adjusts a thousand runs at
once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from server.analysis.kinds import Correction
from server.analysis.moments import FloatArray

__all__ = ["Correction", "adjust_p_values"]


def _holm(p: FloatArray) -> FloatArray:
    order = np.argsort(p, axis=-1)  # NaN sorts last, so ranks count the finite ones first
    ranked = np.take_along_axis(p, order, axis=-1)
    m = np.sum(np.isfinite(p), axis=-1, keepdims=True)
    factor = m - np.arange(p.shape[-1])
    stepped = np.fmax.accumulate(np.minimum(factor * ranked, 1.0), axis=-1)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, stepped, axis=-1)
    return np.where(np.isfinite(p), adjusted, np.nan)


def _benjamini_hochberg(p: FloatArray) -> FloatArray:
    flat = p.reshape(-1, p.shape[-1])
    out = np.full_like(flat, np.nan)
    for row, values in enumerate(flat):
        finite = np.isfinite(values)
        if finite.any():
            out[row, finite] = sps.false_discovery_control(values[finite], method="bh")
    return out.reshape(p.shape)


def adjust_p_values(p_values: npt.ArrayLike, correction: Correction) -> FloatArray:
    """Adjusted p-values for the family on the last axis (NaN stays NaN, outside the family)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim == 0:
        raise ValueError("need a family of p-values (at least one axis), got a scalar")
    finite = p[np.isfinite(p)]
    if np.any((finite < 0.0) | (finite > 1.0)):
        raise ValueError(f"p-values must lie in [0, 1], got {finite[(finite < 0) | (finite > 1)]}")
    if p.shape[-1] == 0 or correction is Correction.NONE:
        return p.copy()
    if correction is Correction.HOLM:
        return _holm(p)
    return _benjamini_hochberg(p)
