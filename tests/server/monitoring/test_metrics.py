"""Metrics: per-instance registries, multiprocess merge across processes, worker exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from server.monitoring.metrics import Metrics
from server.settings import Settings
from tests.server.granian_process import REPO

# One "worker": counts 3 predictions and marks itself ready, then exits (optionally dead).
WORKER = """
import sys
from pathlib import Path
from server.monitoring.metrics import Metrics
from server.settings import Settings
metrics = Metrics(Settings.from_env())
metrics.predictions.labels("v1").inc(3)
metrics.serving("v1", "abc", None)
if sys.argv[1] == "dead":
    metrics.worker_exit()
"""


def values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def test_two_apps_in_one_process_do_not_share_instruments(tmp_path: Path) -> None:
    """Each Metrics owns its registry: no global state, no duplicate-name errors."""
    first = Metrics(Settings(artifacts=tmp_path))
    second = Metrics(Settings(artifacts=tmp_path))
    first.cache_hits.inc()
    assert first.registry.get_sample_value("scanopt_cache_hits_total") == 1
    assert second.registry.get_sample_value("scanopt_cache_hits_total") == 0


def test_multiprocess_counters_sum_and_dead_workers_leave_gauges(tmp_path: Path) -> None:
    """Counters from several processes add up; a worker marked dead stops counting as ready."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": ""}
    for mode in ("alive", "alive", "dead"):
        subprocess.run([sys.executable, "-c", WORKER, mode], env=env, check=True, cwd=REPO)
    merged = Metrics(Settings(artifacts=tmp_path, multiproc_dir=tmp_path)).render().decode()
    assert values(merged, "scanopt_predictions_total") == [({"model_version": "v1"}, 9.0)]
    # livesum keeps only processes not marked dead: two "alive" workers remain.
    assert values(merged, "scanopt_ready") == [({}, 2.0)]
