"""From the experiment config and the report options to the analysis the report runs."""

from __future__ import annotations

from datetime import UTC, datetime

from server.analysis.kinds import Correction
from server.analysis.metrics_source import ReportOptions, analysis_spec, look_boundaries
from server.experiments.config import default_experiment

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_the_spec_carries_the_configs_arms_and_the_options_settings() -> None:
    """Arms and weights from the config; alpha, CUPED and the correction from the options."""
    options = ReportOptions(alpha=0.1, cuped=False, correction=Correction.BENJAMINI_HOCHBERG)
    spec = analysis_spec(default_experiment(NOW), options)
    assert (spec.arms, spec.weights) == (("control", "treatment"), (0.5, 0.5))
    assert (spec.alpha, spec.cuped, spec.correction) == (0.1, False, Correction.BENJAMINI_HOCHBERG)
    assert analysis_spec(default_experiment(NOW), ReportOptions()).correction is Correction.HOLM


def test_looks_end_at_each_utc_midnight_before_the_last_activity() -> None:
    """Started 26 Nov 12:00, active until 28 Nov 09:00: looks end 27 Nov and 28 Nov 00:00."""
    ends = look_boundaries(NOW, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    assert ends == [datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)]
