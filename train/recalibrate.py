"""`just retrain --recalibrate-only`: refit the intervals and p_empty, keep the point models.

For when coverage slipped but the point models hold: a new version whose graph is the
champion's tree nodes and constants byte for byte, with a new post-processing.

1. The labelled outcomes are read and split by user and time exactly as `just retrain`
   does (train.retrain.recent_outcomes: the same minimum count, the same seeded holdout
   of users, scored on their scans of the latest --holdout-days dates; fitted on the
   other users' scans before those dates).
2. The champion's ONNX graph, cut before its post-processing (export.graph.with_raw_outputs),
   gives the raw outputs of its seven models on the non-holdout outcomes: the quantile
   models' raw interval ends, the point models' raw outputs the groups split on, and the
   classifier's P(empty). The graph is the champion as it serves, for every version ever
   exported (including ones whose scikit-learn objects are long gone), and no pickled
   estimator has to be kept or trusted: that is why the graph, not a fitted bundle, is
   the source.
3. The widenings are refitted by train.models.calibrate_intervals, the code `just train`
   calibrates with, on those raw outputs and outcomes; p_empty gets a Platt scaling
   (train.models.PlattScaling: logistic regression on the logit of the classifier's
   probability) fitted on the same outcomes. A recalibration of a recalibration starts
   again from the raw outputs: the maps never stack.
4. export.graph.recalibrated_graph writes the new post-processing after the champion's
   tree part; its digest (export.graph.tree_digest) must equal the champion's.
5. Champion and recalibrated graph are scored on the holdout users (in onnxruntime, as
   they serve) and train.compare.decide_recalibration applies its rule: identical point
   outputs, p_empty Brier not worse, coverage in 0.85-0.95 and moved toward 0.90, the
   one-row latency rule. The version (parity checked against the numpy post-processing
   of the same raw outputs) is written with parent, `recalibration`, data window and
   comparison in its manifest, and promoted only when the rule says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnx
from rich.console import Console
from sklearn.linear_model import LogisticRegression

from export.artifacts import ArtifactError, read_current, version_dir
from export.graph import recalibrated_graph, tree_digest, with_raw_outputs
from export.lifecycle import LifecycleError, promote
from export.manifest import ManifestError, read_manifest
from export.parity import (
    FIXTURE_FILE,
    GraphError,
    ParityError,
    open_session,
    read_fixture,
    run_graph,
)
from export.version import export_recalibration
from server.domain.artifact import MANIFEST_FILE, MODEL_INPUT, Manifest, Recalibration
from server.domain.features import encode_scans
from train.compare import CompareError, coverage_difference, decide_recalibration
from train.conformal import GroupKey
from train.evaluate import calibration_table
from train.models import (
    PLATT_EPS,
    ModelSettings,
    PlattScaling,
    RawOutputs,
    calibrate_intervals,
    post_process,
)
from train.retrain import (
    MIN_OUTCOMES,
    RetrainError,
    RetrainResult,
    covered_rows,
    evaluate_holdout,
    holdout_coverage,
    holdout_differences,
    one_row_costs,
    recent_outcomes,
)
from train.retrain_report import write_report

__all__ = ["IDENTITY", "fit_platt", "raw_graph_outputs", "recalibrate"]

IDENTITY: Final = PlattScaling(a=1.0, b=0.0)


def raw_graph_outputs(model: onnx.ModelProto, features: npt.NDArray[np.float32]) -> RawOutputs:
    """The raw outputs of the graph's seven models (before any post-processing)."""
    raw_model, names = with_raw_outputs(model)
    session = open_session(raw_model.SerializeToString())
    x = np.ascontiguousarray(features, dtype=np.float32)
    try:
        values = session.run(list(names.values()), {MODEL_INPUT: x})
    except Exception as exc:  # onnxruntime's errors derive from Exception
        raise GraphError(f"onnxruntime cannot run the graph's tree part: {exc}") from None
    by = {name: np.asarray(v, dtype=np.float64) for name, v in zip(names, values, strict=True)}
    return RawOutputs(
        log_count=by["count_mean"].reshape(-1),
        count_lo=by["count_lo"].reshape(-1),
        count_hi=by["count_hi"].reshape(-1),
        log_duration=by["duration_mean"].reshape(-1),
        duration_lo=by["duration_lo"].reshape(-1),
        duration_hi=by["duration_hi"].reshape(-1),
        p_empty=by["empty"][:, 1],
    )


def fit_platt(p: npt.NDArray[np.float64], empty: npt.NDArray[np.bool_]) -> PlattScaling:
    """Logistic regression of the outcome on logit(p) (nearly unpenalised); the identity
    when the outcomes hold one class only or the fit would invert the classifier."""
    y = np.asarray(empty, dtype=bool)
    if y.all() or not y.any():
        return IDENTITY
    q = np.clip(p, PLATT_EPS, 1.0 - PLATT_EPS)
    logit = np.log(q / (1.0 - q)).reshape(-1, 1)
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logit, y)
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return PlattScaling(a=a, b=b) if a > 0 else IDENTITY


def _interval_key(champion: Manifest) -> GroupKey:
    return "point" if champion.conformal.get("result_count.groups_on_point") == 1.0 else "upper"


def recalibrate(
    store: str,
    artifacts: Path,
    out: Path,
    *,
    holdout_share: float = 0.3,
    holdout_days: int = 1,
    min_outcomes: int = MIN_OUTCOMES,
    seed: int = 0,
    promote_winner: bool = True,
    console: Console | None = None,
) -> RetrainResult:
    """The whole recalibration (module docstring); RetrainError on bad input."""
    console = console or Console(stderr=True)
    if not 0 < holdout_share < 1:
        raise RetrainError(f"holdout_share={holdout_share}: expected between 0 and 1")
    if holdout_days < 1:
        raise RetrainError(f"holdout_days={holdout_days}: expected at least 1")
    try:
        name = read_current(artifacts)
        if name is None:
            raise RetrainError(f"{artifacts / 'current'}: no such file: no champion to recalibrate")
        folder = version_dir(artifacts, name)
        champion = read_manifest(folder / MANIFEST_FILE)
        champion_path = folder / champion.model_file
        graph = onnx.load(str(champion_path))
        fixture, _ = read_fixture(folder / FIXTURE_FILE)
    except (ArtifactError, ManifestError, ParityError, OSError) as exc:
        raise RetrainError(f"champion: {exc}") from None
    cap = champion.metrics.get("training", {}).get("duration_cap_s")
    if cap is None:
        raise RetrainError(
            f"champion {name}: its manifest has no metrics.training.duration_cap_s: expected "
            "a version `just export` or `just retrain` wrote"
        )
    recent = recent_outcomes(store, min_outcomes, holdout_share, seed, holdout_days)
    console.print(recent.split_line(), highlight=False)

    x_cal = encode_scans(recent.train)
    try:
        with console.status("the champion's raw outputs on the recent outcomes"):
            raw = raw_graph_outputs(graph, x_cal)
    except (GraphError, ValueError) as exc:
        raise RetrainError(f"champion {name}: {exc}") from None
    counts = np.array([r.result_count for r in recent.train], dtype=np.float64)
    durations = np.array([r.duration_s for r in recent.train], dtype=np.float64)
    # The champion's grouping; alpha and the number of groups are `just train`'s.
    settings = ModelSettings(interval_key=_interval_key(champion))
    intervals = calibrate_intervals(raw, counts, durations, settings)
    platt = fit_platt(raw.p_empty, counts == 0)
    new_graph = recalibrated_graph(graph, intervals, cap, platt)
    if tree_digest(new_graph) != tree_digest(graph):  # recalibrated_graph's contract
        raise RetrainError(f"champion {name}: the recalibrated graph changed its tree part")
    model_bytes = new_graph.SerializeToString()

    x_hold = encode_scans(recent.holdout)
    try:
        champion_out = run_graph(open_session(champion_path), x_hold)
        challenger_out = run_graph(open_session(model_bytes), x_hold)
    except GraphError as exc:
        raise RetrainError(f"champion {name}: {exc}") from None
    scored = evaluate_holdout(recent.holdout, recent.holdout_users, champion_out, challenger_out)
    try:
        differences = holdout_differences(scored)
        for target in ("result_count", "duration_s"):
            covered = {who: covered_rows(scored, who, target) for who in ("champion", "challenger")}
            differences.append(
                coverage_difference(
                    target, recent.holdout_users, covered["champion"], covered["challenger"]
                )
            )
    except CompareError as exc:
        raise RetrainError(str(exc)) from None
    checks = holdout_coverage(scored, "challenger")
    checks["point_max_abs_change"] = float(
        max(
            np.abs(challenger_out[t].astype(np.float64) - champion_out[t]).max(initial=0.0)
            for t in ("result_count", "duration_s")
        )
    )
    checks.update(one_row_costs(champion_path, model_bytes, x_hold))
    checks.update({f"champion_{k}": v for k, v in holdout_coverage(scored, "champion").items()})
    checks["p_empty_platt_a"], checks["p_empty_platt_b"] = platt.a, platt.b
    comparison = decide_recalibration(name, differences, checks)

    # Parity rows: the champion's own fixture rows, then the recent outcomes.
    features = np.concatenate([fixture, x_cal, x_hold]).astype(np.float32)
    try:
        expected = post_process(
            raw_graph_outputs(graph, features), features, *intervals, cap, platt
        )
    except (GraphError, ValueError) as exc:
        raise RetrainError(f"champion {name}: {exc}") from None
    holdout_empty = scored["result_count"].to_numpy() == 0
    window = recent.window(base_rows=0, recent_weight=1.0)
    recalibration = Recalibration(
        point_models_sha256=tree_digest(graph),
        p_empty_platt_a=platt.a,
        p_empty_platt_b=platt.b,
        calibration_rows=len(recent.train),
        calibration_users=len(set(recent.train_users)),
    )
    metrics = {**champion.metrics, "recalibration": dict(checks)}
    try:
        exported = export_recalibration(
            champion,
            artifacts,
            model_bytes,
            features,
            expected,
            metrics=metrics,
            conformal={
                **intervals[0].as_manifest("result_count"),
                **intervals[1].as_manifest("duration_s"),
            },
            calibration=calibration_table(
                holdout_empty.astype(np.int64), challenger_out["p_empty"].astype(np.float64)
            ),
            data_window=window,
            comparison=comparison,
            recalibration=recalibration,
        )
    except (ParityError, GraphError, ArtifactError) as exc:
        raise RetrainError(f"recalibrated export failed: {exc}") from None
    version = exported.manifest.version
    report = write_report(out / version, version, comparison, window, scored)
    promoted = False
    if comparison.promote and promote_winner:
        try:
            promote(artifacts, version, targets=False)
        except LifecycleError as exc:
            raise RetrainError(str(exc)) from None
        promoted = True
    return RetrainResult(
        challenger=version,
        folder=exported.folder,
        comparison=comparison,
        promoted=promoted,
        report=report,
    )
