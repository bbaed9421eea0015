"""Prometheus metrics that add up across every Granian worker.

Under the launcher, PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is imported,
so every worker writes its samples to files there and `render` merges them per scrape
(MultiProcessCollector on a fresh registry). In one process (tests, benchmarks) the
instruments live in this object's own registry. Either way there is no global registry:
each `Metrics` owns its instruments.

Gauges say how they combine across workers: in-flight requests, readiness and model info
are summed over live workers (`livesum`), so `scanopt_ready` counts ready workers and
`scanopt_model_info{version, sha256}` counts the workers serving that version.

Every value update in multiprocess mode asks prometheus_client's process identifier for
the pid, to notice a fork and open the child's own files. Its default, `os.getpid`, is a
system call, and a request makes about eleven updates; `server.process.pid` answers from
a variable refreshed after every fork, so a fork is still noticed at the first update.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from server import process
from server.settings import Settings

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Sub-millisecond resolution where this service lives, seconds for the slow tail.
_HTTP_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
_INFERENCE_BUCKETS: Final = (
    0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5,
)  # fmt: skip
_BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# prometheus_client picks its value class when it is imported (multiprocess when
# PROMETHEUS_MULTIPROC_DIR is set); keep that choice, with the cheap pid. Instruments made
# after this line use it, and every instrument is made by a Metrics-like object later.
if getattr(values.ValueClass, "_multiprocess", False):
    values.ValueClass = values.MultiProcessValue(process_identifier=process.pid)  # type: ignore[no-untyped-call]  # untyped upstream


class Metrics:
    """Every instrument the server records, and the /metrics text."""

    def __init__(self, settings: Settings) -> None:
        self.multiproc_dir = settings.multiproc_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_duration = Histogram(
            "scanopt_http_request_duration_seconds",
            "HTTP request duration by route template, method and status.",
            ["route", "method", "status"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "scanopt_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "scanopt_http_requests_in_flight",
            "HTTP requests being served, summed over workers.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.inference_duration = Histogram(
            "scanopt_inference_duration_seconds",
            "Duration of one onnxruntime run, by model version.",
            ["model"],
            buckets=_INFERENCE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "scanopt_batch_size",
            "Rows per onnxruntime run.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter("scanopt_errors", "Errors by kind.", ["kind"], registry=r)
        self.cache_hits = Counter("scanopt_cache_hits", "Prediction cache hits.", registry=r)
        self.cache_misses = Counter("scanopt_cache_misses", "Prediction cache misses.", registry=r)
        self.predictions = Counter(
            "scanopt_predictions",
            "Scans predicted, by model version.",
            ["model_version"],
            registry=r,
        )
        self.model_info = Gauge(
            "scanopt_model_info",
            "Workers serving each model version (its model.onnx sha256 as a label).",
            ["version", "sha256"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "scanopt_ready",
            "Workers whose model is loaded and warmed.",
            registry=r,
            multiprocess_mode="livesum",
        )

        # Labelled children looked up once: `labels()` costs as much as the update itself.
        self._runs: dict[str, Any] = {}
        self._predicted: dict[str, Any] = {}
        self._requests: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe_run(self, version: str, seconds: float, rows: int) -> None:
        """One onnxruntime run of `rows` rows."""
        child = self._runs.get(version)
        if child is None:
            child = self._runs[version] = self.inference_duration.labels(version)
        child.observe(seconds)
        self.batch_size.observe(rows)

    def predicted(self, version: str, count: int = 1) -> None:
        """`count` scans predicted by `version`."""
        child = self._predicted.get(version)
        if child is None:
            child = self._predicted[version] = self.predictions.labels(version)
        child.inc(count)

    def observe_request(self, route: str, method: str, status: str, seconds: float) -> None:
        """One HTTP request (route template, method, status code)."""
        key = (route, method, status)
        children = self._requests.get(key)
        if children is None:
            children = self._requests[key] = (
                self.http_duration.labels(*key),
                self.http_requests.labels(*key),
            )
        children[0].observe(seconds)
        children[1].inc()

    def serving(self, version: str, sha256: str, previous: tuple[str, str] | None) -> None:
        """This worker now serves `version` (instead of `previous`)."""
        if previous is not None and previous != (version, sha256):
            self.model_info.labels(*previous).set(0)
        self.model_info.labels(version, sha256).set(1)
        self.ready.set(1)

    def render(self) -> bytes:
        """The exposition text: merged over every worker's files in multiprocess mode."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        _sweep_dead_workers(self.multiproc_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiproc_dir))  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
        return generate_latest(registry)

    def worker_exit(self) -> None:
        """Drop this worker's live gauges (prometheus_client's mark_process_dead)."""
        self.ready.set(0)
        if self.multiproc_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), path=str(self.multiproc_dir))  # type: ignore[no-untyped-call]  # untyped upstream


def _sweep_dead_workers(directory: Path) -> None:
    """mark_process_dead for workers that died without saying so (crash, SIGKILL).

    Granian respawns a crashed worker under a new pid; without this its live gauges
    (ready, in flight, model info) would count forever.
    """
    for path in directory.glob("gauge_live*_*.db"):
        suffix = path.stem.rsplit("_", 1)[-1]
        pid = int(suffix) if suffix.isdigit() else 0
        if pid <= 0 or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path=str(directory))  # type: ignore[no-untyped-call]  # untyped upstream
        except PermissionError:  # alive, someone else's
            continue
