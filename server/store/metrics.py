"""Prometheus instruments of the store and the prediction log buffer.

They live in the registry they are given (the server's `Metrics.registry`), so there is
no global registry; in multiprocess mode prometheus_client writes their samples to the
shared directory and /metrics merges every worker's. Gauges say how workers combine.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["StoreMetrics"]

_FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StoreMetrics:
    """Counters of what the prediction log wrote, dropped and failed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.dropped = Counter(
            "scanopt_store_dropped",
            "Prediction log rows lost, by kind (prediction, exposure, shadow) and reason "
            "(buffer_full, store_unavailable, rejected, shutdown).",
            ["kind", "reason"],
            registry=r,
        )
        self.written = Counter(
            "scanopt_store_log_written",
            "Prediction log rows committed to the store, by kind (prediction, exposure, shadow).",
            ["kind"],
            registry=r,
        )
        self.pending = Gauge(
            "scanopt_store_log_pending",
            "Prediction log rows waiting in memory, summed over workers.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.flush_failures = Counter(
            "scanopt_store_flush_failures",
            "Prediction log flushes that failed because the store was unavailable.",
            registry=r,
        )
        self.flush_duration = Histogram(
            "scanopt_store_flush_duration_seconds",
            "Duration of one prediction log batch write.",
            buckets=_FLUSH_BUCKETS,
            registry=r,
        )
