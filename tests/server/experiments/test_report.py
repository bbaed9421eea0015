"""The report struct and its JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from bench.aa_population import PopulationSpec, simulate_population, users_at
from server.experiments.analysis import AnalysisSpec, analyse_experiment
from server.experiments.report import Report, decode_report, encode_report

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SPEC = AnalysisSpec(
    experiment="ml_scanning",
    arms=("control", "treatment"),
    weights=(0.5, 0.5),
    started_at=datetime(2026, 11, 12, tzinfo=UTC),
    look=13,
)


def report(n_users: int = 1500) -> Report:
    pop = simulate_population(PopulationSpec(n_users=n_users, n_days=5, seed=3))
    labels = np.where(np.random.default_rng(3).random(n_users) < 0.5, "control", "treatment")
    return analyse_experiment(users_at(pop, 4, list(labels)), SPEC, now=NOW)


def test_json_round_trips_and_has_no_nan() -> None:
    """msgspec JSON decodes to an equal report; unknown values are null/absent, never NaN."""
    r = report()
    data = encode_report(r)
    assert b"NaN" not in data
    assert b"Infinity" not in data
    assert decode_report(data) == r
    assert msgspec.json.decode(data)["srm"]["flagged"] is False


def test_a_report_with_no_users_still_encodes() -> None:
    """Day zero: every metric has a note and no numbers, and the JSON is still valid."""
    r = analyse_experiment([], SPEC, now=NOW)
    assert decode_report(encode_report(r)) == r
    assert all(m.note and m.p_value is None for m in r.treatments[0].metrics)


def test_unknown_fields_in_a_stored_report_are_refused() -> None:
    """A report JSON from a different schema fails loudly instead of losing data."""
    data = msgspec.json.decode(encode_report(report(300)))
    data["surprise"] = 1
    with pytest.raises(msgspec.ValidationError, match="surprise"):
        decode_report(msgspec.json.encode(data))
