"""Monitoring tables on both backends: accuracy rollups from the join, drift counts, leases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server.store.interface import Store
from server.store.monitoring import DriftCount, ImportanceResult
from tests.server.store.backends import anyio_backend, pg_dsn, store, store_dsn
from tests.server.store.records_factory import T0, completed, prediction

__all__ = ["anyio_backend", "pg_dsn", "store", "store_dsn"]

pytestmark = pytest.mark.anyio


async def _labelled(store: Store) -> None:
    # p0000 (treatment): predicted 12.5 [3, 40], 1.5 s [0.5, 3], p_empty 0.1; outcome 10, 2 s.
    # p0001 (control): predicted 12.5, outcome 50 (outside), 4 s (outside), empty: no.
    # p0002 (treatment): outcome 0 (empty), 1 s.
    await store.write_log(
        [prediction(0), prediction(1, arm="control"), prediction(2), prediction(3)], []
    )
    received = T0 + timedelta(seconds=30)
    await store.record_event(completed("e0", prediction_id="p0000"), received)
    await store.record_event(
        completed("e1", prediction_id="p0001", result_count=50, duration_s=4.0), received
    )
    await store.record_event(
        completed("e2", prediction_id="p0002", result_count=0, duration_s=1.0), received
    )
    # An outcome without a prediction id is not labelled data.
    await store.record_event(completed("e3"), received)


async def test_refresh_accuracy_sums_the_join_per_version_and_arm(store: Store) -> None:
    """Rollups hold n, absolute and squared errors, coverage and Brier per arm, by hand."""
    await _labelled(store)
    written = await store.refresh_accuracy(T0, T0 + timedelta(minutes=1))
    assert written == 2  # one minute x two arms
    rows = {r.arm: r for r in await store.accuracy(T0, T0 + timedelta(minutes=1))}
    treatment, control = rows["treatment"], rows["control"]
    assert (treatment.n, control.n) == (2, 1)
    assert treatment.count_abs_err == pytest.approx(2.5 + 12.5)
    assert treatment.count_sq_err == pytest.approx(2.5**2 + 12.5**2)
    assert treatment.count_covered == 1  # 10 in [3, 40]; 0 is not
    assert treatment.duration_covered == 2  # 2 s and 1 s are in [0.5, 3]
    assert treatment.brier_sum == pytest.approx(0.1**2 + 0.9**2)
    assert control.count_covered == 0
    assert control.duration_covered == 0
    assert [(b.bin, b.n, b.sum_empty) for b in treatment.calibration] == [(1, 2, 1)]


async def test_refresh_is_idempotent_and_picks_up_late_predictions(store: Store) -> None:
    """Recomputing replaces the minute: a second run counts nothing twice, and a prediction
    row written after its outcome is counted once the minute is recomputed."""
    await _labelled(store)
    window = (T0, T0 + timedelta(minutes=1))
    await store.refresh_accuracy(*window)
    await store.refresh_accuracy(*window)
    assert sum(r.n for r in await store.accuracy(*window)) == 3
    await store.record_event(completed("e9", prediction_id="p0009"), T0 + timedelta(seconds=40))
    await store.write_log([prediction(9)], [])
    await store.refresh_accuracy(*window)
    assert sum(r.n for r in await store.accuracy(*window)) == 4


async def test_drift_counts_add_up_across_workers(store: Store) -> None:
    """Two flushes of the same minute and bin add; another version is kept apart."""
    count = DriftCount(bucket_start=T0, version="v1", feature="vix", bin=2, n=5)
    await store.add_drift_counts([count, count])
    await store.add_drift_counts([count, DriftCount(**{**_as_dict(count), "version": "v2"})])
    window = (T0, T0 + timedelta(minutes=1))
    assert await store.drift_counts("v1", *window) == {"vix": {2: 15}}
    assert await store.drift_counts("v2", *window) == {"vix": {2: 5}}


async def test_a_drift_flush_sent_again_under_its_id_adds_once(store: Store) -> None:
    """A flush whose COMMIT broke may be stored: sent again under the same flush id it adds
    nothing (False), while another id adds as usual."""
    count = DriftCount(bucket_start=T0, version="v1", feature="vix", bin=2, n=5)
    assert await store.add_drift_counts([count], "flush-a")
    assert not await store.add_drift_counts([count], "flush-a")
    assert await store.add_drift_counts([count], "flush-b")
    window = (T0, T0 + timedelta(minutes=1))
    assert await store.drift_counts("v1", *window) == {"vix": {2: 10}}


def _as_dict(count: DriftCount) -> dict[str, object]:
    return {f: getattr(count, f) for f in count.__struct_fields__}


async def test_lease_has_one_holder_until_it_expires(store: Store) -> None:
    """The first holder keeps the lease and renews it; another gets it only after expiry."""
    assert await store.acquire_lease("job", "a", T0, 30)
    assert not await store.acquire_lease("job", "b", T0 + timedelta(seconds=10), 30)
    assert await store.acquire_lease("job", "a", T0 + timedelta(seconds=20), 30)
    assert not await store.acquire_lease("job", "b", T0 + timedelta(seconds=45), 30)
    assert await store.acquire_lease("job", "b", T0 + timedelta(seconds=51), 30)


async def test_prune_drops_rows_older_than_the_retention(store: Store) -> None:
    """Rows before the cut go, rows after it stay; importance results too."""
    old = DriftCount(bucket_start=T0, version="v1", feature="vix", bin=0, n=1)
    new = DriftCount(bucket_start=T0 + timedelta(days=2), version="v1", feature="vix", bin=0, n=1)
    await store.add_drift_counts([old, new])
    await store.record_importance(
        ImportanceResult(version="v1", computed_at=T0, n=10, ndcg=0.95, by_target={"a": 0.95})
    )
    assert await store.prune(T0 + timedelta(days=1)) == 2
    assert await store.drift_counts("v1", T0, T0 + timedelta(days=3)) == {"vix": {0: 1}}
    assert await store.latest_importance("v1") is None
