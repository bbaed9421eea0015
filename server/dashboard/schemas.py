"""Wire types of the dashboard's JSON endpoints (GET /v1/dashboard/live, /history, /stored).

Counters are cumulative and summed over workers, so the page can turn two polls into
rates whichever worker answers; ratios are in [0, 1]; a figure with nothing behind it is
null, never 0.
"""

from __future__ import annotations

from datetime import datetime

from server.domain.scan import WireStruct
from server.monitoring.alerts import ActiveAlert

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


class AccuracyRow(WireStruct, frozen=True):
    """One version's online figure for one target over the last hour, beside training."""

    version: str
    target: str
    labelled: int
    mae: float | None = None
    training_mae: float | None = None
    coverage: float | None = None


class DriftRow(WireStruct, frozen=True):
    """One drift score of one feature and the threshold it is compared with."""

    feature: str
    score: str
    value: float | None = None
    threshold: float | None = None
    alarm: bool = False


class ArmRate(WireStruct, frozen=True):
    """The empty-scan share of one arm over one window."""

    arm: str
    window: str
    rate: float


class DashboardLive(WireStruct, frozen=True):
    """Everything from the merged /metrics: it keeps coming while the store is down."""

    at: datetime
    status: str  # ok | degraded (an alert holds or a worker is not ready) | down
    instance: str
    ready_workers: int
    workers: int
    store_up: bool | None
    model_versions: list[str]
    requests: float
    errors_5xx: float
    errors_4xx: float
    cache_hits: float
    cache_misses: float
    # (le seconds, cumulative count); le is None for the +Inf bucket, since JSON has no infinity
    latency_buckets: list[tuple[float | None, float]]
    latency_bound_s: float
    sli_latency_error: dict[str, float]
    sli_availability_error: dict[str, float]
    alerts: list[ActiveAlert]
    accuracy: list[AccuracyRow]
    drift: list[DriftRow]
    empty_rate: list[ArmRate]


class DashboardHistory(WireStruct, frozen=True):
    """Volume, 5xx share and slow-prediction share over a window, oldest first."""

    window: str
    t: list[float]  # unix seconds
    requests_per_s: list[float]
    error_ratio: list[float | None]
    slow_ratio: list[float | None]


class RecentFeedback(WireStruct, frozen=True):
    """One feedback as users wrote it (the page shows `suggestion` as text, never markup)."""

    received_at: datetime
    satisfaction: int
    usefulness: int
    suggestion: str | None = None


class ArmSummary(WireStruct, frozen=True):
    """One arm of the A/B test over the window."""

    arm: str
    users: int
    scans_completed: int
    empty_rate: float | None = None
    adoption: float | None = None


class AccuracyPoint(WireStruct, frozen=True):
    """Online accuracy of one version and arm over one slice of the window."""

    at: datetime
    version: str
    arm: str
    n: int
    count_mae: float
    duration_mae: float
    count_coverage: float
    duration_coverage: float


class DashboardStored(WireStruct, frozen=True):
    """What the dashboard reads from the store over a window."""

    window: str
    feedback: list[RecentFeedback]
    arms: list[ArmSummary]
    accuracy: list[AccuracyPoint]
