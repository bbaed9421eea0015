"""Turn one training run into a model version: graph, parity, manifest, files, pointer.

Parity runs before anything is written: a graph that does not reproduce scikit-learn never
reaches the artifact directory. When the held-out splits have fewer rows than asked for,
fresh records are generated (a different seed than any training data) to make up the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from export.artifacts import point_current, read_current, version_dir, write_version
from export.drift import version_calibration, with_thresholds
from export.graph import TARGET_OPSET, build_graph
from export.manifest import (
    encode_manifest,
    package_versions,
    reference_distribution,
    reference_distributions,
    sha256_bytes,
    version_name,
)
from export.parity import (
    FIXTURE_FILE,
    FIXTURE_ROWS,
    ParityReport,
    compare_outputs,
    encode_fixture,
    open_session,
    run_graph,
)
from server.domain.artifact import (
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    MODEL_FILE,
    MODEL_INPUT,
    MODEL_OUTPUTS,
    CalibrationBin,
    DataWindow,
    Manifest,
    Recalibration,
    RetrainComparison,
)
from server.domain.features import FEATURE_SPEC, encode_scans, feature_spec_digest
from train.models import predict_outputs
from train.training import TrainResult

__all__ = [
    "PARITY_SEED_OFFSET",
    "ExportedVersion",
    "export_recalibration",
    "export_version",
    "parity_features",
]

# Extra parity rows come from this seed offset, far from any seed a history is drawn with.
PARITY_SEED_OFFSET = 1_000_003


class ExportedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A written version: its folder, the manifest written there, and the parity report."""

    folder: Path
    manifest: Manifest
    parity: ParityReport


def parity_features(result: TrainResult, min_rows: int) -> npt.NDArray[np.float32]:
    """Held-out features (calibration, then test), topped up with generated rows."""
    held_out = np.concatenate(
        [result.splits.calibration.features, result.splits.test.features]
    ).astype(np.float32)
    missing = min_rows - held_out.shape[0]
    if missing <= 0:
        return held_out
    from train.generate import generate_records  # only needed to top up small histories

    extra = encode_scans(generate_records(missing, result.settings.seed + PARITY_SEED_OFFSET))
    return np.concatenate([held_out, extra])


def _metrics(result: TrainResult) -> dict[str, dict[str, float]]:
    metrics = dict(result.metrics)
    if result.learning_curve:
        metrics["learning_curve_result_count_mae"] = {
            str(p.users): p.result_count_mae for p in result.learning_curve
        }
        metrics["learning_curve_duration_s_mae"] = {
            str(p.users): p.duration_s_mae for p in result.learning_curve
        }
        metrics["learning_curve_rows"] = {
            str(p.users): float(p.rows) for p in result.learning_curve
        }
    return metrics


def _new_name(artifacts: Path, created: datetime, model_bytes: bytes) -> str:
    version = version_name(created, sha256_bytes(model_bytes))
    # The same model exported twice within a second (tests, retries) gets a suffix.
    suffix = 1
    while version_dir(artifacts, version).exists():
        suffix += 1
        version = f"{version_name(created, sha256_bytes(model_bytes))}-{suffix}"
    return version


def export_recalibration(
    champion: Manifest,
    artifacts: Path,
    model_bytes: bytes,
    features: npt.NDArray[np.float32],
    expected: Mapping[str, npt.NDArray[np.float64]],
    *,
    metrics: dict[str, dict[str, float]],
    conformal: dict[str, float],
    calibration: list[CalibrationBin],
    data_window: DataWindow,
    comparison: RetrainComparison,
    recalibration: Recalibration,
    created: datetime | None = None,
) -> ExportedVersion:
    """Write a recalibrated version of `champion` (its child), without moving `current`.

    Parity first, as for any export: the graph against `expected`, the numpy post-processing
    (train.models.post_process) of the champion graph's raw outputs on `features`. The
    champion's training data, feature references and importances are the new version's
    too (the point models are the champion's); the output references are measured again on
    `features`, since the intervals and p_empty moved, and `calibration` is p_empty's
    reliability table on the recent holdout. The champion's drift calibration is kept: how
    alike consecutive rows are is the traffic's doing, and the point models are the same.
    """
    parity = compare_outputs(run_graph(open_session(model_bytes), features), expected)
    parity.check()
    keep = min(FIXTURE_ROWS, features.shape[0])
    files = {
        MODEL_FILE: model_bytes,
        FIXTURE_FILE: encode_fixture(features[:keep], {k: v[:keep] for k, v in expected.items()}),
    }
    created = created or datetime.now(UTC)
    version = _new_name(artifacts, created, model_bytes)
    reference = dict(champion.reference)
    reference.update({name: reference_distribution(expected[name]) for name in MODEL_OUTPUTS})
    manifest = msgspec.structs.replace(
        champion,
        schema=MANIFEST_SCHEMA,
        version=version,
        created_at=created.isoformat().replace("+00:00", "Z"),
        parent_version=champion.version,
        files={name: sha256_bytes(data) for name, data in sorted(files.items())},
        metrics=metrics,
        parity=parity.as_manifest(),
        conformal=conformal,
        reference=reference,
        calibration=calibration,
        packages=package_versions(),
        data_window=data_window,
        comparison=comparison,
        recalibration=recalibration,
    )
    manifest = with_thresholds(manifest)  # not the champion's: the output references moved
    folder = write_version(artifacts, version, {**files, MANIFEST_FILE: encode_manifest(manifest)})
    return ExportedVersion(folder=folder, manifest=manifest, parity=parity)


def export_version(
    result: TrainResult,
    artifacts: Path,
    *,
    min_parity_rows: int,
    extra_files: Mapping[str, bytes] | None = None,
    created: datetime | None = None,
    point: bool = True,
    data_window: DataWindow | None = None,
    comparison: RetrainComparison | None = None,
) -> ExportedVersion:
    """Convert, check parity (ParityError otherwise), write the version, point `current`.

    `extra_files` (e.g. report/metrics.json, report/*.png) are written and checksummed too.
    The parent is the version `current` names now. With `point=False` the version is only
    written (a challenger waiting for its promotion); `data_window` and `comparison` go
    into the manifest as they are.
    """
    models = result.models
    model_bytes = build_graph(models).SerializeToString()
    features = parity_features(result, min_parity_rows)
    expected = predict_outputs(models, features)
    parity = compare_outputs(run_graph(open_session(model_bytes), features), expected)
    parity.check()

    keep = min(FIXTURE_ROWS, features.shape[0])
    files = {
        MODEL_FILE: model_bytes,
        FIXTURE_FILE: encode_fixture(features[:keep], {k: v[:keep] for k, v in expected.items()}),
        **(extra_files or {}),
    }
    n_held_out = len(result.splits.calibration) + len(result.splits.test)
    created = created or datetime.now(UTC)
    version = _new_name(artifacts, created, model_bytes)
    reference = reference_distributions(
        result.splits.train.features,
        {name: values[:n_held_out] for name, values in expected.items()},
    )
    # The train split keeps the history's (time) order: the drift thresholds' null.
    drift = version_calibration(version, reference, model_bytes, result.splits.train)
    manifest = Manifest(
        schema=MANIFEST_SCHEMA,
        version=version,
        created_at=created.isoformat().replace("+00:00", "Z"),
        parent_version=read_current(artifacts),
        model_file=MODEL_FILE,
        input_name=MODEL_INPUT,
        output_names=list(MODEL_OUTPUTS),
        feature_spec=list(FEATURE_SPEC),
        feature_spec_sha256=feature_spec_digest(),
        files={name: sha256_bytes(data) for name, data in sorted(files.items())},
        training_data=result.training_data,
        metrics=_metrics(result),
        calibration=result.calibration,
        parity=parity.as_manifest(),
        conformal={
            **models.count_interval.as_manifest("result_count"),
            **models.duration_interval.as_manifest("duration_s"),
        },
        importances=result.importances,
        reference=reference,
        packages=package_versions(),
        opsets={domain or "ai.onnx": v for domain, v in TARGET_OPSET.items()},
        data_window=data_window,
        comparison=comparison,
        drift=drift,
    )
    manifest = with_thresholds(manifest)
    folder = write_version(artifacts, version, {**files, MANIFEST_FILE: encode_manifest(manifest)})
    if point:
        point_current(artifacts, version)
    return ExportedVersion(folder=folder, manifest=manifest, parity=parity)
