"""Latency summaries: nearest-rank percentiles, in milliseconds."""

from __future__ import annotations

import pytest

from bench.latency import percentile, summarize


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..100 is 50, p99 is 99, p100 is 100: values samples really took."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_percentile_of_one_sample_is_that_sample() -> None:
    """With one sample every percentile is it."""
    assert percentile([7.0], 1) == 7.0
    assert percentile([7.0], 99) == 7.0


def test_summary_converts_seconds_to_milliseconds_and_sorts() -> None:
    """Unsorted seconds in, sorted percentiles in ms out, max being the slowest sample."""
    s = summarize([0.003, 0.001, 0.002, 0.010])
    assert s.count == 4
    assert s.p50_ms == pytest.approx(2.0)
    assert s.p99_ms == pytest.approx(10.0)
    assert s.max_ms == pytest.approx(10.0)
    assert s.mean_ms == pytest.approx(4.0)


def test_empty_samples_are_refused() -> None:
    """No samples, no figures: a ValueError instead of a zero."""
    with pytest.raises(ValueError, match="at least one"):
        summarize([])


def test_out_of_range_percentile_is_refused() -> None:
    """q must lie in (0, 100]."""
    with pytest.raises(ValueError, match="q=0"):
        percentile([1.0], 0)
