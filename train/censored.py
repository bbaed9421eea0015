"""Durations cut off by the scanner's timeout: a censored (Tobit) fit on the log scale.

A scan that times out logs the timeout, not its real duration, so the top of the duration
distribution is a pile of identical values. Fitting them as if they were real durations
breaks the model's additive structure on the log scale (a huge universe, fine bars and a
long lookback each add their own effect, but the log of a capped value stops adding up):
boosted trees then predict well past the timeout for the slowest scans (measured: up to
160 s against a 120 s cap) and too short just below it.

The fit is EM for a censored normal on log duration: fit, then replace each timed-out
row's target by its expected log duration given that it exceeded the timeout,
mu + sigma * pdf(a) / sf(a) with a = (log cap - mu) / sigma, and refit. Predictions are
clipped at the cap afterwards, so the median of a capped duration, min(median, cap), comes
out. Measured on the default data: MAE 1.14x the oracle without this, 1.04x with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

__all__ = ["MIN_CENSORED_SHARE", "fit_censored_log", "timeout_mask"]

Floats = npt.NDArray[np.float64]
# A pile at the maximum this large is a timeout, not a coincidence of continuous values.
MIN_CENSORED_SHARE: Final = 0.005
MIN_CENSORED_ROWS: Final = 5


def timeout_mask(durations: Floats) -> npt.NDArray[np.bool_]:
    """Rows sitting at the largest duration, when enough do to look like a timeout."""
    at_max = durations >= durations.max()
    enough = at_max.sum() >= max(MIN_CENSORED_ROWS, MIN_CENSORED_SHARE * durations.size)
    return at_max if enough else np.zeros_like(at_max)


def fit_censored_log(
    make_model: Callable[[], Any], x: npt.NDArray[np.float32], durations: Floats, rounds: int
) -> tuple[Any, float]:
    """A regressor of log duration fitted with `rounds` EM steps, and the cap (max duration)."""
    log_y = np.log(durations)
    cap = float(durations.max())
    censored = timeout_mask(durations)
    model = make_model().fit(x, log_y)
    if not censored.any():
        return model, cap
    log_cap = np.log(cap)
    for _ in range(rounds):
        mu = model.predict(x)
        sigma = max(float(np.std((log_y - mu)[~censored])), 1e-6)
        a = (log_cap - mu[censored]) / sigma
        # For rows predicted far below the cap sf(a) underflows; the max() below then
        # imputes the cap itself.
        tail = norm.pdf(a) / np.clip(norm.sf(a), 1e-300, None)
        target = log_y.copy()
        target[censored] = np.maximum(mu[censored] + sigma * tail, log_cap)
        model = make_model().fit(x, target)
    return model, cap
