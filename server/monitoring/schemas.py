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
from typing import Annotated, Literal

import msgspec

from server.domain.scan import WireStruct
from server.store.business import ArmBusiness

__all__ = [
    "AccuracyGroup",
    "AccuracyReport",
    "ArmBusiness",
    "BusinessReport",
    "ColumnDrift",
    "DriftReport",
    "DriftSeries",
    "ImportanceReport",
    "ProbabilityAccuracy",
    "RegressionAccuracy",
]

AccuracyWindow = Literal["1h", "24h", "7d", "live"]
BusinessWindow = Literal["1h", "24h", "7d"]


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class RegressionAccuracy(WireStruct, frozen=True):
    """Online accuracy of one regression target (result_count or duration_s).

    `coverage` is the share of outcomes inside the predicted 90% interval (the plan's
    band is 0.85 to 0.95). Figures are null with a `note` when n < min_labelled.
    """

    target: Annotated[str, _doc("the target: result_count or duration_s")]
    n: Annotated[int, _doc("labelled outcomes the figures are computed on, count")]
    mae: Annotated[
        float | None,
        _doc("mean absolute error, in the target's unit; null below min_labelled"),
    ] = None
    r2: Annotated[
        float | None,
        _doc("coefficient of determination, unitless (1 = perfect); null below min_labelled"),
    ] = None
    coverage: Annotated[
        float | None,
        _doc("share of outcomes inside the 90% interval, share 0-1; null below min_labelled"),
    ] = None
    training_mae: Annotated[
        float | None,
        _doc("the same MAE on the version's held-out test split, in the target's unit"),
    ] = None
    training_r2: Annotated[
        float | None, _doc("the same R2 on the version's held-out test split, unitless")
    ] = None
    training_coverage: Annotated[
        float | None, _doc("the same coverage on the version's held-out test split, share 0-1")
    ] = None
    note: Annotated[str | None, _doc("why the figures are null, in words; left out otherwise")] = (
        None
    )


class ProbabilityAccuracy(WireStruct, frozen=True):
    """Online Brier score and expected calibration error of p_empty."""

    n: Annotated[int, _doc("labelled outcomes the figures are computed on, count")]
    brier: Annotated[
        float | None,
        _doc("Brier score of p_empty, squared probability (0 = perfect); null below min_labelled"),
    ] = None
    ece: Annotated[
        float | None,
        _doc("expected calibration error of p_empty, probability; null below min_labelled"),
    ] = None
    training_brier: Annotated[
        float | None, _doc("the same Brier score on the version's held-out test split")
    ] = None
    note: Annotated[str | None, _doc("why the figures are null, in words; left out otherwise")] = (
        None
    )


class AccuracyGroup(WireStruct, frozen=True):
    """The figures of one model version, over both arms ("all") or one arm."""

    version: Annotated[str, _doc("the model version the figures are of")]
    arm: Annotated[str, _doc("the A/B arm, or all for both arms")]
    labelled: Annotated[int, _doc("scans with a known outcome, count")]
    result_count: Annotated[RegressionAccuracy, _doc("accuracy of the predicted result count")]
    duration_s: Annotated[RegressionAccuracy, _doc("accuracy of the predicted duration")]
    p_empty: Annotated[
        ProbabilityAccuracy, _doc("accuracy of the predicted probability of an empty scan")
    ]


class AccuracyReport(WireStruct, frozen=True):
    """Online accuracy over one window, per model version and arm."""

    window: Annotated[str, _doc("the time window: 1h, 24h, 7d or live")]
    since: Annotated[datetime, _doc("start of the window, UTC ISO-8601")]
    until: Annotated[datetime, _doc("end of the window, UTC ISO-8601")]
    min_labelled: Annotated[int, _doc("fewest labelled outcomes before figures are given, count")]
    groups: Annotated[list[AccuracyGroup], _doc("the figures per model version and arm")]


class ColumnDrift(WireStruct, frozen=True):
    """One feature or model output of recent traffic against its reference histogram."""

    column: Annotated[str, _doc("the feature or model output compared")]
    kind: Annotated[
        str, _doc("the column's kind: numeric, binary or ordinal (outputs are numeric)")
    ]
    n: Annotated[int, _doc("recent values compared, count")]
    psi: Annotated[
        float | None,
        _doc(
            "population stability index against the reference, unitless; null with too few values"
        ),
    ] = None
    psi_threshold: Annotated[
        float | None, _doc("the PSI above which the column alarms, unitless")
    ] = None
    wasserstein: Annotated[
        float | None, _doc("Wasserstein distance against the reference, in the column's unit")
    ] = None
    wasserstein_threshold: Annotated[
        float | None, _doc("the Wasserstein distance above which the column alarms, column's unit")
    ] = None
    jensen_shannon: Annotated[
        float | None, _doc("Jensen-Shannon distance against the reference, unitless 0-1")
    ] = None
    jensen_shannon_threshold: Annotated[
        float | None, _doc("the Jensen-Shannon distance above which the column alarms")
    ] = None
    alarm: Annotated[bool, _doc("whether a distance is above its threshold")] = False

    @property
    def worst_ratio(self) -> float | None:
        """The largest score over its threshold (above 1 alarms); None without scores."""
        pairs = (
            (self.psi, self.psi_threshold),
            (self.wasserstein, self.wasserstein_threshold),
            (self.jensen_shannon, self.jensen_shannon_threshold),
        )
        ratios = [v / t for v, t in pairs if v is not None and t]
        return max(ratios) if ratios else None


class DriftSeries(WireStruct, frozen=True):
    """One column's drift over a window's slices: worst score over its threshold."""

    feature: Annotated[str, _doc("the feature or model output scored")]
    ratio: Annotated[
        list[float | None],
        _doc(
            "per slice, the column's largest score over that score's threshold, unitless "
            "(above 1 alarms); null where the slice held too few predictions"
        ),
    ]


class DriftReport(WireStruct, frozen=True):
    """Drift of every column of one model version over the last `window_minutes`."""

    version: Annotated[str | None, _doc("the model version compared; null when none is loaded")]
    window_minutes: Annotated[int, _doc("how far back recent traffic goes, minutes")]
    since: Annotated[datetime, _doc("start of the window, UTC ISO-8601")]
    until: Annotated[datetime, _doc("end of the window, UTC ISO-8601")]
    n: Annotated[int, _doc("recent scans compared, count")]
    false_alarm_rate: Annotated[
        float, _doc("the share of alarms expected without drift, share 0-1")
    ]
    alarm: Annotated[bool, _doc("whether any column alarms")]
    columns: Annotated[list[ColumnDrift], _doc("every feature and model output")]
    note: Annotated[
        str | None, _doc("why there is nothing to compare, in words; left out otherwise")
    ] = None
    calibration: Annotated[
        str | None,
        _doc(
            "how the thresholds allow for time-ordered traffic, in words: the manifest's drift "
            "calibration, or independent rows when it has none; left out without scores"
        ),
    ] = None


class ImportanceReport(WireStruct, frozen=True):
    """nDCG of recent permutation importances against the manifest's, per target."""

    version: Annotated[str | None, _doc("the model version compared; null when none is loaded")]
    computed_at: Annotated[
        datetime | None,
        _doc("when the recent importances were computed, UTC ISO-8601; null before the first"),
    ]
    n: Annotated[int, _doc("recent scans the importances were computed on, count")]
    ndcg: Annotated[
        float | None,
        _doc("agreement of the recent ranking with the manifest's, nDCG 0-1 (1 = same order)"),
    ]
    threshold: Annotated[float, _doc("the nDCG below which the ranking is a violation")]
    violation: Annotated[bool, _doc("whether the nDCG is below the threshold")]
    by_target: Annotated[dict[str, float], _doc("nDCG by target, 0-1")]
    note: Annotated[str | None, _doc("why there is no figure, in words; left out otherwise")] = None


class BusinessReport(WireStruct, frozen=True):
    """Business figures per arm over one window."""

    window: Annotated[str, _doc("the time window: 1h, 24h or 7d")]
    since: Annotated[datetime, _doc("start of the window, UTC ISO-8601")]
    until: Annotated[datetime, _doc("end of the window, UTC ISO-8601")]
    arms: Annotated[list[ArmBusiness], _doc("the figures per A/B arm")]
