"""Metrics: per-instance registries, multiprocess merge across processes, worker exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from server.monitoring.metrics import Metrics
from server.settings import Settings
from tests.server.granian_process import REPO

# One "worker": counts 3 predictions and says it is ready; "stay" waits for stdin to close
# and then exits cleanly, "crash" exits at once without a word (as after a SIGKILL).
WORKER = """
import sys
from server.monitoring.metrics import Metrics
from server.settings import Settings
metrics = Metrics(Settings.from_env())
metrics.predictions.labels("v1").inc(3)
metrics.serving("v1", "abc", None)
if sys.argv[1] == "stay":
    print("up", flush=True)
    sys.stdin.read()
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


def test_multiprocess_counters_sum_and_gauges_follow_live_workers(tmp_path: Path) -> None:
    """Counters from every process add up; gauges count only live workers, including
    after a crash (no goodbye) and after a clean exit."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": ""}
    metrics = Metrics(Settings(artifacts=tmp_path, multiproc_dir=tmp_path))
    staying = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, "stay"],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in staying:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "up"
        subprocess.run([sys.executable, "-c", WORKER, "crash"], env=env, check=True, cwd=REPO)
        merged = metrics.render().decode()
        assert values(merged, "scanopt_predictions_total") == [({"model_version": "v1"}, 9.0)]
        assert values(merged, "scanopt_ready") == [({}, 2.0)]
    finally:
        for worker in staying:
            worker.communicate("", timeout=30)
    after = metrics.render().decode()
    assert values(after, "scanopt_predictions_total") == [({"model_version": "v1"}, 9.0)]
    assert values(after, "scanopt_ready") in ([], [({}, 0.0)])


# Instruments made before a fork (as the launcher imports the app before Granian forks),
# then updated in two forked children: each child's samples must go to its own files.
FORKING = """
import os, sys
from server.monitoring.metrics import Metrics
from server.settings import Settings
metrics = Metrics(Settings.from_env())
children = []
for n in (2, 5):
    pid = os.fork()
    if pid == 0:
        metrics.predictions.labels("v1").inc(n)
        metrics.serving("v1", "abc", None)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(" ".join(str(pid) for pid in children))
"""


def test_updates_after_a_fork_go_to_the_childs_own_files(tmp_path: Path) -> None:
    """A forked worker's first update opens files named by its own pid, not its parent's."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", FORKING], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    files = {p.name for p in tmp_path.glob("counter_*.db")}
    assert {f"counter_{pid}.db" for pid in run.stdout.split()} <= files
    metrics = Metrics(Settings(artifacts=tmp_path, multiproc_dir=tmp_path))
    merged = metrics.render().decode()
    assert values(merged, "scanopt_predictions_total") == [({"model_version": "v1"}, 7.0)]
