"""The FastAPI baseline's model: the served version's scikit-learn estimators, pickled.

The baseline must serve the same model scanopt serves. The estimators come, in order of
preference, from `just train`'s bundle (var/train/models.joblib, the very objects `just
export` converted) or from a refit the way the offline pipeline fits (the history file the
manifest names, its sha256 checked, train.training's split and settings, seed 0 as
`just train` uses). Either way they are checked against the served ONNX graph on the
benchmark's own requests before they are pickled; estimators that are not the served
model are refused, since a baseline on another model would make the ratio meaningless.

The pickle lives under var/bench/baseline/<version>.pkl and is reused while it exists.
Only the benchmark's baseline ever reads it; the server never unpickles anything.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Final

import joblib
import msgspec
import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from bench.corpus import scan_bodies
from server.domain.artifact import MANIFEST_FILE, MODEL_INPUT, MODEL_OUTPUTS, MODELS_DIR, Manifest
from server.domain.features import encode_scans
from server.domain.scan import Scan
from train.data import dataset_from_records, load_history
from train.models import FittedModels, fit_models, predict_outputs
from train.training import FitSettings, split_dataset

__all__ = [
    "DEFAULT_BUNDLE",
    "PARITY_ROWS",
    "BaselineModel",
    "check_parity",
    "ensure_baseline_model",
]

_LOG = logging.getLogger(__name__)
PARITY_ROWS: Final = 500
DEFAULT_BUNDLE: Final = Path("var/train/models.joblib")
REFIT_SEED: Final = 0  # `just train`'s default seed
# float32 graph vs float64 numpy: relative differences of ~1e-5 are rounding, not a model.
PARITY_RTOL: Final = 1e-3
PARITY_ATOL: Final = 1e-3


class BaselineModel(msgspec.Struct, frozen=True, kw_only=True):
    """What the pickle holds: the version name and its fitted estimators."""

    version: str
    models: FittedModels


def check_parity(models: FittedModels, onnx_path: Path, scans: list[Scan]) -> float:
    """Largest relative difference between the estimators and the graph on `scans`.

    Raises ValueError naming the output when they are not the same model.
    """
    features = encode_scans(scans)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph = dict(
        zip(MODEL_OUTPUTS, session.run(list(MODEL_OUTPUTS), {MODEL_INPUT: features}), strict=True)
    )
    ours = predict_outputs(models, features)
    worst = 0.0
    for name in MODEL_OUTPUTS:
        a, b = np.asarray(ours[name], dtype=np.float64), np.asarray(graph[name], dtype=np.float64)
        if not np.allclose(a, b, rtol=PARITY_RTOL, atol=PARITY_ATOL):
            i = int(np.argmax(np.abs(a - b)))
            raise ValueError(
                f"refitted {name} differs from {onnx_path} (row {i}: {a[i]:g} vs {b[i]:g}): "
                "expected the served model, so the baseline would not be comparable"
            )
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-9))))
    return worst


def _from_bundle(bundle: Path) -> FittedModels | None:
    if not bundle.is_file():
        return None
    # Bench-only, and `just train` wrote it; the server never unpickles anything.
    try:
        result = joblib.load(bundle)
    except Exception:  # a bundle of older code fails to unpickle: refit instead
        return None
    models = getattr(result, "models", None)
    return models if isinstance(models, FittedModels) else None


def _refit(manifest: Manifest) -> FittedModels:
    data = Path(manifest.training_data.path)
    if not data.is_file():
        raise ValueError(
            f"{manifest.version} was trained on {data}, which is not here: expected the "
            "history file (run `just generate`) or var/train/models.joblib (`just train`)"
        )
    history = load_history(data, on_bad_line="skip")
    if history.sha256 != manifest.training_data.sha256:
        # `just generate` on another machine can write other bytes for the same scans (a
        # float printed another way by another Polars): refit anyway, and let the parity
        # check against the served graph decide whether the refit is the same model.
        _LOG.warning(
            "%s has sha256 %s..., not the %s... %s was fitted on; refitting anyway, the "
            "parity check decides",
            data,
            history.sha256[:12],
            manifest.training_data.sha256[:12],
            manifest.version,
        )
    settings = FitSettings(seed=REFIT_SEED, learning_curve=False, importances=False)
    with threadpool_limits(limits=settings.threads, user_api="openmp"):
        splits = split_dataset(dataset_from_records(history.records), settings)
        return fit_models(splits.train, splits.calibration, settings.models)


def ensure_baseline_model(
    artifacts: Path,
    cache_dir: Path,
    bundle: Path = DEFAULT_BUNDLE,
    parity_rows: int = PARITY_ROWS,
) -> Path:
    """The pickle for artifacts/current: cached, else from the bundle or a refit, checked."""
    version = (artifacts / "current").read_text().strip()
    folder = artifacts / MODELS_DIR / version
    manifest = msgspec.json.decode((folder / MANIFEST_FILE).read_bytes(), type=Manifest)
    path = cache_dir / f"{version}.pkl"
    if path.exists():
        return path
    scans = [msgspec.json.decode(b, type=Scan) for b in scan_bodies(parity_rows)]
    graph = folder / manifest.model_file
    models = _from_bundle(bundle)
    try:
        if models is None:
            raise ValueError(f"{bundle} holds no fitted models")
        check_parity(models, graph, scans)
    except ValueError:
        models = _refit(manifest)
        check_parity(models, graph, scans)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(BaselineModel(version=version, models=models)))
    tmp.replace(path)
    return path
