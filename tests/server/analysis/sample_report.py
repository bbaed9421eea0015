"""One realistic report for the tests of its renderings: 1,500 A/A users over five days."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from bench.aa_population import PopulationSpec, simulate_population, users_at
from server.analysis.analysis import AnalysisSpec, analyse_experiment
from server.analysis.report import Report

__all__ = ["NOW", "SPEC", "sample_report"]

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = AnalysisSpec(
    experiment="ml_scanning",
    arms=("control", "treatment"),
    weights=(0.5, 0.5),
    started_at=datetime(2026, 11, 12, tzinfo=UTC),
    look=13,
)


def sample_report(n_users: int = 1500) -> Report:
    """The report of a seeded population with arms drawn at random (no true effect)."""
    pop = simulate_population(PopulationSpec(n_users=n_users, n_days=5, seed=3))
    labels = np.where(np.random.default_rng(3).random(n_users) < 0.5, "control", "treatment")
    return analyse_experiment(users_at(pop, 4, list(labels)), SPEC, now=NOW)
