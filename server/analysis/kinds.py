"""The names a report uses for metric kinds, tests and corrections, apart from the statistics.

They live here, not in `stats`, so that the report's wire types (and through them the
serving app's OpenAPI schema) can be imported without scipy: the workers that answer
/v1/predict never load it unless someone asks for a report.
"""

from __future__ import annotations

import enum

__all__ = ["Correction", "MetricKind", "StatTest"]


class MetricKind(enum.StrEnum):
    """How a metric aggregates over an arm's users, which decides its per-user variance.

    Every kind is counted over all users exposed to the experiment, so the denominator of
    each test is fixed by the assignment, never by what the treatment made users do.
    """

    MEAN = "mean"  # one value per exposed user (scans per user): the sample variance
    PROPORTION = "proportion"  # one 0/1 per exposed user (came back): p (1 - p)
    RATIO = "ratio"  # sum over users / sum over users (ratings per rating): delta method


class StatTest(enum.StrEnum):
    """The test that produced a p-value, named in the report.

    One for every kind: Welch's t on the relative lift, with the lift's variance from the
    delta method and Welch-Satterthwaite degrees of freedom (GrowthBook's frequentist
    engine does the same). The kind only decides the per-user variance fed into it.
    """

    WELCH_T = "welch_t"


class Correction(enum.StrEnum):
    """How the report adjusts p-values for testing many metrics at once."""

    HOLM = "holm"  # Holm-Bonferroni: family-wise error rate <= alpha
    BENJAMINI_HOCHBERG = "benjamini_hochberg"  # false discovery rate <= alpha
    NONE = "none"  # raw p-values (one pre-registered metric, say)
