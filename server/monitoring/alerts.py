"""The alert conditions of deploy/prometheus/alerts.yml, evaluated from the app's own figures.

The dashboard shows which alerts hold right now without asking Prometheus: `evaluate`
takes `Figures` (SLI error ratios per window, the monitoring gauges as /metrics shows them)
and answers the alerts whose condition is true, labelled as Prometheus labels them. The
thresholds below are the ones alerts.yml states; a test feeds promtool and this module the
same series and checks that both answer the same.

Two differences, by construction: this module says whether a condition holds now, while
Prometheus also waits out each rule's `for:` hold time; and `ScanoptDown` (Prometheus
cannot scrape the target) is Prometheus's alone, since an app that answers is not down.

SLOs over 30 days: latency, 99% of non-5xx prediction requests within 50 ms; availability,
99.9% of API requests without a 5xx. Burn rate B spends the budget in 30 / B days; pages at
14.4x over 1h and 5m or 6x over 6h and 30m, a ticket at 1x over 3d and 6h.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Final

import msgspec

from server.domain.scan import WireStruct

__all__ = [
    "BURN_ALERTS",
    "COVERAGE_BAND",
    "MAE_BARS",
    "MIN_LABELLED",
    "SLI_WINDOWS",
    "SLO_BUDGETS",
    "ActiveAlert",
    "Figures",
    "VersionAccuracy",
    "accuracy_alerts",
    "evaluate",
]

# Error budgets: 1 - SLO target.
SLO_BUDGETS: Final = {"latency": 0.01, "availability": 0.001}
# (severity, burn rate, long window, short window), the SRE workbook's table.
BURN_ALERTS: Final = (
    ("page", 14.4, "1h", "5m"),
    ("page", 6.0, "6h", "30m"),
    ("ticket", 1.0, "3d", "6h"),
)
SLI_WINDOWS: Final = ("5m", "30m", "1h", "6h", "3d")
MAE_BARS: Final = {"result_count": 10.0, "duration_s": 5.0}
TRAINING_MAE_FACTOR: Final = 1.2
COVERAGE_BAND: Final = (0.85, 0.95)
# Fewer labelled outcomes than this in the window are not evidence (coverage sd > 0.015).
MIN_LABELLED: Final = 400
NDCG_MIN: Final = 0.9
CONFIG_STALE_S: Final = 30.0
_SLO_ALERT: Final = {
    ("latency", "page"): "ScanoptLatencySLOPage",
    ("latency", "ticket"): "ScanoptLatencySLOTicket",
    ("availability", "page"): "ScanoptAvailabilitySLOPage",
    ("availability", "ticket"): "ScanoptAvailabilitySLOTicket",
}


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class VersionAccuracy(msgspec.Struct, frozen=True, kw_only=True):
    """One model version's online figures over the 1h window, and its training MAE."""

    version: str
    labelled: int
    mae: Mapping[str, float] = msgspec.field(default_factory=dict)
    training_mae: Mapping[str, float] = msgspec.field(default_factory=dict)
    coverage: Mapping[str, float] = msgspec.field(default_factory=dict)


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """What the conditions read. A missing figure (no traffic, no gauge yet) never alerts.

    `latency_error` and `availability_error` map an SLI window ("5m" ... "3d") to its error
    ratio; `ready_peak` is the most ready workers seen over the last hour; `dropped_10m`
    maps (kind, reason) to prediction-log rows dropped in the last 10 minutes.
    """

    instance: str
    latency_error: Mapping[str, float] = msgspec.field(default_factory=dict)
    availability_error: Mapping[str, float] = msgspec.field(default_factory=dict)
    accuracy: Sequence[VersionAccuracy] = ()
    drift_alarms: Mapping[str, bool] = msgspec.field(default_factory=dict)
    ndcg: Mapping[str, float] = msgspec.field(default_factory=dict)
    ready: int | None = None
    ready_peak: int | None = None
    store_up: bool | None = None
    dropped_10m: Mapping[tuple[str, str], float] = msgspec.field(default_factory=dict)
    config_age_s: Mapping[str, float] = msgspec.field(default_factory=dict)


class ActiveAlert(WireStruct, frozen=True):
    """An alert whose condition holds: its name and labels as Prometheus sends them."""

    name: Annotated[str, _doc("the alert's name, as in the Prometheus rules")]
    severity: Annotated[str, _doc("the alert's severity label, as in the Prometheus rules")]
    labels: Annotated[dict[str, str], _doc("the alert's labels, by name")]
    value: Annotated[float, _doc("the figure that holds the condition, in the alert's own unit")]


def evaluate(figures: Figures) -> list[ActiveAlert]:
    """Every alert whose condition holds on `figures`, sorted by name and labels."""
    found = [
        *_slo(figures),
        *_accuracy(figures),
        *_drift(figures),
        *_operations(figures),
    ]
    return sorted(found, key=lambda a: (a.name, sorted(a.labels.items())))


def _alert(name: str, severity: str, value: float, **labels: str) -> ActiveAlert:
    return ActiveAlert(name=name, severity=severity, labels=labels, value=value)


def _slo(figures: Figures) -> list[ActiveAlert]:
    found = []
    for slo, ratios in (
        ("latency", figures.latency_error),
        ("availability", figures.availability_error),
    ):
        budget = SLO_BUDGETS[slo]
        for severity in ("page", "ticket"):
            for sev, burn, long, short in BURN_ALERTS:
                if sev != severity or long not in ratios or short not in ratios:
                    continue
                if ratios[long] > burn * budget and ratios[short] > burn * budget:
                    name = _SLO_ALERT[(slo, severity)]
                    found.append(_alert(name, severity, ratios[long], slo=slo))
                    break  # one alert per SLO and severity, as the `or` in the rule
    return found


def _accuracy(figures: Figures) -> list[ActiveAlert]:
    return accuracy_alerts(figures.accuracy)


def accuracy_alerts(
    groups: Sequence[VersionAccuracy], min_labelled: int = MIN_LABELLED
) -> list[ActiveAlert]:
    """The accuracy and coverage conditions on each version's figures (also what a
    probation after a promotion watches, with its own labelled minimum)."""
    found = []
    low, high = COVERAGE_BAND
    for group in groups:
        if group.labelled < min_labelled:
            continue
        for target, mae in group.mae.items():
            training = group.training_mae.get(target)
            over_bar = target in MAE_BARS and mae > MAE_BARS[target]
            over_training = training is not None and mae > TRAINING_MAE_FACTOR * training
            if over_bar or over_training:
                found.append(
                    _alert(
                        "ScanoptAccuracyDegraded",
                        "ticket",
                        mae,
                        target=target,
                        version=group.version,
                    )
                )
        for target, coverage in group.coverage.items():
            if coverage < low or coverage > high:
                found.append(
                    _alert(
                        "ScanoptCoverageOutOfBand",
                        "ticket",
                        coverage,
                        target=target,
                        version=group.version,
                    )
                )
    return found


def _drift(figures: Figures) -> list[ActiveAlert]:
    found = [
        _alert("ScanoptFeatureDrift", "ticket", 1.0, feature=feature)
        for feature, alarm in figures.drift_alarms.items()
        if alarm
    ]
    found += [
        _alert("ScanoptImportanceDrift", "ticket", ndcg, version=version)
        for version, ndcg in figures.ndcg.items()
        if ndcg < NDCG_MIN
    ]
    return found


def _operations(figures: Figures) -> list[ActiveAlert]:
    found = []
    instance = figures.instance
    ready, peak = figures.ready, figures.ready_peak
    if ready is not None and (ready == 0 or (peak is not None and ready < peak)):
        found.append(_alert("ScanoptWorkerNotReady", "page", ready, instance=instance))
    if figures.store_up is False:
        found.append(_alert("ScanoptStoreUnreachable", "page", 0.0, instance=instance))
    for (kind, reason), dropped in figures.dropped_10m.items():
        if dropped > 0:
            found.append(
                _alert(
                    "ScanoptPredictionLogDropped",
                    "ticket",
                    dropped,
                    instance=instance,
                    kind=kind,
                    reason=reason,
                )
            )
    for experiment, age in figures.config_age_s.items():
        if age > CONFIG_STALE_S:
            found.append(
                _alert(
                    "ScanoptExperimentConfigStale",
                    "page",
                    age,
                    instance=instance,
                    experiment=experiment,
                )
            )
    return found
