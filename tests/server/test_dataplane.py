"""The data plane without HTTP: decide -> predict -> record -> answer, and its observer hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server.dataplane import DataPlane, Served
from server.domain.scan import Scan
from server.errors import InputError
from server.experiments.config import ExperimentUpdate
from server.experiments.gate import ExperimentGate
from server.experiments.metrics import GateMetrics
from server.inference.predictor import Predictor
from server.monitoring.metrics import Metrics
from server.schemas import RecommendRequest
from server.store import store_from_dsn
from server.store.buffer import PredictionLog
from server.store.interface import Store
from server.store.metrics import StoreMetrics
from server.store.prediction_ids import SECRET_NAME, PredictionIds
from tests.server.conftest import SCAN, make_settings
from tests.server.store.backends import anyio_backend

__all__ = ["anyio_backend"]

pytestmark = pytest.mark.anyio
BASE = msgspec.convert(SCAN, Scan)
AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


class Plane(msgspec.Struct):
    plane: DataPlane
    store: Store
    log: PredictionLog
    gate: ExperimentGate
    metrics: Metrics


@pytest.fixture
async def parts(artifacts: Path, tmp_path: Path) -> AsyncIterator[Plane]:
    settings = make_settings(artifacts, max_batch=4, batch_max_size=4)
    metrics = Metrics(settings)
    predictor = Predictor(settings, metrics)
    predictor.install(predictor.load())
    store = store_from_dsn(f"sqlite:///{tmp_path / 'plane.db'}", pool_size=4)
    await store.open()
    gate = ExperimentGate(
        store, GateMetrics(metrics.registry), max_age_s=settings.experiment_cache_s
    )
    await gate.refresh()
    log = PredictionLog(
        store,
        StoreMetrics(metrics.registry),
        capacity=settings.prediction_log_capacity,
        batch_size=settings.prediction_log_batch,
        flush_interval_s=settings.prediction_log_flush_s,
        share=settings.prediction_log_share,
    )
    ids = PredictionIds(await store.secret(SECRET_NAME))
    plane = DataPlane(predictor, gate, log, ids, metrics, max_batch=4, clock=lambda: AT)
    yield Plane(plane, store, log, gate, metrics)
    await predictor.close()
    await store.close()


def _user_in(gate: ExperimentGate, arm: str) -> Scan:
    user = next(f"u{i}" for i in range(1000) if gate.decide(f"u{i}").arm == arm)
    return msgspec.structs.replace(BASE, user_id=user)


def _predicted(metrics: Metrics) -> float:
    return sum(
        s.value
        for m in metrics.registry.collect()
        if m.name == "scanopt_predictions"
        for s in m.samples
        if s.name == "scanopt_predictions_total"
    )


async def _kill(parts: Plane) -> None:
    update = ExperimentUpdate(kill_switch=True)
    parts.gate.accept(await parts.store.update_experiment("ml_scanning", update, AT))


async def test_treatment_gets_ml_and_control_is_logged_with_what_the_model_said(
    parts: Plane,
) -> None:
    """Treatment answers carry the prediction; control answers only the id, yet both are
    logged with the model's outputs and the arm."""
    treated = await parts.plane.predict(_user_in(parts.gate, "treatment"))
    control = await parts.plane.predict(_user_in(parts.gate, "control"))
    assert treated.ml_enabled
    assert treated.result_count is not None
    assert not control.ml_enabled
    assert control.result_count is None
    assert await parts.log.flush()
    rows = [await parts.store.get_prediction(a.prediction_id) for a in (treated, control)]
    assert [r.arm if r else None for r in rows] == ["treatment", "control"]
    assert all(r is not None and r.result_count is not None for r in rows)
    assert rows[0] is not None
    assert rows[0].created_at == AT
    assert _predicted(parts.metrics) == 2


async def test_kill_switch_runs_no_model_and_still_records(parts: Plane) -> None:
    """With the kill switch on nobody gets ML, the model does not run, the scan is logged."""
    await _kill(parts)
    answer = await parts.plane.predict(BASE)
    assert (answer.arm, answer.ml_enabled) == (None, False)
    assert _predicted(parts.metrics) == 0
    assert await parts.log.flush()
    row = await parts.store.get_prediction(answer.prediction_id)
    assert row is not None
    assert row.result_count is None
    assert row.model_version is None


async def test_recommend_counts_its_scan_once_in_either_arm(parts: Plane) -> None:
    """A treatment recommend (the neighbour search) and a control one each count one scan."""
    for arm in ("treatment", "control"):
        request = RecommendRequest(scan=_user_in(parts.gate, arm))
        answer = await parts.plane.recommend(request)
        assert answer.ml_enabled is (arm == "treatment")
    assert _predicted(parts.metrics) == 2


async def test_batch_gates_each_scan_and_refuses_more_than_max_batch(parts: Plane) -> None:
    """Each scan of a batch is gated for its own user; over max_batch is an InputError."""
    scans = [_user_in(parts.gate, "treatment"), _user_in(parts.gate, "control")]
    answer = await parts.plane.predict_batch(scans)
    assert [a.ml_enabled for a in answer.predictions] == [True, False]
    assert len({a.prediction_id for a in answer.predictions}) == 2
    with pytest.raises(InputError, match="at most 4"):
        await parts.plane.predict_batch([BASE] * 5)


async def test_observers_see_every_answer_and_a_broken_one_costs_nothing(parts: Plane) -> None:
    """Observers get each Served in order; one that raises is counted, the answer stands."""
    seen: list[Served] = []

    def broken(served: Served) -> None:
        raise RuntimeError("monitor bug")

    parts.plane.observe(broken)
    parts.plane.observe(seen.append)
    answer = await parts.plane.predict(_user_in(parts.gate, "treatment"))
    assert [s.prediction_id for s in seen] == [answer.prediction_id]
    assert seen[0].endpoint == "predict"
    assert seen[0].predicted is not None
    errors: Any = parts.metrics.registry.get_sample_value(
        "scanopt_errors_total", {"kind": "observer"}
    )
    assert errors == 1
