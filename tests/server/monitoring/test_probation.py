"""Probation after a promotion: a bad version is rolled back by the service itself once
enough outcomes arrive (counted, logged once, marked), a good one passes, probation off
does nothing, a failing error rate trips it too; on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from export.lifecycle import LifecycleError, promote, rollback
from server.app import create_app
from server.domain.alias import read_last_move, read_rollback_mark
from server.domain.versions import list_versions
from server.inference.artifacts import verify_version
from server.monitoring.accuracy import merge_sums
from server.monitoring.monitor import RECOMPUTE
from server.monitoring.probation import (
    Probation,
    ProbationMetrics,
    ProbationSettings,
    prediction_requests,
    relative_worse,
)
from server.settings import Settings
from server.store.interface import Store
from server.store.monitoring import AccuracySums
from tests.server.conftest import make_settings
from tests.server.monitoring.promotions import (
    Promotions,
    build_promotions,
    copy_promotions,
    promote_now,
    serve_outcomes,
    traffic,
)
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

OUTCOMES = 400
# Simulated history the default model did not see; on it the default model's 400-outcome
# figures are inside every bar (result_count MAE 5.2, duration MAE 3.1, coverage 0.88 and
# 0.93), while the bad version's duration MAE is ~45 s and its coverage ~0.
SEED = 100


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Promotions:
    return build_promotions(tmp_path_factory.mktemp("promotions") / "artifacts")


@pytest.fixture
def artifacts(tmp_path: Path, built: Promotions) -> Path:
    return copy_promotions(built, tmp_path / "artifacts")


def _current(artifacts: Path) -> str:
    return (artifacts / "current").read_text().strip()


def _start(artifacts: Path, store_dsn: str, **overrides: Any) -> TestClient[Any]:
    settings = make_settings(
        artifacts,
        store_dsn=store_dsn,
        drift_flush_s=600.0,
        monitor_interval_s=3600.0,  # the test drives the jobs
        probation_outcomes=OUTCOMES,
        probation_min_labelled=OUTCOMES,
        **overrides,
    )
    return TestClient(create_app(settings))


def _served(client: TestClient[Any], *, hard: bool = False, ids: str = "e") -> list[str]:
    """Serve the traffic and post its outcomes, roll the accuracy up."""
    records = traffic(OUTCOMES, SEED, hard=hard)
    versions = serve_outcomes(client, records, datetime.now(UTC).isoformat(), ids=ids)
    worker = client.app.state.worker
    portal = client.blocking_portal
    assert portal is not None
    assert portal.call(worker.log.flush) is True
    now = datetime.now(UTC)
    portal.call(worker.store.refresh_accuracy, now - RECOMPUTE, now + timedelta(minutes=1))
    return versions


def _served_then_checked(client: TestClient[Any]) -> tuple[list[str], str | None]:
    """Serve the traffic and post its outcomes, roll the accuracy up, run probation once."""
    versions = _served(client)
    portal = client.blocking_portal
    assert portal is not None
    return versions, portal.call(client.app.state.worker.probation.check)


def _rollbacks(client: TestClient[Any], reason: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'scanopt_model_rollbacks_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no scanopt_model_rollbacks_total{{reason={reason!r}}} on /metrics")


def _rolled_back_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("model rolled")]


@pytest.fixture
def bad_promotion(artifacts: Path, built: Promotions) -> Path:
    promote_now(artifacts, built.bad)
    return artifacts


def test_a_bad_promotion_is_rolled_back_once_enough_outcomes_arrive(
    bad_promotion: Path, built: Promotions, store_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The alias goes back to the parent, every later check leaves it, the rollback is
    counted once with its reason, logged once with figures and thresholds, and marked."""
    artifacts = bad_promotion
    caplog.set_level(logging.INFO, logger="scanopt")
    with _start(artifacts, store_dsn) as client:
        assert client.get("/v1/models/versions").json()["serving"] == built.bad
        versions, reason = _served_then_checked(client)
        assert set(versions) == {built.bad}
        assert reason == "accuracy"
        assert _current(artifacts) == built.parent
        # This worker followed at once (the others poll).
        assert client.get("/v1/models/versions").json()["serving"] == built.parent
        assert _rollbacks(client, "accuracy") == 1.0
        assert _rollbacks(client, "errors") == 0.0
        portal = client.blocking_portal
        assert portal is not None
        assert portal.call(client.app.state.worker.probation.check) is None
        assert _rollbacks(client, "accuracy") == 1.0
    (line,) = _rolled_back_lines(caplog)
    assert f"from {built.bad} to {built.parent}" in line
    assert "duration_s online MAE" in line
    assert "the plan's bar 5" in line
    assert "1.2 x the training MAE" in line
    assert "coverage" in line
    assert "outside 0.85-0.95" in line
    assert f"on {OUTCOMES} labelled outcomes" in line
    # The parent served nothing before the promotion: the absolute conditions decide.
    assert f"absolute conditions only: the parent {built.parent} has 0 labelled" in line
    mark = read_rollback_mark(artifacts, built.bad)
    assert mark is not None
    assert (mark.to_version, mark.reason) == (built.parent, "accuracy")
    move = read_last_move(artifacts)
    assert move is not None
    assert (move.kind, move.previous) == ("rollback", built.bad)
    listed = {v.version: v for v in list_versions(artifacts).versions}
    assert listed[built.bad].rolled_back is not None
    assert listed[built.good].rolled_back is None
    # Nothing that promotes by itself brings it back; a person can, by name.
    with pytest.raises(LifecycleError, match="was rolled back"):
        promote(artifacts, built.bad, targets=False)
    assert _current(artifacts) == built.parent
    assert promote(artifacts, built.bad, targets=False, allow_rolled_back=True).changed


def test_a_good_promotion_passes_probation(
    artifacts: Path, built: Promotions, store_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same graph under a new name keeps serving after its outcomes are judged."""
    promote_now(artifacts, built.good)
    caplog.set_level(logging.INFO, logger="scanopt")
    with _start(artifacts, store_dsn) as client:
        versions, reason = _served_then_checked(client)
        assert set(versions) == {built.good}
        assert reason is None
        assert _current(artifacts) == built.good
        assert _rollbacks(client, "accuracy") == 0.0
    assert _rolled_back_lines(caplog) == []
    assert any(r.getMessage() == "probation passed" for r in caplog.records)
    assert read_rollback_mark(artifacts, built.good) is None


@pytest.mark.parametrize(
    ("hard", "new", "expected"),
    [(True, "good", None), (False, "bad", "accuracy")],
    ids=["as-good-as-its-parent-on-hard-traffic", "worse-than-its-parent"],
)
def test_the_new_version_is_judged_against_its_parent_before_the_promotion(
    artifacts: Path,
    built: Promotions,
    store_dsn: str,
    caplog: pytest.LogCaptureFixture,
    hard: bool,
    new: str,
    expected: str | None,
) -> None:
    """The parent serves a stretch of traffic, then the new version the same stretch. On
    the 4x world's outcomes the good version (the parent's graph) is over every absolute
    bar, but no worse than its parent was: it passes. The bad version on ordinary traffic
    is over the bars and worse than its parent: it is rolled back, the line says so."""
    version = getattr(built, new)
    caplog.set_level(logging.INFO, logger="scanopt")
    with _start(artifacts, store_dsn) as client:
        assert set(_served(client, hard=hard, ids="before")) == {built.parent}
    promote_now(artifacts, version)
    with _start(artifacts, store_dsn) as client:
        assert set(_served(client, hard=hard, ids="after")) == {version}
        worker = client.app.state.worker
        portal = client.blocking_portal
        assert portal is not None
        now = datetime.now(UTC)
        sums = merge_sums(portal.call(worker.store.accuracy, now - RECOMPUTE, now, version))
        assert sums is not None
        assert sums.n == OUTCOMES
        assert sums.duration_abs_err / sums.n > 5  # over the plan's bar either way
        assert portal.call(worker.probation.check) == expected
        assert _current(artifacts) == (built.parent if expected else version)
        assert _rollbacks(client, "accuracy") == (1.0 if expected else 0.0)
    lines = _rolled_back_lines(caplog)
    if expected is None:
        assert lines == []
        assert any(r.getMessage() == "probation passed" for r in caplog.records)
    else:
        (line,) = lines
        assert "duration_s online MAE" in line
        assert "worse than the parent's MAE" in line
        assert f"by more than 20% on its {OUTCOMES} outcomes before the promotion" in line
        assert "alpha 0.01" in line
        assert "absolute conditions only" not in line


def test_probation_off_leaves_a_bad_promotion_serving(
    bad_promotion: Path, built: Promotions, store_dsn: str
) -> None:
    """SCANOPT_PROBATION=off: the same bad promotion and outcomes move nothing."""
    with _start(bad_promotion, store_dsn, probation=False) as client:
        _, reason = _served_then_checked(client)
        assert reason is None
        assert _current(bad_promotion) == built.bad
        assert _rollbacks(client, "accuracy") == 0.0
    assert read_rollback_mark(bad_promotion, built.bad) is None


def test_a_rollback_starts_no_probation(artifacts: Path, built: Promotions, store_dsn: str) -> None:
    """After a rollback to a version that has a parent, that version is not on probation."""
    promote_now(artifacts, built.good)
    with _start(artifacts, store_dsn) as client:
        probation = client.app.state.worker.probation
        assert probation.subject() is not None
        promote(artifacts, built.bad, targets=False)
        rollback(artifacts, targets=False)  # back to the default model: it has a parent too
        assert _current(artifacts) == built.parent
        assert probation.subject() is None


def _exposition(answered: int, failed: int) -> bytes:
    ok = answered - failed
    return (
        "# TYPE scanopt_http_requests counter\n"
        f'scanopt_http_requests_total{{method="POST",route="/v1/predict",status="200"}} {ok}\n'
        f'scanopt_http_requests_total{{method="POST",route="/v1/predict",status="500"}} {failed}\n'
        f'scanopt_http_requests_total{{method="POST",route="/v1/events",status="503"}} 999\n'
    ).encode()


def test_prediction_requests_count_only_the_routes_the_model_answers() -> None:
    """A store outage's 503s on events are not the model's: they are left out."""
    families = text_string_to_metric_families(_exposition(300, 12).decode())
    assert prediction_requests(families) == (300.0, 12.0)


@pytest.mark.anyio
@pytest.mark.parametrize(("failed", "expected"), [(30, "errors"), (3, None)])
async def test_a_5xx_share_over_the_page_threshold_rolls_back(
    artifacts: Path, built: Promotions, store: Store, failed: int, expected: str | None
) -> None:
    """30 of 300 prediction requests failing (10%, over 1.44%) since the first check
    rolls back, with reason errors; 3 of 300 (1%) does not."""
    promote_now(artifacts, built.good)
    counters = iter([_exposition(0, 0), _exposition(300, failed)])
    followed = []

    async def follow() -> None:
        followed.append(True)

    registry = CollectorRegistry()
    probation = Probation(
        store,
        ProbationMetrics(registry),
        artifacts,
        ProbationSettings.of(Settings(probation_min_requests=200)),
        render=lambda: next(counters),
        follow=follow,
        verify=verify_version,
        logger=logging.getLogger("scanopt"),
    )
    assert await probation.check() is None  # the baseline
    assert await probation.check() == expected
    assert _current(artifacts) == (built.parent if expected else built.good)
    assert followed == ([True] if expected else [])
    rolled = registry.get_sample_value("scanopt_model_rollbacks_total", {"reason": "errors"})
    assert rolled == (1.0 if expected else 0.0)


@pytest.mark.anyio
async def test_only_the_lease_holder_judges(
    artifacts: Path, built: Promotions, store: Store
) -> None:
    """Two workers see the same failing error rate; the one that does not hold the store
    lease leaves the alias alone, the holder rolls back."""
    promote_now(artifacts, built.good)

    async def follow() -> None:
        return None

    def make(holder: str) -> Probation:
        counters = iter([_exposition(0, 0), _exposition(300, 30)])
        return Probation(
            store,
            ProbationMetrics(CollectorRegistry()),
            artifacts,
            ProbationSettings.of(Settings(probation_min_requests=200)),
            render=lambda: next(counters),
            follow=follow,
            verify=verify_version,
            logger=logging.getLogger("scanopt"),
            holder=holder,
        )

    first, second = make("host-a:1"), make("host-b:2")
    assert await first.check() is None  # takes the lease
    assert await second.check() is None
    assert await second.check() is None  # not the holder: no judgement
    assert _current(artifacts) == built.good
    assert await first.check() == "errors"
    assert _current(artifacts) == built.parent


def _sums(n: int, covered: int, abs_err: float, sq_err: float) -> AccuracySums:
    return AccuracySums(
        version="v",
        arm="all",
        n=n,
        count_abs_err=abs_err,
        count_sq_err=sq_err,
        count_sum=0.0,
        count_sum_sq=0.0,
        count_covered=covered,
        duration_abs_err=0.0,
        duration_sq_err=0.0,
        duration_sum=0.0,
        duration_sum_sq=0.0,
        duration_covered=0,
        brier_sum=0.0,
    )


@pytest.mark.parametrize(
    ("new", "parent", "worse"),
    [
        ((0.70, 10.0), (0.88, 10.0), True),  # coverage fell 0.18 below the band
        ((0.82, 10.0), (0.84, 10.0), False),  # out of the band, as the parent was
        ((0.99, 10.0), (0.90, 10.0), True),  # over the band, 0.09 over the parent's
        ((0.90, 20.0), (0.90, 10.0), True),  # MAE twice the parent's
        ((0.90, 11.0), (0.90, 10.0), False),  # MAE within 20% of the parent's
    ],
)
def test_relative_worse_needs_the_margin_in_the_direction_that_tripped(
    new: tuple[float, float], parent: tuple[float, float], worse: bool
) -> None:
    """1,000 outcomes each, absolute errors' standard deviation 5: a tripped condition
    stands only when the new version is worse than its parent by more than the margin."""
    n = 1000

    def sums(coverage: float, mae: float) -> AccuracySums:
        return _sums(n, round(coverage * n), mae * n, (mae * mae + 25.0) * n)

    name = "ScanoptAccuracyDegraded" if new[1] != parent[1] else "ScanoptCoverageOutOfBand"
    found = relative_worse(name, "result_count", sums(*new), sums(*parent))
    assert (found is not None) == worse
