"""Always-valid inference: asymptotic confidence sequences, safe to look at every day.

A fixed-horizon 95% CI covers the truth at one pre-chosen sample size; re-read daily, the
chance that it ever excludes a true zero grows far beyond 5%. A confidence sequence covers
the truth at every sample size at once (Waudby-Smith, Arnold, Wu, Ramdas and Howard,
"Time-uniform central limit theory and asymptotic confidence sequences", eq. 9), as
GrowthBook uses it:

    rho        = sqrt((-2 ln a + ln(-2 ln a + 1)) / N*)
    half-width = sigma sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / a) / (N rho)^2)

with N the users in both arms, sigma^2 = N Var(estimate) the per-user variance, and N*
the sample size at which the sequence is tightest (GrowthBook's default 5,000).

The always-valid p-value is the smallest a whose sequence (rho held at the configured
alpha) excludes zero. Solving |estimate| = half-width for a gives, with z = estimate / se,

    p = min(1, sqrt(N rho^2 + 1) exp(-z^2 N rho^2 / (2 (N rho^2 + 1))))

which is the normal-mixture mSPRT p-value (Johari, Pekelis, Walsh) with mixing variance
rho^2; p < alpha exactly when the sequence excludes zero.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from server.analysis.moments import FloatArray

__all__ = ["DEFAULT_N_STAR", "always_valid_p_value", "mixture_rho", "sequence_half_width"]

DEFAULT_N_STAR = 5000


def mixture_rho(alpha: float, n_star: float) -> float:
    """The mixing scale that makes the sequence tightest at n_star users."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not n_star > 0:
        raise ValueError(f"n_star (the sample size to tune for) must be positive, got {n_star}")
    log_a = -2.0 * math.log(alpha)
    return math.sqrt((log_a + math.log(log_a + 1.0)) / n_star)


def sequence_half_width(
    se: npt.ArrayLike, n: npt.ArrayLike, *, alpha: float, n_star: float = DEFAULT_N_STAR
) -> FloatArray:
    """Half-width of the (1 - alpha) confidence sequence around an estimate with error se."""
    rho = mixture_rho(alpha, n_star)
    se_arr = np.asarray(se, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = se_arr * np.sqrt(n_arr)
        growth = n_arr * rho**2 + 1.0
        width = sigma * np.sqrt(2.0 * growth * np.log(np.sqrt(growth) / alpha) / (n_arr * rho) ** 2)
    return np.asarray(width, dtype=np.float64)


def always_valid_p_value(
    estimate: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    alpha: float,
    n_star: float = DEFAULT_N_STAR,
) -> FloatArray:
    """The p-value that may be read at every look: below alpha iff the sequence excludes 0."""
    rho = mixture_rho(alpha, n_star)
    n_arr = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = (np.asarray(estimate, dtype=np.float64) / np.asarray(se, dtype=np.float64)) ** 2
        growth = n_arr * rho**2 + 1.0
        p = np.sqrt(growth) * np.exp(-z2 * n_arr * rho**2 / (2.0 * growth))
    return np.asarray(np.minimum(p, 1.0), dtype=np.float64)
