"""Confidence sequences: GrowthBook's formula, consistency with the p-value, and validity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from server.analysis.sequential import (
    always_valid_p_value,
    mixture_rho,
    sequence_half_width,
)


def test_rho_matches_the_formula_at_the_defaults() -> None:
    """rho = sqrt((-2 ln 0.05 + ln(-2 ln 0.05 + 1)) / 5000) = 0.0398401."""
    assert mixture_rho(0.05, 5000) == pytest.approx(0.0398401, abs=1e-7)


def test_half_width_at_n_star_is_about_3_04_standard_errors() -> None:
    """At n = N* = 5000 the 95% sequence is 3.035 se wide each side (fixed: 1.96 se)."""
    n, rho = 5000, mixture_rho(0.05, 5000)
    growth = n * rho**2 + 1
    by_hand = math.sqrt(n) * math.sqrt(
        2 * growth * math.log(math.sqrt(growth) / 0.05) / (n * rho) ** 2
    )
    width = float(sequence_half_width(1.0, n, alpha=0.05))
    assert width == pytest.approx(by_hand, rel=1e-12)
    assert width == pytest.approx(3.0352, abs=1e-4)


@pytest.mark.parametrize("n", [200, 5000, 100_000])
def test_p_value_crosses_alpha_exactly_where_the_sequence_excludes_zero(n: int) -> None:
    """An estimate just inside the half-width has p > alpha, just outside p < alpha."""
    width = float(sequence_half_width(1.0, n, alpha=0.05))
    inside = float(always_valid_p_value(width * 0.999, 1.0, n, alpha=0.05))
    outside = float(always_valid_p_value(width * 1.001, 1.0, n, alpha=0.05))
    assert inside > 0.05 > outside
    assert float(always_valid_p_value(width, 1.0, n, alpha=0.05)) == pytest.approx(0.05)


@pytest.mark.parametrize("z", [0.5, 2.0, 3.0, 5.0])
def test_always_valid_p_is_never_below_the_fixed_horizon_p(z: float) -> None:
    """Safety costs power: the always-valid p is at least the fixed two-sided p."""
    fixed = 2 * sps.norm.sf(z)
    assert float(always_valid_p_value(z, 1.0, 5000, alpha=0.05)) >= fixed


def test_looking_after_every_batch_keeps_the_error_rate_below_alpha() -> None:
    """Null data read at 50 looks: the sequence crosses alpha in < 5% of runs, naive z in > 15%."""
    rng = np.random.default_rng(11)
    runs, batches, per_batch = 2000, 50, 40
    x = rng.normal(size=(runs, batches, per_batch)).sum(axis=2).cumsum(axis=1)
    n = per_batch * np.arange(1, batches + 1)
    mean, se = x / n, 1.0 / np.sqrt(n)
    seq = always_valid_p_value(mean, se, n, alpha=0.05, n_star=1000)
    naive = 2 * sps.norm.sf(np.abs(mean / se))
    assert np.mean(seq.min(axis=1) < 0.05) < 0.05
    assert np.mean(naive.min(axis=1) < 0.05) > 0.15


def test_bad_settings_are_refused() -> None:
    """alpha outside (0, 1) and a non-positive N* name the bad value."""
    with pytest.raises(ValueError, match="alpha"):
        mixture_rho(0.0, 5000)
    with pytest.raises(ValueError, match="n_star"):
        mixture_rho(0.05, 0)
