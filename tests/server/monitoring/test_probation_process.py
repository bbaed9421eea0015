"""Probation in a real Granian server with 2 workers sharing PostgreSQL: a bad promotion
is rolled back by exactly one worker, once, and both workers follow."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.server.granian_process import ServerProcess
from tests.server.monitoring.promotions import (
    Promotions,
    build_promotions,
    copy_promotions,
    promote_now,
    serve_outcomes,
    traffic,
)
from tests.server.resilience.processes import launch, wait_until
from tests.server.store.backends import pg_dsn

__all__ = ["pg_dsn"]

OUTCOMES = 400
SEED = 100  # the same traffic as tests/server/monitoring/test_probation.py


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Promotions:
    return build_promotions(tmp_path_factory.mktemp("promotions") / "artifacts")


def _rolled_back_lines(server: ServerProcess) -> list[dict[str, object]]:
    lines = []
    for text in server.output().splitlines():
        if text.startswith("{") and '"model_rolled_back"' in text:
            lines.append(json.loads(text))
    return lines


def test_two_workers_roll_a_bad_promotion_back_once(
    tmp_path: Path, built: Promotions, pg_dsn: str, record_property: pytest.RecordProperty
) -> None:
    """Outcomes arrive on both workers; one rolls back (counter 1, one log line), both
    end up serving the parent, and later checks change nothing."""
    artifacts = copy_promotions(built, tmp_path / "artifacts")
    promote_now(artifacts, built.bad)
    server = launch(
        tmp_path,
        artifacts,
        store_dsn=pg_dsn,
        monitor_interval_s=1,
        reload_poll_s=0.5,
        probation_outcomes=OUTCOMES,
        probation_min_labelled=OUTCOMES,
    )
    try:
        assert server.metric("scanopt_model_info", version=built.bad) == 2
        with httpx.Client(base_url=server.url, timeout=30) as http:
            versions = serve_outcomes(http, traffic(OUTCOMES, SEED), datetime.now(UTC).isoformat())
        assert set(versions) == {built.bad}
        took = wait_until(
            f"both workers serving {built.parent}",
            lambda: server.metric("scanopt_model_info", version=built.parent) == 2,
            timeout_s=90,
        )
        record_property("rolled_back_and_followed_s", round(took, 2))
        assert (artifacts / "current").read_text().strip() == built.parent
        assert server.metric("scanopt_model_info", version=built.bad) == 0
        time.sleep(3)  # several more probation runs, on whichever worker holds the lease
        assert server.metric("scanopt_model_rollbacks_total", reason="accuracy") == 1
        assert server.metric("scanopt_model_rollbacks_total", reason="errors") == 0
        (line,) = _rolled_back_lines(server)
        assert line["model_version"] == built.bad
        assert line["parent_version"] == built.parent
        assert line["reason"] == "accuracy"
        assert "duration_s online MAE" in str(line["msg"])
        assert (artifacts / "models" / built.bad / "rolled_back.json").is_file()
    finally:
        server.stop()
