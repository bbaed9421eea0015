"""server.monitoring.alerts: each condition fires on its threshold's far side only."""

from __future__ import annotations

from server.monitoring.alerts import MIN_LABELLED, Figures, VersionAccuracy, evaluate


def _names(figures: Figures) -> list[str]:
    return [alert.name for alert in evaluate(figures)]


def test_fast_burn_needs_both_windows() -> None:
    """14.4x the latency budget over 1h pages only while the 5m window burns too."""
    burning = {"1h": 0.2, "5m": 0.2, "6h": 0.02, "30m": 0.2, "3d": 0.005}
    assert _names(Figures(instance="a", latency_error=burning)) == ["ScanoptLatencySLOPage"]
    cooled = {**burning, "5m": 0.0}
    assert _names(Figures(instance="a", latency_error=cooled)) == []


def test_slow_burn_pages_and_tickets() -> None:
    """6x over 6h and 30m pages; 1x over 3d and 6h files a ticket."""
    ratios = {"1h": 0.01, "5m": 0.01, "6h": 0.008, "30m": 0.008, "3d": 0.002}
    assert _names(Figures(instance="a", availability_error=ratios)) == [
        "ScanoptAvailabilitySLOPage",
        "ScanoptAvailabilitySLOTicket",
    ]


def test_no_traffic_means_no_slo_alert() -> None:
    """Windows without requests are absent and never alert."""
    assert evaluate(Figures(instance="a")) == []


def test_accuracy_needs_enough_labels() -> None:
    """A count MAE over 10 alerts only with at least MIN_LABELLED labelled outcomes."""
    group = VersionAccuracy(version="v", labelled=MIN_LABELLED - 1, mae={"result_count": 30.0})
    assert _names(Figures(instance="a", accuracy=[group])) == []
    enough = VersionAccuracy(version="v", labelled=MIN_LABELLED, mae={"result_count": 30.0})
    alerts = evaluate(Figures(instance="a", accuracy=[enough]))
    assert [(a.name, a.labels) for a in alerts] == [
        ("ScanoptAccuracyDegraded", {"target": "result_count", "version": "v"})
    ]


def test_accuracy_against_training() -> None:
    """A duration MAE under the 5 s bar still alerts past 1.2x the training MAE."""
    worse = VersionAccuracy(
        version="v", labelled=1000, mae={"duration_s": 2.5}, training_mae={"duration_s": 2.0}
    )
    at_limit = VersionAccuracy(
        version="w", labelled=1000, mae={"duration_s": 2.4}, training_mae={"duration_s": 2.0}
    )
    alerts = evaluate(Figures(instance="a", accuracy=[worse, at_limit]))
    assert [a.labels["version"] for a in alerts] == ["v"]


def test_coverage_band_is_open() -> None:
    """Coverage of exactly 0.85 or 0.95 is inside the band; 0.84 and 0.96 are not."""
    coverage = {"a": 0.85, "b": 0.95, "c": 0.84, "d": 0.96}
    group = VersionAccuracy(version="v", labelled=1000, coverage=coverage)
    alerts = evaluate(Figures(instance="i", accuracy=[group]))
    assert sorted(a.labels["target"] for a in alerts) == ["c", "d"]


def test_worker_not_ready_against_the_expected_count() -> None:
    """Fewer ready workers than the instance runs, or none, pages; all ready is silent."""
    assert _names(Figures(instance="a", ready=1, ready_peak=2)) == ["ScanoptWorkerNotReady"]
    assert _names(Figures(instance="a", ready=0)) == ["ScanoptWorkerNotReady"]
    assert _names(Figures(instance="a", ready=2, ready_peak=2)) == []


def test_unknown_store_state_does_not_alert() -> None:
    """Only a store known to be down alerts; no figure yet is not an outage."""
    assert _names(Figures(instance="a", store_up=None)) == []
    assert _names(Figures(instance="a", store_up=False)) == ["ScanoptStoreUnreachable"]


def test_operations_alerts_carry_the_instance() -> None:
    """Dropped rows, stale configs, drift and importance alerts carry their labels."""
    figures = Figures(
        instance="h:1",
        dropped_10m={("prediction", "buffer_full"): 4.0, ("exposure", "shutdown"): 0.0},
        config_age_s={"ml_scanning": 31.0, "other": 2.0},
        drift_alarms={"universe": True, "timeframe": False},
        ndcg={"v": 0.85},
    )
    assert [(a.name, a.labels) for a in evaluate(figures)] == [
        ("ScanoptExperimentConfigStale", {"instance": "h:1", "experiment": "ml_scanning"}),
        ("ScanoptFeatureDrift", {"feature": "universe"}),
        ("ScanoptImportanceDrift", {"version": "v"}),
        (
            "ScanoptPredictionLogDropped",
            {"instance": "h:1", "kind": "prediction", "reason": "buffer_full"},
        ),
    ]
