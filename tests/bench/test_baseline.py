"""The FastAPI + scikit-learn baseline: the served model's estimators, refused if not the same."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import msgspec
import pytest
from fastapi.testclient import TestClient

from bench.baseline_fastapi import ENV_MODEL, create_app
from bench.baseline_model import BaselineModel, check_parity, ensure_baseline_model
from bench.corpus import scan_bodies
from export.pipeline import build_version
from server.domain.artifact import MODEL_FILE, TrainingData
from server.domain.features import encode_scans
from server.domain.scan import Scan
from train.data import dataset_from_records, records_digest
from train.generate import generate_records
from train.models import FittedModels, predict_outputs
from train.training import FitSettings, TrainResult, train_models

pytestmark = pytest.mark.slow
RECORDS = 600


class Built(msgspec.Struct, frozen=True):
    """A tiny served version and the training runs around it."""

    artifacts: Path
    version: str
    same: TrainResult  # the run the version was exported from
    other: TrainResult  # another seed: a different model


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A quick real version (seed 0) and two quick training runs to play the bundle."""
    records = generate_records(RECORDS, 3)
    artifacts = tmp_path_factory.mktemp("artifacts")
    folder = build_version(records, artifacts, seed=0, quick=True)
    data = dataset_from_records(records)
    td = TrainingData(path="<in-memory records>", sha256=records_digest(records), rows=RECORDS)
    same = train_models(data, td, FitSettings.quick(0))
    other = train_models(data, td, FitSettings.quick(1))
    return Built(artifacts=artifacts, version=folder.name, same=same, other=other)


def _scans(n: int = 50) -> list[Scan]:
    return [msgspec.json.decode(b, type=Scan) for b in scan_bodies(n)]


def test_bundle_of_the_served_run_is_pickled(built: Built, tmp_path: Path) -> None:
    """The exported run's estimators pass parity and are pickled under the version name."""
    bundle = tmp_path / "models.joblib"
    joblib.dump(built.same, bundle)
    path = ensure_baseline_model(built.artifacts, tmp_path / "cache", bundle, parity_rows=50)
    assert path.name == f"{built.version}.pkl"
    baseline = pickle.loads(path.read_bytes())
    assert isinstance(baseline, BaselineModel)
    assert baseline.version == built.version
    assert isinstance(baseline.models, FittedModels)


def test_estimators_of_another_model_are_refused(built: Built, tmp_path: Path) -> None:
    """Another seed's estimators differ from the graph: parity raises naming an output."""
    graph = built.artifacts / "models" / built.version / MODEL_FILE
    with pytest.raises(ValueError, match="differs from"):
        check_parity(built.other.models, graph, _scans())


def test_wrong_bundle_and_no_history_fails_with_the_reason(built: Built, tmp_path: Path) -> None:
    """A bundle of another model and no history file to refit from: no pickle, a clear error."""
    bundle = tmp_path / "models.joblib"
    joblib.dump(built.other, bundle)
    with pytest.raises(ValueError, match="not here"):
        ensure_baseline_model(built.artifacts, tmp_path / "cache", bundle, parity_rows=50)
    assert not (tmp_path / "cache").exists()


def test_fastapi_baseline_answers_what_the_estimators_predict(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The baseline app validates the scan, predicts with the estimators, answers 200."""
    bundle = tmp_path / "models.joblib"
    joblib.dump(built.same, bundle)
    path = ensure_baseline_model(built.artifacts, tmp_path / "cache", bundle, parity_rows=50)
    monkeypatch.setenv(ENV_MODEL, str(path))
    body = scan_bodies(1)[0]
    with TestClient(create_app()) as client:
        json_ = {"Content-Type": "application/json"}
        answer = client.post("/v1/predict", content=body, headers=json_)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        want = predict_outputs(
            built.same.models, encode_scans([msgspec.json.decode(body, type=Scan)])
        )
        assert got["model_version"] == built.version
        assert got["result_count"]["predicted"] == pytest.approx(want["result_count"][0])
        assert got["duration_s"]["upper"] == pytest.approx(want["duration_s_hi"][0])
        assert got["p_empty"] == pytest.approx(want["p_empty"][0])
        typo = body.replace(b'"rsi_max":', b'"rsi_mix":')
        bad = client.post("/v1/predict", content=typo, headers=json_)
        assert bad.status_code == 422


def test_unreadable_bundle_falls_back_to_a_refit(built: Built, tmp_path: Path) -> None:
    """A bundle that does not unpickle (older code) is skipped: the refit is tried next."""
    bundle = tmp_path / "models.joblib"
    bundle.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not here"):
        ensure_baseline_model(built.artifacts, tmp_path / "cache", bundle, parity_rows=50)
