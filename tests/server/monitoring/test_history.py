"""Service history rollups: each worker's counter growth lands in the store per minute,
workers merge exactly, quantiles are Prometheus's, and a failed write loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.monitoring.history import (
    API_REQUESTS,
    PREDICTION_LATENCY,
    HistoryRecorder,
    quantile,
    series,
)
from server.monitoring.metrics import Metrics
from server.store.interface import Store
from tests.server.conftest import make_settings
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

T0 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def _worker(tmp_path: Path, latencies: list[tuple[str, str, float]]) -> HistoryRecorder:
    metrics = Metrics(make_settings(tmp_path / "artifacts"))
    for route, status, seconds in latencies:
        metrics.observe_request(route, "POST", status, seconds)
    return HistoryRecorder(metrics)


def test_quantile_interpolates_inside_the_bucket_as_prometheus_does() -> None:
    """histogram_quantile: linear inside the bucket holding the rank; +Inf gives its floor."""
    buckets = [(0.0, 0.01, 50.0), (0.01, 0.02, 50.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.75, buckets) == pytest.approx(0.015)
    assert quantile(0.99, [(0.0, 0.01, 1.0), (0.01, float("inf"), 99.0)]) == 0.01
    # an empty bucket left out does not move the next one's lower bound
    assert quantile(0.5, [(0.02, 0.05, 10.0)]) == pytest.approx(0.035)
    assert quantile(0.5, []) is None


@pytest.mark.anyio
async def test_two_workers_merge_exactly_in_the_store(store: Store, tmp_path: Path) -> None:
    """Requests by status class and latency buckets of two workers add up in one minute;
    probes and 5xx answers stay out of the latency figures, as in the latency SLI."""
    a = _worker(
        tmp_path / "a",
        [("/v1/predict", "200", 0.003)] * 90
        + [("/v1/predict", "200", 0.08)] * 10
        + [("/health/ready", "200", 0.001)] * 5,
    )
    b = _worker(
        tmp_path / "b",
        [("/v1/predict", "200", 0.003)] * 90
        + [("/v1/predict", "500", 0.2)] * 10
        + [("/v1/events", "400", 0.001)] * 10,
    )
    for worker in (a, b):
        await store.write_rollups(worker.take(T0 + timedelta(seconds=20)))
        worker.written()
    step = timedelta(minutes=1)
    requests = await store.read_rollups(API_REQUESTS, T0, T0 + step, step)
    latency = await store.read_rollups(PREDICTION_LATENCY, T0, T0 + step, step)
    assert sum(r.count for r in requests) == 210  # the probes are not API requests
    assert sum(r.count for r in latency) == 190  # the 10 answers of 500 are not counted
    (point,) = series(requests, latency, [T0], step.total_seconds())
    assert point.requests_per_s == pytest.approx(210 / 60)
    assert point.error_ratio == pytest.approx(10 / 210)
    assert point.slow_ratio == pytest.approx(10 / 190)
    # 180 of 190 in (0.002, 0.005]: the median interpolates there, p99 in (0.05, 0.1].
    assert point.p50 == pytest.approx(0.002 + 0.003 * (95 / 180))
    p99 = point.p99
    assert p99 is not None
    assert 0.05 < p99 <= 0.1


@pytest.mark.anyio
async def test_only_growth_is_written_and_a_failed_write_is_kept(
    store: Store, tmp_path: Path
) -> None:
    """A second take writes what grew since the last stored one; without `written` the
    next take still holds the unstored growth."""
    metrics = Metrics(make_settings(tmp_path / "artifacts"))
    recorder = HistoryRecorder(metrics)
    metrics.observe_request("/v1/predict", "POST", "200", 0.003)
    first = recorder.take(T0)
    assert sum(r.count for r in first if r.metric == API_REQUESTS) == 1
    # not written (the store was down): the growth is taken again, with the new request
    metrics.observe_request("/v1/predict", "POST", "200", 0.003)
    again = recorder.take(T0 + timedelta(minutes=1))
    assert sum(r.count for r in again if r.metric == API_REQUESTS) == 2
    await store.write_rollups(again)
    recorder.written()
    assert recorder.take(T0 + timedelta(minutes=2)) == []
    rows = await store.read_rollups(API_REQUESTS, T0, T0 + timedelta(minutes=3))
    assert [(r.bucket_start, r.count) for r in rows] == [(T0 + timedelta(minutes=1), 2)]


@pytest.mark.anyio
async def test_history_rollups_are_pruned_by_the_retention(store: Store, tmp_path: Path) -> None:
    """The monitoring prune (rows older than SCANOPT_ROLLUP_RETENTION_DAYS) takes them too."""
    metrics = Metrics(make_settings(tmp_path / "artifacts"))
    recorder = HistoryRecorder(metrics)
    metrics.observe_request("/v1/predict", "POST", "200", 0.003)
    await store.write_rollups(recorder.take(T0))
    later = T0 + timedelta(days=30)
    assert await store.prune(later) >= 2  # the request row and its latency bucket
    assert await store.read_rollups(API_REQUESTS, T0, later) == []
