"""Per-arm sufficient statistics: the ten sums every test in the analysis is built from.

Each user contributes a numerator M (the metric's sum for that user: empty scans, seconds,
a 0/1 flag), a denominator D (the unit it is counted per: scans, sessions, or 1 for a
per-user value) and optionally a pre-experiment covariate X for CUPED. An arm is then
summarised by n and the sums of M, D, X and of their squares and cross products.

Reducing users to sums first means one code path serves the report (one assignment: sums
are `indicator @ columns`) and the A/A validation (a thousand re-randomizations at once:
sums are `indicators @ columns`, one matrix product), so the benchmark checks the very
arithmetic the report uses.
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["MOMENT_FIELDS", "ArmMoments", "BoolArray", "FloatArray", "moment_columns"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The order of the last axis of `moment_columns` and `ArmMoments.from_sums`.
MOMENT_FIELDS: Final = ("n", "m", "d", "x", "mm", "dd", "xx", "md", "mx", "dx")


class ArmMoments(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over one arm's users; each field is an array so many arms share one call."""

    n: FloatArray
    m: FloatArray
    d: FloatArray
    x: FloatArray
    mm: FloatArray
    dd: FloatArray
    xx: FloatArray
    md: FloatArray
    mx: FloatArray
    dx: FloatArray

    @classmethod
    def from_sums(cls, sums: npt.ArrayLike) -> ArmMoments:
        """Split an array whose last axis holds the sums in MOMENT_FIELDS order."""
        array = np.asarray(sums, dtype=np.float64)
        if array.shape[-1:] != (len(MOMENT_FIELDS),):
            raise ValueError(
                f"sums must end in an axis of {len(MOMENT_FIELDS)} ({', '.join(MOMENT_FIELDS)}), "
                f"got shape {array.shape}"
            )
        return cls(**{name: array[..., i] for i, name in enumerate(MOMENT_FIELDS)})

    def minus(self, other: ArmMoments) -> ArmMoments:
        """The sums of the users in self but not in other (e.g. all users minus treatment)."""
        return ArmMoments(
            **{name: getattr(self, name) - getattr(other, name) for name in MOMENT_FIELDS}
        )


def moment_columns(
    m: npt.ArrayLike,
    d: npt.ArrayLike,
    x: npt.ArrayLike | None = None,
    *,
    valid: npt.ArrayLike | None = None,
) -> FloatArray:
    """One row per user with the ten products to sum, zeros for users outside the metric.

    `valid` marks users the metric is defined for (a per-scan rate needs at least one scan);
    the others contribute nothing, not even to n. Without a covariate the x columns are 0.
    """
    m_arr = np.asarray(m, dtype=np.float64)
    d_arr = np.asarray(d, dtype=np.float64)
    x_arr = np.zeros_like(m_arr) if x is None else np.asarray(x, dtype=np.float64)
    if not m_arr.shape == d_arr.shape == x_arr.shape:
        raise ValueError(
            f"m, d and x must have one value per user, got shapes "
            f"{m_arr.shape}, {d_arr.shape} and {x_arr.shape}"
        )
    keep = np.ones(m_arr.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    # Zero the inputs first: a NaN covariate of an excluded user must not leak into a sum.
    m_arr = np.where(keep, m_arr, 0.0)
    d_arr = np.where(keep, d_arr, 0.0)
    x_arr = np.where(keep, x_arr, 0.0)
    one = keep.astype(np.float64)
    return np.stack(
        [
            one,
            m_arr,
            d_arr,
            x_arr,
            m_arr * m_arr,
            d_arr * d_arr,
            x_arr * x_arr,
            m_arr * d_arr,
            m_arr * x_arr,
            d_arr * x_arr,
        ],
        axis=-1,
    )
