"""What GET /dashboard shows, as JSON: live figures from /metrics, the rest from the store.

`live()` never touches the store: status, model version, request, error and cache counters
and the prediction-latency histogram (cumulative, summed over workers: the page turns two
polls into rates and quantiles), the alert conditions that hold now
(server.monitoring.alerts) and the monitoring gauges. So a store outage leaves the live
figures flowing while `history()` and `stored()` answer 503 and the page says the store
is unreachable.

`history()` is the 1h / 24h / 7d history of volume, errors, slow predictions, latency
quantiles and drift per feature, from the store's 1-minute rollups that every worker adds
to (server.monitoring.history, drift_counts), so it survives restarts and merges every
worker and replica exactly. `stored()` adds online accuracy and the empty-scan share per
version and arm (accuracy rollups), the A/B summary and recent feedback.

Each worker samples the merged counters every `step_s` into its `SliHistory`, which gives
the alert windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from server.dashboard.schemas import (
    AccuracyPoint,
    AccuracyRow,
    ArmRate,
    ArmSummary,
    DashboardHistory,
    DashboardLive,
    DashboardStored,
    DriftRow,
    RecentFeedback,
    ShadowRow,
)
from server.monitoring.alerts import Figures, evaluate
from server.monitoring.figures import LATENCY_BOUND, PREDICTION_ROUTES, SliHistory, read_figures
from server.monitoring.history import API_REQUESTS, PREDICTION_LATENCY, series
from server.monitoring.metrics import Metrics
from server.monitoring.monitor import Monitor
from server.store.interface import Store

__all__ = ["HISTORY_WINDOWS", "Dashboard"]

HISTORY_WINDOWS: Final = {"1h": 3600, "24h": 86400, "7d": 604800}
# Slices per window: 1 minute, 15 minutes, 2 hours (whole minutes, as the rollups).
_SLICES: Final = {"1h": 60, "24h": 96, "7d": 84}
_FEEDBACK_SHOWN: Final = 10


class Dashboard:
    """One worker's dashboard figures."""

    def __init__(
        self,
        metrics: Metrics,
        store: Store,
        monitor: Monitor,
        *,
        workers: int,
        port: int,
        logger: logging.Logger,
        step_s: float = 15.0,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._monitor = monitor
        self._workers = workers
        self._instance = f"{socket.gethostname()}:{port}"
        self._logger = logger
        self.history = SliHistory(step_s=step_s)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._sample)
            except Exception:  # a bad scrape must not end the sampling
                self._logger.exception("dashboard sampling failed")
            await asyncio.sleep(self.history.step_s)

    def _sample(self) -> tuple[list[Metric], Figures]:
        """The merged exposition, and the figures read from it (kept in the history)."""
        families = list(text_string_to_metric_families(self._metrics.render().decode()))
        figures = read_figures(
            families, self.history, instance=self._instance, workers=self._workers
        )
        return families, figures

    def live(self) -> DashboardLive:
        """Everything that comes from /metrics (file reads: call it off the event loop)."""
        families, figures = self._sample()
        counters = {"requests": 0.0, "errors_5xx": 0.0, "errors_4xx": 0.0}
        cache = {"scanopt_cache_hits_total": 0.0, "scanopt_cache_misses_total": 0.0}
        buckets: dict[float, float] = {}
        versions = []
        accuracy: dict[tuple[str, str], dict[str, float]] = {}
        drift: dict[tuple[str, str], dict[str, float]] = {}
        empty: list[ArmRate] = []
        shadow: dict[tuple[str, str, str], dict[str, float]] = {}
        pairs: dict[tuple[str, str], float] = {}
        mae: dict[tuple[str, str, str], float] = {}
        for family in families:
            for s in family.samples:
                labels = s.labels
                if s.name == "scanopt_http_requests_total":
                    status = labels.get("status", "")
                    counters["requests"] += s.value
                    if status.startswith("5"):
                        counters["errors_5xx"] += s.value
                    elif status.startswith("4"):
                        counters["errors_4xx"] += s.value
                elif s.name in cache:
                    cache[s.name] += s.value
                elif s.name == "scanopt_http_request_duration_seconds_bucket":
                    if PREDICTION_ROUTES.fullmatch(labels["route"]) and not labels[
                        "status"
                    ].startswith("5"):
                        le = float(labels["le"])
                        buckets[le] = buckets.get(le, 0.0) + s.value
                elif s.name == "scanopt_model_info" and s.value > 0:
                    versions.append(labels["version"])
                elif s.name in _ACCURACY_GAUGES and labels.get("window", "1h") == "1h":
                    key = (labels["version"], labels.get("target", ""))
                    accuracy.setdefault(key, {})[_ACCURACY_GAUGES[s.name]] = s.value
                elif s.name == "scanopt_drift_score":
                    key = (labels["feature"], labels["score"])
                    drift.setdefault(key, {})["value"] = s.value
                elif s.name == "scanopt_drift_threshold":
                    key = (labels["feature"], labels["score"])
                    drift.setdefault(key, {})["threshold"] = s.value
                elif s.name == "scanopt_shadow_pairs":
                    pairs[(labels["champion"], labels["shadow"])] = s.value
                elif s.name == "scanopt_shadow_difference":
                    compared = (labels["champion"], labels["shadow"], labels["target"])
                    shadow.setdefault(compared, {})[labels["bound"]] = s.value
                elif s.name == "scanopt_shadow_verdict":
                    compared = (labels["champion"], labels["shadow"], labels["target"])
                    shadow.setdefault(compared, {})["verdict"] = s.value
                elif s.name == "scanopt_shadow_mae":
                    # Each version's MAE on the pairs it shares with `paired_with`.
                    mae[(labels["version"], labels["paired_with"], labels["target"])] = s.value
                elif s.name == "scanopt_business_empty_rate":
                    empty.append(ArmRate(arm=labels["arm"], window=labels["window"], rate=s.value))
        labelled = {v: n for (v, t), f in accuracy.items() if not t for n in [f.get("labelled")]}
        alerts = evaluate(figures)
        ready = figures.ready or 0
        status = "down" if ready == 0 else "degraded" if alerts or ready < self._workers else "ok"
        return DashboardLive(
            at=datetime.now(UTC),
            status=status,
            instance=self._instance,
            ready_workers=ready,
            workers=self._workers,
            store_up=figures.store_up,
            model_versions=sorted(set(versions)),
            requests=counters["requests"],
            errors_5xx=counters["errors_5xx"],
            errors_4xx=counters["errors_4xx"],
            cache_hits=cache["scanopt_cache_hits_total"],
            cache_misses=cache["scanopt_cache_misses_total"],
            latency_buckets=[
                (le if math.isfinite(le) else None, n) for le, n in sorted(buckets.items())
            ],
            latency_bound_s=LATENCY_BOUND,
            sli_latency_error=dict(figures.latency_error),
            sli_availability_error=dict(figures.availability_error),
            alerts=alerts,
            accuracy=[
                AccuracyRow(
                    version=version,
                    target=target,
                    labelled=int(labelled.get(version) or 0),
                    mae=f.get("mae"),
                    training_mae=f.get("training_mae"),
                    coverage=f.get("coverage"),
                )
                for (version, target), f in sorted(accuracy.items())
                if target
            ],
            drift=[
                DriftRow(
                    feature=feature,
                    score=score,
                    value=f.get("value"),
                    threshold=f.get("threshold"),
                    alarm=figures.drift_alarms.get(feature, False),
                )
                for (feature, score), f in sorted(drift.items())
            ],
            empty_rate=sorted(empty, key=lambda r: (r.window, r.arm)),
            shadow=[
                ShadowRow(
                    champion=champion,
                    shadow=version,
                    target=target,
                    pairs=int(pairs[(champion, version)]),
                    champion_mae=_finite(mae.get((champion, version, target))),
                    shadow_mae=_finite(mae.get((version, champion, target))),
                    difference=_finite(f.get("estimate")),
                    lower=_finite(f.get("lower")),
                    upper=_finite(f.get("upper")),
                    verdict=_VERDICTS.get(f["verdict"], "not enough data"),
                )
                for (champion, version, target), f in sorted(shadow.items())
                if (champion, version) in pairs and "verdict" in f
            ],
        )

    async def history_points(self, window: str, now: datetime | None = None) -> DashboardHistory:
        """Volume, errors, slow share, latency quantiles and drift over `window`, from the
        store's rollups (raises the store's errors: the route answers 503)."""
        at = now or datetime.now(UTC)
        since, until, step = _slices(window, at)
        requests = await self._store.read_rollups(API_REQUESTS, since, until, step)
        latency = await self._store.read_rollups(PREDICTION_LATENCY, since, until, step)
        starts = [since + i * step for i in range(_SLICES[window])]
        points = series(requests, latency, starts, step.total_seconds())
        # The slice still running has lasted only until now: rates are over that, and
        # its point stands at now (a chart ending now would not show a later instant).
        elapsed = (at - starts[-1]).total_seconds()
        last = max(1.0, min(step.total_seconds(), elapsed))
        rates = [p.requests_per_s for p in points]
        rates[-1] = rates[-1] * step.total_seconds() / last
        version, drift = await self._monitor.drift_history(since, until, step)
        return DashboardHistory(
            window=window,
            step_s=step.total_seconds(),
            t=[min(p.at + step, at).timestamp() for p in points],
            requests_per_s=rates,
            error_ratio=[p.error_ratio for p in points],
            slow_ratio=[p.slow_ratio for p in points],
            p50=[p.p50 for p in points],
            p95=[p.p95 for p in points],
            p99=[p.p99 for p in points],
            drift_version=version,
            drift=drift,
        )

    async def stored(self, window: str) -> DashboardStored:
        """Recent feedback, the A/B summary and online accuracy history, from the store
        (raises the store's errors: the route answers 503 when it is unreachable)."""
        until = datetime.now(UTC)
        since = until - timedelta(seconds=HISTORY_WINDOWS[window])
        feedback = await self._store.list_feedback(since, until)
        usage = await self._store.usage(since, until)
        points = []
        step = timedelta(seconds=HISTORY_WINDOWS[window] / 24)
        start = since
        while start < until:
            for sums in await self._store.accuracy(start, start + step):
                if sums.arm == "all" or sums.n == 0:
                    continue
                points.append(
                    AccuracyPoint(
                        at=start + step,
                        version=sums.version,
                        arm=sums.arm,
                        n=sums.n,
                        count_mae=sums.count_abs_err / sums.n,
                        duration_mae=sums.duration_abs_err / sums.n,
                        count_coverage=sums.count_covered / sums.n,
                        duration_coverage=sums.duration_covered / sums.n,
                        empty=sum(b.sum_empty for b in sums.calibration),
                    )
                )
            start += step
        recent = sorted(feedback, key=lambda r: r.received_at, reverse=True)[:_FEEDBACK_SHOWN]
        return DashboardStored(
            window=window,
            feedback=[
                RecentFeedback(
                    received_at=r.received_at,
                    satisfaction=int(r.feedback.satisfaction),
                    usefulness=int(r.feedback.usefulness),
                    suggestion=r.feedback.suggestion,
                )
                for r in recent
            ],
            arms=[
                ArmSummary(
                    arm=arm,
                    users=u.users,
                    scans_completed=u.scans_completed,
                    empty_rate=u.empty_scans / u.scans_completed if u.scans_completed else None,
                    adoption=u.adoption,
                )
                for arm, u in sorted(usage.by_arm.items())
            ],
            accuracy=points,
        )


def _slices(window: str, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """(since, until, step) of `window`: whole minutes, the last slice holding now."""
    step = timedelta(seconds=HISTORY_WINDOWS[window] / _SLICES[window])
    minute = now.replace(second=0, microsecond=0)
    until = minute + timedelta(minutes=1)
    since = until - timedelta(seconds=HISTORY_WINDOWS[window])
    # Align slices on multiples of the step (from the epoch), so a point stays put as
    # the window moves on: the last slice ends at the next boundary at or after until.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    offset = (until - epoch) % step
    if offset:
        until += step - offset
        since += step - offset
    return since, until, step


_VERDICTS: Final = {-1.0: "better", 0.0: "undecided", 1.0: "worse"}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


_ACCURACY_GAUGES: Final = {
    "scanopt_online_mae": "mae",
    "scanopt_training_mae": "training_mae",
    "scanopt_online_coverage": "coverage",
    "scanopt_online_labelled": "labelled",
}
