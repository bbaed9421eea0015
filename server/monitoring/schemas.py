"""Wire types of the monitoring read API (the JSON the dashboard and operators read).

Endpoints (all GET, JSON, no auth; a bad parameter is a 400 naming it and listing what is
allowed; a figure backed by fewer than `min_labelled` outcomes is null with
``note: "not enough data (n = 12)"`` instead of a misleading number):

``/v1/monitoring/accuracy?window=1h|24h|7d|live[&version=V]`` -> `AccuracyReport`
    Scan outcomes (``scan_completed`` events with a ``prediction_id``) joined to the logged
    predictions, per model version, overall (``arm: "all"``) and per arm (the model runs
    for control too): result-count and duration MAE, R2 and 90% interval coverage, p_empty
    Brier score and expected calibration error (10 equal-width bins), each with its n and
    the training figure from the manifest beside it. ``live`` is since the version's first
    labelled outcome still kept in the store (retention caps it). Built from the 1-minute
    rollups in the store, so every worker and replica answers the same.

``/v1/monitoring/drift?window_minutes=N[&version=V]`` -> `DriftReport`
    Every feature and model output of the predictions served in the last N minutes
    (default SCANOPT_DRIFT_WINDOW_MINUTES), counted into the manifest's own reference bins
    by every worker and merged in the store: PSI for every column, Wasserstein distance
    over the reference std for numeric and ordinal ones, Jensen-Shannon distance for
    binary ones, each with the threshold it is compared with; a column alarms when any of
    its scores exceeds its threshold. Thresholds hold the false-alarm rate of the whole
    report (all columns together) at `false_alarm_rate` on windows of this size.

``/v1/monitoring/importance`` -> `ImportanceReport`
    The last nDCG of the permutation-importance ranking on recent labelled outcomes against
    the manifest's ranking (below 0.9 is a violation), computed on a schedule by one worker.

``/v1/monitoring/business?window=1h|24h|7d`` -> `BusinessReport`
    Per arm, from the store: empty-scan rate, time to first result, satisfaction, positive
    feedback share, and adoption of the ML features.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from server.domain.scan import WireStruct
from server.store.business import ArmBusiness

__all__ = [
    "AccuracyGroup",
    "AccuracyReport",
    "ArmBusiness",
    "BusinessReport",
    "ColumnDrift",
    "DriftReport",
    "ImportanceReport",
    "ProbabilityAccuracy",
    "RegressionAccuracy",
]

AccuracyWindow = Literal["1h", "24h", "7d", "live"]
BusinessWindow = Literal["1h", "24h", "7d"]


class RegressionAccuracy(WireStruct, frozen=True):
    """Online accuracy of one regression target (result_count or duration_s).

    `coverage` is the share of outcomes inside the predicted 90% interval (the plan's
    band is 0.85 to 0.95). Figures are null with a `note` when n < min_labelled.
    """

    target: str
    n: int
    mae: float | None = None
    r2: float | None = None
    coverage: float | None = None
    training_mae: float | None = None
    training_r2: float | None = None
    training_coverage: float | None = None
    note: str | None = None


class ProbabilityAccuracy(WireStruct, frozen=True):
    """Online Brier score and expected calibration error of p_empty."""

    n: int
    brier: float | None = None
    ece: float | None = None
    training_brier: float | None = None
    note: str | None = None


class AccuracyGroup(WireStruct, frozen=True):
    """The figures of one model version, over both arms ("all") or one arm."""

    version: str
    arm: str
    labelled: int
    result_count: RegressionAccuracy
    duration_s: RegressionAccuracy
    p_empty: ProbabilityAccuracy


class AccuracyReport(WireStruct, frozen=True):
    """Online accuracy over one window, per model version and arm."""

    window: str
    since: datetime
    until: datetime
    min_labelled: int
    groups: list[AccuracyGroup]


class ColumnDrift(WireStruct, frozen=True):
    """One feature or model output of recent traffic against its reference histogram."""

    column: str
    kind: str
    n: int
    psi: float | None = None
    psi_threshold: float | None = None
    wasserstein: float | None = None
    wasserstein_threshold: float | None = None
    jensen_shannon: float | None = None
    jensen_shannon_threshold: float | None = None
    alarm: bool = False


class DriftReport(WireStruct, frozen=True):
    """Drift of every column of one model version over the last `window_minutes`."""

    version: str | None
    window_minutes: int
    since: datetime
    until: datetime
    n: int
    false_alarm_rate: float
    alarm: bool
    columns: list[ColumnDrift]
    note: str | None = None


class ImportanceReport(WireStruct, frozen=True):
    """nDCG of recent permutation importances against the manifest's, per target."""

    version: str | None
    computed_at: datetime | None
    n: int
    ndcg: float | None
    threshold: float
    violation: bool
    by_target: dict[str, float]
    note: str | None = None


class BusinessReport(WireStruct, frozen=True):
    """Business figures per arm over one window."""

    window: str
    since: datetime
    until: datetime
    arms: list[ArmBusiness]
