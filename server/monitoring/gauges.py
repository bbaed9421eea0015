"""The monitoring gauges on /metrics (names are a contract: alerts and panels use them).

Figures computed by the one worker holding the monitoring lease are written with
multiprocess_mode "mostrecent", so a scrape shows the latest computation whichever worker
made it; per-worker health (store up, config age) combines over live workers only.

    scanopt_online_{mae,r2,coverage}{target, version, window}   window: 1h, 24h, 7d, live
    scanopt_online_{brier,ece,labelled}{version, window}
    scanopt_training_{mae,coverage}{target, version}, scanopt_training_brier{version}
    scanopt_drift_score{feature, score, version}, scanopt_drift_threshold{feature, score}
    scanopt_drift_alarm{feature}
    scanopt_importance_ndcg{version}
    scanopt_store_up                                   1 when every live worker's last
                                                       store operation succeeded
    scanopt_experiment_config_age_seconds{experiment}  oldest live worker's config age
    scanopt_business_empty_rate{arm, window}
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Gauge

from server.monitoring.schemas import AccuracyGroup, ColumnDrift

__all__ = ["MonitoringGauges"]


class MonitoringGauges:
    """Every monitoring gauge, in the registry it is given."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry

        def figure(name: str, doc: str, labels: Sequence[str]) -> Gauge:
            return Gauge(name, doc, list(labels), registry=r, multiprocess_mode="mostrecent")

        self.online_mae = figure(
            "scanopt_online_mae",
            "Online MAE of labelled outcomes.",
            ("target", "version", "window"),
        )
        self.online_r2 = figure(
            "scanopt_online_r2", "Online R2 of labelled outcomes.", ("target", "version", "window")
        )
        self.online_coverage = figure(
            "scanopt_online_coverage",
            "Share of labelled outcomes inside the predicted 90% interval.",
            ("target", "version", "window"),
        )
        self.online_brier = figure(
            "scanopt_online_brier", "Online Brier score of p_empty.", ("version", "window")
        )
        self.online_ece = figure(
            "scanopt_online_ece",
            "Online expected calibration error of p_empty (10 bins).",
            ("version", "window"),
        )
        self.online_labelled = figure(
            "scanopt_online_labelled",
            "Labelled outcomes behind the online figures.",
            ("version", "window"),
        )
        self.training_mae = figure(
            "scanopt_training_mae", "MAE on the test split (manifest).", ("target", "version")
        )
        self.training_coverage = figure(
            "scanopt_training_coverage",
            "90% interval coverage on the test split (manifest).",
            ("target", "version"),
        )
        self.training_brier = figure(
            "scanopt_training_brier", "p_empty Brier score on the test split.", ("version",)
        )
        self.drift_score = figure(
            "scanopt_drift_score",
            "Drift of a feature or output over the drift window, by score.",
            ("feature", "score", "version"),
        )
        self.drift_threshold = figure(
            "scanopt_drift_threshold",
            "The alarm threshold each drift score is compared with.",
            ("feature", "score"),
        )
        self.drift_alarm = figure(
            "scanopt_drift_alarm", "1 when the column is drifting by its rule.", ("feature",)
        )
        self.importance_ndcg = figure(
            "scanopt_importance_ndcg",
            "nDCG of recent permutation importances vs the manifest's (< 0.9: violation).",
            ("version",),
        )
        self.business_empty_rate = figure(
            "scanopt_business_empty_rate",
            "Share of completed scans that came back empty, per arm.",
            ("arm", "window"),
        )
        self.store_up = Gauge(
            "scanopt_store_up",
            "1 when the last store operation of every live worker succeeded, else 0.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.config_age = Gauge(
            "scanopt_experiment_config_age_seconds",
            "Age of the experiment config the worker acts on (oldest live worker).",
            ["experiment"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def accuracy(self, window: str, groups: Sequence[AccuracyGroup]) -> None:
        """Export the figures of each version over both arms (groups with arm "all")."""
        for g in groups:
            if g.arm != "all":
                continue
            self.online_labelled.labels(g.version, window).set(g.labelled)
            for target in (g.result_count, g.duration_s):
                labels = (target.target, g.version, window)
                for gauge, value in (
                    (self.online_mae, target.mae),
                    (self.online_r2, target.r2),
                    (self.online_coverage, target.coverage),
                ):
                    gauge.labels(*labels).set(float("nan") if value is None else value)
                if target.training_mae is not None:
                    self.training_mae.labels(target.target, g.version).set(target.training_mae)
                if target.training_coverage is not None:
                    self.training_coverage.labels(target.target, g.version).set(
                        target.training_coverage
                    )
            p = g.p_empty
            self.online_brier.labels(g.version, window).set(
                float("nan") if p.brier is None else p.brier
            )
            self.online_ece.labels(g.version, window).set(float("nan") if p.ece is None else p.ece)
            if p.training_brier is not None:
                self.training_brier.labels(g.version).set(p.training_brier)

    def drift(self, version: str, columns: Sequence[ColumnDrift]) -> None:
        """Export each column's scores, thresholds and alarm."""
        for c in columns:
            for score, value, limit in (
                ("psi", c.psi, c.psi_threshold),
                ("wasserstein", c.wasserstein, c.wasserstein_threshold),
                ("jensen_shannon", c.jensen_shannon, c.jensen_shannon_threshold),
            ):
                if value is None or limit is None:
                    continue
                self.drift_score.labels(c.column, score, version).set(value)
                self.drift_threshold.labels(c.column, score).set(limit)
            self.drift_alarm.labels(c.column).set(1 if c.alarm else 0)
