"""server.monitoring.figures: SLI counters from the exposition, windows, gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from server.monitoring.figures import SliHistory, Snapshot, read_figures


def _registry() -> tuple[CollectorRegistry, Histogram, Counter]:
    r = CollectorRegistry()
    labels = ["route", "method", "status"]
    duration = Histogram(
        "scanopt_http_request_duration_seconds", "d", labels, buckets=(0.01, 0.05, 1.0), registry=r
    )
    requests = Counter("scanopt_http_requests", "r", labels, registry=r)
    return r, duration, requests


def _families(r: CollectorRegistry) -> list:  # type: ignore[type-arg]
    return list(text_string_to_metric_families(generate_latest(r).decode()))


def test_snapshot_counts_the_sli_routes_only() -> None:
    """Latency counts non-5xx prediction routes; availability every API route's 5xx."""
    r, duration, requests = _registry()
    for route, status, seconds in [
        ("/v1/predict", "200", 0.002),
        ("/v1/predict", "200", 0.2),  # slow
        ("/v2/models/{name}/infer", "200", 0.003),
        ("/v1/predict", "503", 0.5),  # a failure, not a slow success
        ("/v1/experiments/{name}/report", "200", 3.0),  # not a prediction route
        ("/health/ready", "503", 0.001),  # not an API route
    ]:
        duration.labels(route, "POST", status).observe(seconds)
        requests.labels(route, "POST", status).inc()
    snap = Snapshot.read(_families(r), at=0.0)
    assert (snap.predictions, snap.predictions_fast) == (3.0, 2.0)
    assert (snap.api, snap.api_failed) == (5.0, 1.0)


def test_windows_use_the_growth_inside_them() -> None:
    """Each window's ratio is the counters' growth since the oldest snapshot inside it."""
    history = SliHistory(step_s=1.0)
    history.add(Snapshot(at=0.0, predictions=0, predictions_fast=0, api=0, api_failed=0))
    history.add(Snapshot(at=3000.0, predictions=100, predictions_fast=50, api=100, api_failed=10))
    now = Snapshot(at=3600.0, predictions=200, predictions_fast=150, api=200, api_failed=10)
    history.add(now)
    latency, availability = history.error_ratios(now)
    assert latency["1h"] == 0.25  # 50 slow of 200
    assert latency["30m"] == 0.0  # since t=3000: 100 served, all fast
    assert availability["1h"] == 0.05
    assert "5m" not in latency  # nothing but `now` inside 5 minutes: no requests, no ratio


def test_snapshots_closer_than_a_step_are_not_kept() -> None:
    """One snapshot per step: bursts of polls do not grow the history."""
    history = SliHistory(step_s=15.0)
    for at in (0.0, 5.0, 10.0, 15.0):
        history.add(Snapshot(at=at))
    assert [s.at for s in history.snapshots(60)] == [0.0, 15.0]


def test_read_figures_takes_the_monitoring_gauges() -> None:
    """Online accuracy, readiness, store and drift gauges become the alert figures."""
    r, _, _ = _registry()
    mae = Gauge("scanopt_online_mae", "m", ["target", "version", "window"], registry=r)
    labelled = Gauge("scanopt_online_labelled", "n", ["version", "window"], registry=r)
    ready = Gauge("scanopt_ready", "r", registry=r)
    store_up = Gauge("scanopt_store_up", "s", registry=r)
    alarm = Gauge("scanopt_drift_alarm", "a", ["feature"], registry=r)
    mae.labels("result_count", "v1", "1h").set(12.0)
    mae.labels("result_count", "v1", "24h").set(3.0)
    labelled.labels("v1", "1h").set(500)
    ready.set(1)
    store_up.set(0)
    alarm.labels("universe").set(1)
    figures = read_figures(_families(r), SliHistory(), instance="h:1", workers=2)
    assert figures.accuracy[0].mae == {"result_count": 12.0}
    assert figures.accuracy[0].labelled == 500
    assert (figures.ready, figures.ready_peak, figures.store_up) == (1, 2, False)
    assert figures.drift_alarms == {"universe": True}
