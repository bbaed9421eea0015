"""The names a report uses for metric kinds and tests, apart from the statistics.

They live here, not in `stats`, so that the report's wire types (and through them the
serving app's OpenAPI schema) can be imported without scipy: the workers that answer
/v1/predict never load it unless someone asks for a report.
"""

from __future__ import annotations

import enum

__all__ = ["MetricKind", "StatTest"]


class MetricKind(enum.StrEnum):
    """How a metric aggregates over an arm's users, which decides its test."""

    MEAN = "mean"  # one value per user (their mean satisfaction): Welch's t-test
    PROPORTION = "proportion"  # one 0/1 per user (came back): two-proportion z-test
    RATIO = "ratio"  # sum over users / sum over users (empty scans per scan): delta method


class StatTest(enum.StrEnum):
    """The test that produced a p-value, named in the report."""

    WELCH_T = "welch_t"
    TWO_PROPORTION_Z = "two_proportion_z"
    DELTA_Z = "delta_method_z"
