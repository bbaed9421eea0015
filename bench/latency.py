"""Latency summaries: the percentiles every bench figure is quoted in.

Percentiles are nearest-rank on the sorted samples (the value a sample actually took, never an
interpolation between two), so "p99" of 100 samples is the 99th smallest and the max is a
real request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

__all__ = ["LatencySummary", "percentile", "summarize"]


class LatencySummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Percentiles of one set of latencies, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100] of values already sorted ascending."""
    if not sorted_values:
        raise ValueError("percentile of no samples: expected at least one value")
    if not 0.0 < q <= 100.0:
        raise ValueError(f"percentile q={q!r}: expected 0 < q <= 100")
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def summarize(seconds: Sequence[float]) -> LatencySummary:
    """Summary of latencies given in seconds (figures come out in milliseconds)."""
    if not seconds:
        raise ValueError("no latencies to summarize: expected at least one sample")
    ordered = sorted(seconds)
    ms = 1000.0
    return LatencySummary(
        count=len(ordered),
        mean_ms=sum(ordered) / len(ordered) * ms,
        p50_ms=percentile(ordered, 50) * ms,
        p90_ms=percentile(ordered, 90) * ms,
        p95_ms=percentile(ordered, 95) * ms,
        p99_ms=percentile(ordered, 99) * ms,
        max_ms=ordered[-1] * ms,
    )
