"""GrowthBook's stats engine (gbstats 0.8.0) as the reference the report's figures must match.

gbstats is a test-only dependency installed without its dependencies (`just setup` and CI
run `pip install --no-deps gbstats==0.8.0`): it pins numpy < 2 and pandas < 2 for its
DataFrame runner, which these tests never import; the modules they use need only numpy,
scipy and pydantic. Without it the parity tests skip, saying so, except under CI=true,
where a missing reference must fail instead of passing quietly.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pytest

__all__ = ["GBSTATS_VERSION", "arm_statistic", "gbstats_module"]

GBSTATS_VERSION = "0.8.0"


def gbstats_module(name: str) -> ModuleType:
    """Import gbstats.<name>, or skip (fail under CI=true) when gbstats is not installed."""
    try:
        return importlib.import_module(f"gbstats.{name}")
    except ImportError:
        message = f"gbstats {GBSTATS_VERSION} is not installed (pip install --no-deps gbstats)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {message}: the parity tests must run")
        pytest.skip(message)


def arm_statistic(kind: str, m: np.ndarray, d: np.ndarray) -> object:
    """The gbstats statistic of one arm from per-user numerators (and denominators)."""
    st = gbstats_module("models.statistics")
    n = len(m)
    if kind == "proportion":
        return st.ProportionStatistic(n=n, sum=float(m.sum()))
    mean = st.SampleMeanStatistic(n=n, sum=float(m.sum()), sum_squares=float((m * m).sum()))
    if kind == "mean":
        return mean
    return st.RatioStatistic(
        n=n,
        m_statistic=mean,
        d_statistic=st.SampleMeanStatistic(
            n=n, sum=float(d.sum()), sum_squares=float((d * d).sum())
        ),
        m_d_sum_of_products=float((m * d).sum()),
    )
