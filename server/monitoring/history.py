"""Service history in the store: per-minute, mergeable request and latency rollups.

Each worker turns the growth of its own HTTP counters (prometheus_client's instruments of
this process, read with `collect()`, so nothing is added to the request path) into
one-minute rows of the store's `metric_rollups` table every flush:

- ``api_requests`` with labels ``{"status": "2xx" | "3xx" | "4xx" | "5xx"}``: API requests
  (every ``/v1/...`` and ``/v2/models/...`` route, as the availability SLI) by status class;
- ``prediction_latency`` with labels ``{"le": "<upper bound in seconds>"}``: prediction
  requests (the latency SLI's routes, 5xx excluded) whose duration fell in the histogram
  bucket (previous bound, le]; ``+Inf`` for the last. `minimum` and `maximum` are the
  bucket's bounds; `total` is 0 (a bucket has no sum of its own).

Counts add in the store (`write_rollups` merges), so any number of workers and replicas
sum exactly, and quantiles of any window are `histogram_quantile` over the merged bucket
counts, as Prometheus computes them. A failed write keeps the growth for the next flush
(it then lands in that flush's minute). `series` turns a window's rows into points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import msgspec

from server.monitoring.figures import API_ROUTES, LATENCY_BOUND, PREDICTION_ROUTES
from server.monitoring.metrics import Metrics
from server.store.records import MetricRollup

__all__ = [
    "API_REQUESTS",
    "PREDICTION_LATENCY",
    "HistoryPoint",
    "HistoryRecorder",
    "quantile",
    "series",
]

API_REQUESTS: Final = "api_requests"
PREDICTION_LATENCY: Final = "prediction_latency"
_LABELS = msgspec.json.Encoder(order="sorted")
_DECODE_LABELS = msgspec.json.Decoder(dict[str, str])


class HistoryRecorder:
    """The growth of one worker's request counters since its last flush, as rollups."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # (metric, labels) -> cumulative count at the last successful write
        self._written: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], float] = {}

    def _totals(self) -> dict[tuple[str, str], float]:
        """This worker's cumulative counts per rollup series."""
        totals: dict[tuple[str, str], float] = {}
        for family in self._metrics.http_requests.collect():
            for s in family.samples:
                if not s.name.endswith("_total") or not API_ROUTES.fullmatch(s.labels["route"]):
                    continue
                key = (
                    API_REQUESTS,
                    _LABELS.encode({"status": s.labels["status"][0] + "xx"}).decode(),
                )
                totals[key] = totals.get(key, 0.0) + s.value
        for family in self._metrics.http_duration.collect():
            for s in family.samples:
                labels = s.labels
                if (
                    not s.name.endswith("_bucket")
                    or not PREDICTION_ROUTES.fullmatch(labels["route"])
                    or labels["status"].startswith("5")
                ):
                    continue
                key = (PREDICTION_LATENCY, _LABELS.encode({"le": labels["le"]}).decode())
                totals[key] = totals.get(key, 0.0) + s.value  # cumulative over le
        return totals

    def take(self, at: datetime) -> list[MetricRollup]:
        """The rollups to write for the minute of `at` (call `written` once stored)."""
        totals = self._totals()
        bounds = sorted(
            (_bound(labels), labels) for metric, labels in totals if metric == PREDICTION_LATENCY
        )
        grown: dict[tuple[str, str], float] = {
            key: value - self._written.get(key, 0.0) for key, value in totals.items()
        }
        rollups = []
        below = 0.0  # the cumulative growth of the bucket under this one
        lower = 0.0
        for upper, labels in bounds:
            cumulative = grown[(PREDICTION_LATENCY, labels)]
            n = round(cumulative - below)
            below = cumulative
            if n > 0:
                rollups.append(_rollup(PREDICTION_LATENCY, labels, at, n, lower, upper))
            lower = upper
        for (metric, labels), value in grown.items():
            n = round(value)
            if metric == API_REQUESTS and n > 0:
                rollups.append(_rollup(metric, labels, at, n, 0.0, 0.0))
        self._pending = totals
        return rollups

    def written(self) -> None:
        """The rollups of the last `take` are stored: count from there."""
        self._written = self._pending


def _bound(labels: str) -> float:
    return float(_DECODE_LABELS.decode(labels)["le"])


def _rollup(
    metric: str, labels: str, at: datetime, n: int, low: float, high: float
) -> MetricRollup:
    return MetricRollup(
        metric=metric,
        labels=labels,
        bucket_start=at,
        count=n,
        total=0.0,
        minimum=low,
        maximum=high if math.isfinite(high) else low,
    )


class HistoryPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One slice of a window: rates, shares and latency quantiles (None: nothing in it)."""

    at: datetime
    requests_per_s: float
    error_ratio: float | None
    slow_ratio: float | None
    p50: float | None
    p95: float | None
    p99: float | None


def quantile(q: float, buckets: Sequence[tuple[float, float, float]]) -> float | None:
    """Prometheus's histogram_quantile over (lower bound, upper bound, count) buckets
    (empty buckets may be left out: each bucket carries its own lower bound)."""
    ordered = sorted(buckets, key=lambda b: b[1])
    total = sum(n for _, _, n in ordered)
    if total <= 0:
        return None
    rank = q * total
    below = 0.0
    for lower, upper, n in ordered:
        if below + n >= rank:
            if not math.isfinite(upper):
                return lower  # the +Inf bucket: its lower bound, as Prometheus answers
            return lower + (upper - lower) * ((rank - below) / n if n else 0.0)
        below += n
    return ordered[-1][0]


def series(
    requests: Iterable[MetricRollup],
    latency: Iterable[MetricRollup],
    starts: Sequence[datetime],
    step_s: float,
) -> list[HistoryPoint]:
    """One point per slice start in `starts` from rollups grouped by those starts."""
    by_start: dict[datetime, dict[str, float]] = {}
    for r in requests:
        status = _DECODE_LABELS.decode(r.labels).get("status", "")
        slot = by_start.setdefault(r.bucket_start, {})
        slot["all"] = slot.get("all", 0.0) + r.count
        slot[status] = slot.get(status, 0.0) + r.count
    buckets: dict[datetime, list[tuple[float, float, float]]] = {}
    for r in latency:
        bucket = (r.minimum, _bound(r.labels), float(r.count))
        buckets.setdefault(r.bucket_start, []).append(bucket)
    points = []
    for start in starts:
        slot = by_start.get(start, {})
        requests_n = slot.get("all", 0.0)
        spread = buckets.get(start, [])
        served = sum(n for _, _, n in spread)
        slow = sum(n for _, upper, n in spread if upper > LATENCY_BOUND)
        points.append(
            HistoryPoint(
                at=start,
                requests_per_s=requests_n / step_s,
                error_ratio=slot.get("5xx", 0.0) / requests_n if requests_n else None,
                slow_ratio=slow / served if served else None,
                p50=quantile(0.5, spread),
                p95=quantile(0.95, spread),
                p99=quantile(0.99, spread),
            )
        )
    return points
