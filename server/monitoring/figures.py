"""The app's own figures, read from its merged /metrics: what the alerts and dashboard use.

`Snapshot.read` sums the SLI counters out of the exposition (every worker merged), with
the same route sets and 50 ms bound as deploy/prometheus/alerts.yml. `SliHistory` keeps a
worker's snapshots (one per `step_s`, for `keep_s`: 3 days by default) and answers the
SLI error ratio over each alert window the way `rate(a[w]) / rate(b[w])` does: the
counters' growth between the oldest snapshot inside the window and the newest.
`read_figures` adds the monitoring gauges and readiness, giving
`server.monitoring.alerts.Figures`.
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec
from prometheus_client.metrics_core import Metric

from server.monitoring.alerts import SLI_WINDOWS, Figures, VersionAccuracy

__all__ = ["LATENCY_BOUND", "PREDICTION_ROUTES", "SliHistory", "Snapshot", "read_figures"]

PREDICTION_ROUTES: Final = re.compile(
    r"/v1/predict|/v1/predict/batch|/v1/recommend|/v2/models/.+/infer"
)
API_ROUTES: Final = re.compile(r"/v1/.+|/v2/models/.+")
LATENCY_BOUND: Final = 0.05
WINDOW_S: Final = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "3d": 259200}
_SERVER_ERROR: Final = re.compile(r"5\d\d")


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Cumulative SLI counters at one moment, summed over every worker."""

    at: float
    predictions: float = 0.0  # non-5xx prediction requests
    predictions_fast: float = 0.0  # ... answered within LATENCY_BOUND
    api: float = 0.0  # API requests
    api_failed: float = 0.0  # ... answered with a 5xx
    dropped: dict[str, float] = msgspec.field(default_factory=dict)  # "kind/reason" -> rows

    @classmethod
    def read(cls, families: Iterable[Metric], at: float | None = None) -> Snapshot:
        predictions = fast = api = failed = 0.0
        dropped: dict[str, float] = {}
        for family in families:
            for sample in family.samples:
                labels = sample.labels
                route, status = labels.get("route", ""), labels.get("status", "")
                if sample.name == "scanopt_http_request_duration_seconds_bucket":
                    if _is_prediction(route, status) and float(labels["le"]) == LATENCY_BOUND:
                        fast += sample.value
                elif sample.name == "scanopt_http_request_duration_seconds_count":
                    if _is_prediction(route, status):
                        predictions += sample.value
                elif sample.name == "scanopt_http_requests_total":
                    if API_ROUTES.fullmatch(route):
                        api += sample.value
                        failed += sample.value if _SERVER_ERROR.fullmatch(status) else 0.0
                elif sample.name == "scanopt_store_dropped_total":
                    key = f"{labels.get('kind', '')}/{labels.get('reason', '')}"
                    dropped[key] = dropped.get(key, 0.0) + sample.value
        return cls(
            at=time.time() if at is None else at,
            predictions=predictions,
            predictions_fast=fast,
            api=api,
            api_failed=failed,
            dropped=dropped,
        )


def _is_prediction(route: str, status: str) -> bool:
    return bool(PREDICTION_ROUTES.fullmatch(route)) and not _SERVER_ERROR.fullmatch(status)


class SliHistory:
    """A worker's recent snapshots: windowed SLI error ratios and dropped rows.

    Thread-safe: the sampler and the live endpoint both run in worker threads.
    """

    def __init__(self, step_s: float = 15.0, keep_s: float = WINDOW_S["3d"] + 60.0) -> None:
        self.step_s = step_s
        self.keep_s = keep_s
        self._snapshots: list[Snapshot] = []
        self._times: list[float] = []  # the snapshots' `at`, ascending, for bisection
        self._lock = threading.Lock()

    def add(self, snapshot: Snapshot) -> None:
        """Keep `snapshot` if a step has passed since the last kept one; forget old ones."""
        with self._lock:
            if self._times and snapshot.at - self._times[-1] < self.step_s:
                return
            self._snapshots.append(snapshot)
            self._times.append(snapshot.at)
            old = bisect_left(self._times, snapshot.at - self.keep_s)
            if old:
                del self._snapshots[:old], self._times[:old]

    def snapshots(self, seconds: float) -> list[Snapshot]:
        """The kept snapshots of the last `seconds`, oldest first."""
        with self._lock:
            if not self._times:
                return []
            return self._snapshots[bisect_left(self._times, self._times[-1] - seconds) :]

    def _oldest_within(self, seconds: float, now: Snapshot) -> Snapshot:
        with self._lock:
            first = bisect_left(self._times, now.at - seconds)
            return self._snapshots[first] if first < len(self._snapshots) else now

    def error_ratios(self, now: Snapshot) -> tuple[dict[str, float], dict[str, float]]:
        """(latency, availability) error ratio per alert window; a window with no request
        in it is left out, as Prometheus's division by a zero rate gives no sample."""
        latency: dict[str, float] = {}
        availability: dict[str, float] = {}
        for window in SLI_WINDOWS:
            then = self._oldest_within(WINDOW_S[window], now)
            served = now.predictions - then.predictions
            if served > 0:
                fast = now.predictions_fast - then.predictions_fast
                latency[window] = 1.0 - fast / served
            requests = now.api - then.api
            if requests > 0:
                availability[window] = (now.api_failed - then.api_failed) / requests
        return latency, availability

    def dropped_within(self, seconds: float, now: Snapshot) -> dict[tuple[str, str], float]:
        """(kind, reason) -> rows dropped over the last `seconds`."""
        then = self._oldest_within(seconds, now)
        found = {}
        for key, value in now.dropped.items():
            kind, _, reason = key.partition("/")
            found[(kind, reason)] = value - then.dropped.get(key, 0.0)
        return found


def read_figures(
    families: Iterable[Metric], history: SliHistory, *, instance: str, workers: int
) -> Figures:
    """Figures for the alert conditions from the merged exposition and the SLI history.

    `workers` is how many workers this instance runs: a lower ready count means one is
    not ready (Prometheus compares with the most ready seen over the last hour instead).
    """
    families = list(families)
    now = Snapshot.read(families)
    history.add(now)
    latency, availability = history.error_ratios(now)
    gauges = _gauges(families)
    accuracy = []
    for version, labelled in gauges.get("scanopt_online_labelled", {}).items():
        if dict(version).get("window") != "1h":
            continue
        name = dict(version)["version"]
        accuracy.append(
            VersionAccuracy(
                version=name,
                labelled=int(labelled),
                mae=_by_target(gauges, "scanopt_online_mae", name, window="1h"),
                training_mae=_by_target(gauges, "scanopt_training_mae", name),
                coverage=_by_target(gauges, "scanopt_online_coverage", name, window="1h"),
            )
        )
    ready = gauges.get("scanopt_ready", {}).get((), None)
    store_up = gauges.get("scanopt_store_up", {}).get((), None)
    return Figures(
        instance=instance,
        latency_error=latency,
        availability_error=availability,
        accuracy=accuracy,
        drift_alarms={
            dict(k)["feature"]: v == 1
            for k, v in gauges.get("scanopt_drift_alarm", {}).items()
            if "feature" in dict(k)
        },
        ndcg={
            dict(k)["version"]: v
            for k, v in gauges.get("scanopt_importance_ndcg", {}).items()
            if "version" in dict(k)
        },
        ready=None if ready is None else int(ready),
        ready_peak=workers,
        store_up=None if store_up is None else store_up == 1,
        dropped_10m=history.dropped_within(600, now),
        config_age_s={
            dict(k)["experiment"]: v
            for k, v in gauges.get("scanopt_experiment_config_age_seconds", {}).items()
            if "experiment" in dict(k)
        },
    )


Labels = tuple[tuple[str, str], ...]


def _gauges(families: Iterable[Metric]) -> dict[str, dict[Labels, float]]:
    found: dict[str, dict[Labels, float]] = {}
    for family in families:
        if family.type != "gauge":
            continue
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _by_target(
    gauges: Mapping[str, Mapping[Labels, float]], name: str, version: str, **match: str
) -> dict[str, float]:
    found = {}
    for labels, value in gauges.get(name, {}).items():
        label = dict(labels)
        if label.get("version") == version and all(label.get(k) == v for k, v in match.items()):
            found[label["target"]] = value
    return found
