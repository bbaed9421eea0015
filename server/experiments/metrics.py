"""Prometheus instruments of the experiment gate's config cache.

They live in the registry they are given (the server's `Metrics.registry`); gauges say
how workers combine in multiprocess mode.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GateMetrics"]


class GateMetrics:
    """How fresh each worker's experiment configs are, and how often a refresh failed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.config_loaded = Gauge(
            "scanopt_experiment_config_loaded_timestamp_seconds",
            "Unix time of the oldest worker's last successful experiment config refresh.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.config_refresh_failures = Counter(
            "scanopt_experiment_config_refresh_failures",
            "Experiment config refreshes that failed (the last good config is kept).",
            registry=registry,
        )
