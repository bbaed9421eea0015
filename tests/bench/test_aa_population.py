"""The simulated A/A population."""

from __future__ import annotations

import numpy as np
import pytest

from bench.aa_population import (
    PopulationSpec,
    columns_at,
    exposed_at,
    simulate_population,
    users_at,
)

SPEC = PopulationSpec(n_users=500, n_days=5, seed=2)


def test_the_same_seed_gives_the_same_users() -> None:
    """Re-randomization needs fixed data: a spec always draws the same population."""
    a, b = simulate_population(SPEC), simulate_population(SPEC)
    assert np.array_equal(a.cumulative["n_scans"], b.cumulative["n_scans"])


def test_sums_only_grow_and_users_only_join_over_looks() -> None:
    """Cumulative sums never fall; the enrolled set grows to everyone by the last day."""
    pop = simulate_population(SPEC)
    scans = np.stack([columns_at(pop, k).n_scans for k in range(5)], axis=1)
    assert np.all(np.diff(scans, axis=1) >= 0)
    exposed = [int(exposed_at(pop, k).sum()) for k in range(5)]
    assert exposed == sorted(exposed)
    assert exposed[-1] == 500


def test_users_are_uneven_like_real_users() -> None:
    """Many scans per user, empties below scans, and empty rates that differ by user."""
    cols = columns_at(simulate_population(SPEC), 4)
    assert np.all(cols.n_empty_scans <= cols.n_scans)
    assert cols.n_scans.mean() > 5
    rates = cols.n_empty_scans[cols.n_scans >= 10] / cols.n_scans[cols.n_scans >= 10]
    assert rates.std() > 0.1  # far more than binomial noise around one shared rate


def test_users_without_history_have_no_pre_period() -> None:
    """About 30% of users are new: their pre-experiment fields are None, not zero."""
    pop = simulate_population(SPEC)
    labels = ["control"] * 500
    users = users_at(pop, 4, labels)
    missing = sum(u.pre_n_scans is None for u in users) / len(users)
    assert 0.2 < missing < 0.4


def test_bad_looks_and_labels_are_refused() -> None:
    """A look past the last day or one label short names the expected range."""
    pop = simulate_population(SPEC)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        columns_at(pop, 5)
    with pytest.raises(ValueError, match="one arm label per user"):
        users_at(pop, 0, ["control"])
