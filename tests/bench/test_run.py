"""bench.run end to end on small configurations: figures from clean runs, none from failed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import write_bodies
from bench.plan import RunConfig
from bench.run import _Paths, run_http

pytestmark = pytest.mark.slow


def _paths(tmp_path: Path, artifacts: Path) -> _Paths:
    bodies = [b'{"a":%d}' % i for i in range(50)]
    return _Paths(
        artifacts=artifacts,
        workdir=tmp_path,
        predict_bodies=write_bodies(tmp_path / "predict.jsonl", bodies),
        recommend_bodies=write_bodies(tmp_path / "recommend.jsonl", bodies),
        baseline_model=None,
    )


def test_clean_run_has_closed_and_open_loop_figures_and_memory(tmp_path: Path) -> None:
    """The ceiling under a short load: wrk and open-loop figures and a worker's peak RSS."""
    run = RunConfig(
        name="ceiling 1w", server="ceiling", workers=1, wrk_s=1.0, open_rate=100.0, open_s=1.0
    )
    result = run_http(run, _paths(tmp_path, tmp_path / "none"), warmup_s=0.5)
    assert result.failure is None
    assert result.closed is not None
    assert result.closed.requests > 0
    assert result.open is not None
    assert result.open.requests == 100
    assert len(result.peak_rss_mb) == 1
    assert result.peak_rss_mb[0] > 10.0


def test_server_that_cannot_start_gives_a_failure_and_no_figure(tmp_path: Path) -> None:
    """scanopt without a model: the run names why it failed and carries no number."""
    empty = tmp_path / "artifacts"
    empty.mkdir()
    run = RunConfig(name="scanopt 1w batcher off", server="scanopt", workers=1, batcher=False)
    result = run_http(run, _paths(tmp_path, empty), warmup_s=0.5)
    assert result.failure is not None
    assert result.failure.startswith("scanopt 1w batcher off")
    assert "exited with" in result.failure
    assert result.closed is None
    assert result.open is None
    assert result.peak_rss_mb == []


def test_baseline_without_its_model_fails_before_starting(tmp_path: Path) -> None:
    """The FastAPI baseline with no pickle fails with the reason, not with figures."""
    run = RunConfig(name="fastapi+sklearn 1w", server="fastapi-sklearn", workers=1)
    result = run_http(run, _paths(tmp_path, tmp_path), warmup_s=0.5)
    assert result.failure is not None
    assert "baseline model pickle" in result.failure
    assert result.closed is None
