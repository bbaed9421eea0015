"""Wire types of the dashboard's JSON endpoints (GET /v1/dashboard/live, /history, /stored).

Counters are cumulative and summed over workers, so the page can turn two polls into
rates whichever worker answers; ratios are in [0, 1]; a figure with nothing behind it is
null, never 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from server.domain.scan import WireStruct
from server.monitoring.alerts import ActiveAlert
from server.monitoring.schemas import DriftSeries

__all__ = [
    "AccuracyPoint",
    "AccuracyRow",
    "ArmRate",
    "ArmSummary",
    "DashboardHistory",
    "DashboardLive",
    "DashboardStored",
    "DriftRow",
    "RecentFeedback",
]


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class AccuracyRow(WireStruct, frozen=True):
    """One version's online figure for one target over the last hour, beside training."""

    version: Annotated[str, _doc("the model version")]
    target: Annotated[str, _doc("the target: result_count or duration_s")]
    labelled: Annotated[int, _doc("labelled outcomes over the last hour, count")]
    mae: Annotated[
        float | None,
        _doc("online mean absolute error, in the target's unit (results or seconds)"),
    ] = None
    training_mae: Annotated[
        float | None,
        _doc("the same MAE on the version's held-out test split, in the target's unit"),
    ] = None
    coverage: Annotated[
        float | None,
        _doc(
            "share of outcomes inside the predicted 90% interval, share 0-1; null without outcomes"
        ),
    ] = None


class DriftRow(WireStruct, frozen=True):
    """One drift score of one feature and the threshold it is compared with."""

    feature: Annotated[str, _doc("the feature or model output scored")]
    score: Annotated[str, _doc("the drift score's name: psi, wasserstein or jensen_shannon")]
    value: Annotated[
        float | None,
        _doc("the score on recent traffic, in the score's unit; null with too few values"),
    ] = None
    threshold: Annotated[
        float | None, _doc("the score above which the feature alarms, same unit")
    ] = None
    alarm: Annotated[bool, _doc("whether the score is above its threshold")] = False


class ArmRate(WireStruct, frozen=True):
    """The empty-scan share of one arm over one window."""

    arm: Annotated[str, _doc("the A/B arm")]
    window: Annotated[str, _doc("the time window the rate covers (such as 1h)")]
    rate: Annotated[float, _doc("share of completed scans that returned nothing, share 0-1")]


class ShadowRow(WireStruct, frozen=True):
    """One target of the shadow comparison, from the shadow gauges."""

    champion: Annotated[str, _doc("the version that answered")]
    shadow: Annotated[str, _doc("the version that scored the same requests in the shadow")]
    target: Annotated[str, _doc("result_count or duration_s")]
    pairs: Annotated[int, _doc("labelled requests both versions scored, count")]
    champion_mae: Annotated[float | None, _doc("the champion's MAE on those requests")] = None
    shadow_mae: Annotated[float | None, _doc("the shadow's MAE on those requests")] = None
    difference: Annotated[
        float | None, _doc("mean |error| of shadow minus champion per request")
    ] = None
    lower: Annotated[float | None, _doc("lower end of its 95% confidence sequence")] = None
    upper: Annotated[float | None, _doc("upper end of its 95% confidence sequence")] = None
    verdict: Annotated[
        str, _doc("better, worse, undecided or not enough data (for the shadow)")
    ] = "not enough data"


class DashboardLive(WireStruct, frozen=True):
    """Everything from the merged /metrics: it keeps coming while the store is down."""

    at: Annotated[datetime, _doc("when the figures were read, UTC ISO-8601")]
    status: Annotated[
        str, _doc("ok, degraded (an alert holds or a worker is not ready) or down")
    ]  # ok | degraded (an alert holds or a worker is not ready) | down
    instance: Annotated[str, _doc("the instance the figures come from")]
    ready_workers: Annotated[int, _doc("workers ready to serve, count")]
    workers: Annotated[int, _doc("workers running, count")]
    store_up: Annotated[bool | None, _doc("whether the store answers; null when unknown")]
    model_versions: Annotated[list[str], _doc("the versions the workers serve")]
    requests: Annotated[float, _doc("HTTP requests since start, count")]
    errors_5xx: Annotated[float, _doc("5xx answers since start, count")]
    errors_4xx: Annotated[float, _doc("4xx answers since start, count")]
    cache_hits: Annotated[float, _doc("prediction cache hits since start, count")]
    cache_misses: Annotated[float, _doc("prediction cache misses since start, count")]
    # (le seconds, cumulative count); le is None for the +Inf bucket, since JSON has no infinity
    latency_buckets: Annotated[
        list[tuple[float | None, float]],
        _doc("latency histogram: (upper bound in seconds, null for +Inf; cumulative count)"),
    ]
    latency_bound_s: Annotated[float, _doc("the latency SLO bound, seconds")]
    sli_latency_error: Annotated[
        dict[str, float], _doc("share of requests slower than the bound, by window, share 0-1")
    ]
    sli_availability_error: Annotated[
        dict[str, float], _doc("share of requests answered 5xx, by window, share 0-1")
    ]
    alerts: Annotated[list[ActiveAlert], _doc("the alerts whose condition holds")]
    accuracy: Annotated[
        list[AccuracyRow], _doc("online accuracy per version and target over the last hour")
    ]
    drift: Annotated[list[DriftRow], _doc("drift scores per feature")]
    empty_rate: Annotated[list[ArmRate], _doc("empty-scan share per arm and window")]
    shadow: Annotated[
        list[ShadowRow], _doc("the shadow version against the champion, on the same requests")
    ] = msgspec.field(default_factory=list)


class DashboardHistory(WireStruct, frozen=True):
    """Service history over a window from the store's 1-minute rollups, oldest first.

    Every worker and replica adds its counts to the same rollups, so any of them answers
    the same. One point per slice of `step_s` seconds; `t` is each slice's end (now, for
    the slice still running)."""

    window: Annotated[str, _doc("the time window: 1h, 24h or 7d")]
    step_s: Annotated[float, _doc("the length of one slice, seconds")]
    t: Annotated[list[float], _doc("the end of each slice (now for the running one), unix seconds")]
    requests_per_s: Annotated[list[float], _doc("API requests in each slice, requests per second")]
    error_ratio: Annotated[
        list[float | None],
        _doc("share of API requests answered 5xx in each slice, share 0-1; null without any"),
    ]
    slow_ratio: Annotated[
        list[float | None],
        _doc("share of predictions slower than the SLO bound in each slice, share 0-1"),
    ]
    p50: Annotated[list[float | None], _doc("median prediction latency in each slice, seconds")]
    p95: Annotated[list[float | None], _doc("95th percentile prediction latency, seconds")]
    p99: Annotated[list[float | None], _doc("99th percentile prediction latency, seconds")]
    drift_version: Annotated[
        str | None, _doc("the model version whose drift is shown; null when none is loaded")
    ]
    drift: Annotated[
        list[DriftSeries], _doc("per feature, its worst drift score over threshold per slice")
    ]


class RecentFeedback(WireStruct, frozen=True):
    """One feedback as users wrote it (the page shows `suggestion` as text, never markup)."""

    received_at: Annotated[datetime, _doc("when the feedback arrived, UTC ISO-8601")]
    satisfaction: Annotated[int, _doc("the user's satisfaction, points on the feedback scale")]
    usefulness: Annotated[
        int, _doc("how useful the suggestions were, points on the feedback scale")
    ]
    suggestion: Annotated[
        str | None, _doc("the user's free-text suggestion, shown as text; left out when empty")
    ] = None


class ArmSummary(WireStruct, frozen=True):
    """One arm of the A/B test over the window."""

    arm: Annotated[str, _doc("the A/B arm")]
    users: Annotated[int, _doc("users assigned to the arm who scanned, count")]
    scans_completed: Annotated[int, _doc("scans completed, count")]
    empty_rate: Annotated[
        float | None,
        _doc("share of completed scans that returned nothing, share 0-1; null without scans"),
    ] = None
    adoption: Annotated[
        float | None,
        _doc("share of users shown a suggestion who applied one, share 0-1; null without any"),
    ] = None


class AccuracyPoint(WireStruct, frozen=True):
    """Online accuracy of one version and arm over one slice of the window."""

    at: Annotated[datetime, _doc("start of the slice, UTC ISO-8601")]
    version: Annotated[str, _doc("the model version")]
    arm: Annotated[str, _doc("the A/B arm")]
    n: Annotated[int, _doc("labelled outcomes in the slice, count")]
    count_mae: Annotated[float, _doc("mean absolute error of result_count, results")]
    duration_mae: Annotated[float, _doc("mean absolute error of duration_s, seconds")]
    count_coverage: Annotated[
        float, _doc("share of result counts inside the 90% interval, share 0-1")
    ]
    duration_coverage: Annotated[
        float, _doc("share of durations inside the 90% interval, share 0-1")
    ]
    empty: Annotated[int, _doc("labelled outcomes that returned nothing, count")] = 0


class DashboardStored(WireStruct, frozen=True):
    """What the dashboard reads from the store over a window."""

    window: Annotated[str, _doc("the time window: 1h, 24h or 7d")]
    feedback: Annotated[list[RecentFeedback], _doc("the latest feedback, newest first")]
    arms: Annotated[list[ArmSummary], _doc("the A/B figures per arm")]
    accuracy: Annotated[list[AccuracyPoint], _doc("online accuracy per slice, version and arm")]
