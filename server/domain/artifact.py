"""The artifact contract: the only thing offline training and online serving share.

A model version is a folder `artifacts/models/<version>/` holding `model.onnx` and
`manifest.json`; `artifacts/current` (a one-line text file) names the version in service.

`model.onnx` is one graph with one input and every output the service needs, post-
processing (the Poisson link, the conformal widening, clipping) included, so the server
runs one onnxruntime call per batch and does no arithmetic of its own on model outputs:

    input  "features"  float32 [n, N_FEATURES]   (server.domain.features order)
    output "result_count", "result_count_lo", "result_count_hi"  float32 [n]
           "duration_s", "duration_s_lo", "duration_s_hi"        float32 [n]
           "p_empty"                                             float32 [n]

The intervals are 90% prediction intervals calibrated on held-out data.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Final

import msgspec

from server.domain.features import FeatureSpec

__all__ = [
    "CURRENT_FILE",
    "MANIFEST_FILE",
    "MODELS_DIR",
    "MODEL_FILE",
    "MODEL_INPUT",
    "MODEL_OUTPUTS",
    "CalibrationBin",
    "DataWindow",
    "DriftCalibration",
    "DriftDesign",
    "DriftThresholds",
    "Manifest",
    "PairedDifference",
    "Recalibration",
    "ReferenceDistribution",
    "RetrainComparison",
    "Thresholds",
    "TrainingData",
    "confidence_score",
]

MODELS_DIR: Final = "models"
CURRENT_FILE: Final = "current"
MODEL_FILE: Final = "model.onnx"
MANIFEST_FILE: Final = "manifest.json"
MODEL_INPUT: Final = "features"
MODEL_OUTPUTS: Final[tuple[str, ...]] = (
    "result_count",
    "result_count_lo",
    "result_count_hi",
    "duration_s",
    "duration_s_lo",
    "duration_s_hi",
    "p_empty",
)
MANIFEST_SCHEMA: Final = 1


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class ReferenceDistribution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Histogram of one feature (or output) on the training data, for drift checks.

    `edges` has one more entry than `shares`; shares sum to 1.
    """

    edges: list[float]
    shares: list[float]


_NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class DriftDesign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How alike one column's rows are in time-ordered training history (Kish design
    effects: a variance of bin shares over the multinomial variance at the same rows)."""

    # at each of DriftCalibration.window_rows: the variance of a window's bin shares over
    # non-overlapping contiguous windows of the history, over the multinomial variance
    windows: Annotated[list[_NonNegative], msgspec.Meta(min_length=1)]
    # the whole history's shares resampled by user (cluster sampling), same ratio
    users: _NonNegative
    # the integrated autocorrelation time of the bin indicators along the history, rows
    autocorrelation: _NonNegative


class DriftCalibration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Drift-threshold calibration measured at export on the time-ordered training history
    (server.monitoring.drift says how thresholds use it)."""

    method: str  # names the measurement (export.drift.METHOD)
    history_rows: Annotated[int, msgspec.Meta(ge=1)]  # rows of the time-ordered history
    users: Annotated[int, msgspec.Meta(ge=1)]  # users in it
    # window sizes measured, ascending
    window_rows: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(min_length=1)]
    windows: list[Annotated[int, msgspec.Meta(ge=2)]]  # non-overlapping windows at each size
    columns: dict[str, DriftDesign]  # every column that can alarm

    def __post_init__(self) -> None:
        if any(a >= b for a, b in zip(self.window_rows, self.window_rows[1:], strict=False)):
            raise ValueError("drift.window_rows must be ascending")
        if len(self.windows) != len(self.window_rows):
            raise ValueError("drift.windows must have one count per window size")
        for name, design in self.columns.items():
            if len(design.windows) != len(self.window_rows):
                raise ValueError(f"drift.columns[{name!r}].windows must have one per window size")


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    """Drift alarm thresholds of every (column, score) for windows of `rows` rows
    (server.monitoring.drift.calibrate)."""

    rows: int
    alpha: float
    values: dict[str, dict[str, float]]


class DriftThresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The drift thresholds of every window size a server calibrates for this version,
    calibrated at export so that no serving worker spends the CPU (about 0.7-1 s each)."""

    # the server's name for how they were computed (server.monitoring.drift's
    # Reference.method); a server that computes them another way calibrates its own
    method: str
    # ascending by rows, one per power of two from the smallest window that is scored
    # to the largest the drift calibration's design effects distinguish
    windows: Annotated[list[Thresholds], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        rows = [t.rows for t in self.windows]
        if any(a >= b for a, b in itertools.pairwise(rows)):
            raise ValueError("drift_thresholds.windows must be ascending by rows")


class CalibrationBin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One row of the p_empty reliability table on the test split."""

    lower: Annotated[float, _doc("lowest predicted p_empty in the bin, share 0-1")]
    upper: Annotated[float, _doc("highest predicted p_empty in the bin, share 0-1")]
    count: Annotated[int, _doc("test scans in the bin, count")]
    mean_predicted: Annotated[float, _doc("mean predicted p_empty in the bin, share 0-1")]
    observed_rate: Annotated[
        float, _doc("share of the bin's scans that returned nothing, share 0-1")
    ]


class TrainingData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which data a version was fitted on."""

    path: Annotated[str, _doc("the training file, as given to the trainer")]
    sha256: Annotated[str, _doc("SHA-256 of the training file, hex")]
    rows: Annotated[int, _doc("rows trained on, count")]
    rejected_rows: Annotated[int, _doc("rows refused by the domain checks, count")] = 0


class DataWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The production outcomes a retrained version learned from (`just retrain`)."""

    source: str  # the store, without credentials
    rows: int  # labelled outcomes trained on (holdout users excluded)
    users: int
    first_at: str  # ISO-8601 UTC of the oldest and newest outcome's prediction
    last_at: str
    sha256: str  # of those outcomes as ScanRecord JSON lines, in order
    base_rows: int  # base-history records kept beside them
    recent_weight: float  # each outcome weighs this many base records
    holdout_rows: int  # outcomes of users neither model saw, kept for the comparison
    holdout_users: int
    # The holdout is also later than every outcome trained on: it holds the scans from
    # this time on (ISO-8601 UTC, the start of the latest `holdout_days` dates with
    # outcomes); the rows trained on all ran before it. None: a version written before
    # the time cutoff existed (split by user only).
    holdout_from: str | None = None
    holdout_days: int = 0
    unused_holdout_users_before: int = 0  # holdout users' outcomes before the cutoff
    unused_train_users_after: int = 0  # the other users' outcomes from the cutoff on


class PairedDifference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Champion minus challenger loss on the same rows (> 0: the challenger is better).

    The interval is a 95% t-interval over users (each user's mean difference is one
    observation, since a user's scans are not independent of each other).
    """

    metric: str  # "result_count MAE", "duration_s MAE", "p_empty Brier"
    champion: float
    challenger: float
    difference: float
    lower: float
    upper: float
    users: int
    rows: int
    verdict: str  # "better", "worse" or "no difference"


class RetrainComparison(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Champion and challenger on one recent holdout, and what the promotion rule said."""

    champion: str
    rule: str
    promote: bool
    reasons: list[str]
    differences: list[PairedDifference]
    # e.g. {"result_count_coverage_90": 0.9, "one_row_us": 31.0}, challenger on the holdout
    checks: dict[str, float]


class Recalibration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A version `just retrain --recalibrate-only` made: its parent's point models, byte
    for byte, with widenings and a p_empty calibration refitted on recent outcomes."""

    # sha256 of the graph's tree part (export.graph.tree_digest), the same as the parent's
    point_models_sha256: str
    # p_empty -> sigmoid(a * logit(p) + b) (train.models.PlattScaling), fitted on the outcomes
    p_empty_platt_a: float
    p_empty_platt_b: float
    calibration_rows: int  # recent outcomes the widenings and the scaling were fitted on
    calibration_users: int


class Manifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """manifest.json of one model version."""

    schema: int
    version: str
    created_at: str
    parent_version: str | None
    model_file: str
    input_name: str
    output_names: list[str]
    feature_spec: list[FeatureSpec]
    feature_spec_sha256: str
    files: dict[str, str]  # file name -> sha256 of its bytes
    training_data: TrainingData
    # metrics["result_count"]["mae"], ["duration_s"]["coverage_90"], ["empty"]["roc_auc"], ...
    metrics: dict[str, dict[str, float]]
    calibration: list[CalibrationBin]
    # parity["max_abs_diff"], ["max_rel_diff"], ["rows"]
    parity: dict[str, float]
    # the widening added to each quantile model's interval (CQR), by target
    conformal: dict[str, float]
    # permutation importances: target -> feature -> mean drop in score
    importances: dict[str, dict[str, float]]
    # reference distributions of every feature and every model output
    reference: dict[str, ReferenceDistribution]
    packages: dict[str, str]
    opsets: dict[str, int]
    # Only for versions `just retrain` made: the outcomes behind it, and the comparison.
    data_window: DataWindow | None = None
    comparison: RetrainComparison | None = None
    # Only for a recalibration (`just retrain --recalibrate-only`): what was refitted.
    recalibration: Recalibration | None = None
    # Design effects of the training history for drift thresholds (export.drift); None in
    # versions exported before it: the server then calibrates on independent rows and says so.
    drift: DriftCalibration | None = None
    # Drift thresholds calibrated at export from `reference` and `drift`; None in versions
    # exported before them (or without `drift`): the server calibrates them itself.
    drift_thresholds: DriftThresholds | None = None


def confidence_score(
    count: float, count_lo: float, count_hi: float, dur: float, dur_lo: float, dur_hi: float
) -> float:
    """A per-prediction confidence in [0, 1]: 1 for a point interval, falling as it widens.

    It is the geometric mean of each interval's tightness 1 / (1 + relative width), with
    counts measured on log1p scale so that "0 to 3" and "300 to 303" are not equally sure.
    """
    count_width = math.log1p(max(count_hi, 0.0)) - math.log1p(max(count_lo, 0.0))
    dur_width = (dur_hi - dur_lo) / max(dur, 1e-6)
    tight = 1.0 / (1.0 + max(count_width, 0.0)) * 1.0 / (1.0 + max(dur_width, 0.0))
    return math.sqrt(tight)
