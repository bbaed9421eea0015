"""Wire types: every request and response body, as msgspec Structs on one base.

`WireStruct` (server.domain.scan) sets the rules: unknown fields are errors, defaults are
left out of the JSON, instances are frozen. The V2 types follow the Open Inference
Protocol (KServe `required_api.md`) and Triton's binary tensor data extension.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, TypeVar

import msgspec

from server.body_errors import explain_malformed
from server.domain.artifact import CalibrationBin, TrainingData
from server.domain.features import FeatureSpec
from server.domain.scan import (
    ID_PATTERN,
    ResultCount,
    Scan,
    Strategy,
    Timeframe,
    Universe,
    WireStruct,
)
from server.errors import InputError

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "Change",
    "ErrorBody",
    "Health",
    "Interval",
    "ModelSummary",
    "Outcome",
    "PredictAnswer",
    "Prediction",
    "RecommendAnswer",
    "RecommendRequest",
    "RecommendResponse",
    "ReloadResponse",
    "Suggestion",
    "V2InferRequest",
    "V2InferResponse",
    "V2ModelMetadata",
    "V2ModelReady",
    "V2RequestedOutput",
    "V2ServerMetadata",
    "V2Tensor",
    "V2TensorMetadata",
    "decode_body",
]

T = TypeVar("T")


class Interval(WireStruct, frozen=True):
    """A predicted value with its 90% prediction interval."""

    predicted: float
    lower: float
    upper: float


class Prediction(WireStruct, frozen=True):
    """What the model says about one scan, and which version said it (ids are the data
    plane's: server.store.prediction_ids)."""

    model_version: str
    result_count: Interval
    duration_s: Interval
    p_empty: float
    confidence: float  # server.domain.artifact.confidence_score, in [0, 1]


class Outcome(WireStruct, frozen=True):
    """Predicted outcomes of a scan, without identity (used inside recommendations)."""

    result_count: Interval
    duration_s: Interval
    p_empty: float
    confidence: float


class BatchRequest(WireStruct, frozen=True):
    """Many scans in one call; at most SCANOPT_MAX_BATCH (checked after decoding)."""

    scans: Annotated[list[Scan], msgspec.Meta(min_length=1)]


class PredictAnswer(WireStruct, frozen=True):
    """/v1/predict: the A/B decision for the scan's user and, when ML is on, the prediction.

    `arm` is "control", "treatment" or null (outside the rollout, or the kill switch is
    on); `ml_enabled` says whether the scanner should show ML content. Without ML the
    prediction fields are left out (the scanner runs its standard flow) but the
    `prediction_id` is still there, so outcome events and feedback link to the scan.
    """

    prediction_id: str
    arm: str | None
    ml_enabled: bool
    model_version: str | None = None
    result_count: Interval | None = None
    duration_s: Interval | None = None
    p_empty: float | None = None
    confidence: float | None = None


class BatchResponse(WireStruct, frozen=True):
    """One answer per scan, in request order, each gated for its own user."""

    predictions: list[PredictAnswer]
    model_version: str | None = None  # absent when the model ran for no scan


class RecommendRequest(WireStruct, frozen=True):
    """A scan and the result count the user wants from it."""

    scan: Scan
    min_results: ResultCount = 5
    max_results: ResultCount = 100
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3

    def __post_init__(self) -> None:
        if not self.min_results < self.max_results:
            raise ValueError(
                f"min_results ({self.min_results}) must be below max_results ({self.max_results})"
            )


class Change(WireStruct, frozen=True):
    """One parameter a suggestion changes."""

    field: str
    from_: str | int | float = msgspec.field(name="from")
    to: str | int | float


class Suggestion(WireStruct, frozen=True):
    """A changed scan, its predicted outcome and what changed; lower score is better."""

    scan: Scan
    prediction: Outcome
    changes: list[Change]
    score: float


class RecommendResponse(WireStruct, frozen=True):
    """The scan as sent, as predicted, and the best changes found."""

    model_version: str
    current: Outcome
    current_in_range: bool
    current_score: float
    suggestions: list[Suggestion]
    candidates_scored: int
    # True when no suggestion is predicted inside the desired range: the first one is then
    # the closest candidate, and `note` says so in words.
    unreachable: bool = False
    note: str | None = None


class RecommendAnswer(WireStruct, frozen=True):
    """/v1/recommend: the A/B decision and, when ML is on, the `RecommendResponse` fields.

    As for `PredictAnswer`: without ML only the id and the decision are sent.
    """

    prediction_id: str
    arm: str | None
    ml_enabled: bool
    model_version: str | None = None
    current: Outcome | None = None
    current_in_range: bool | None = None
    current_score: float | None = None
    suggestions: list[Suggestion] | None = None
    candidates_scored: int | None = None
    unreachable: bool | None = None
    note: str | None = None


class ModelSummary(WireStruct, frozen=True):
    """The manifest of the version in service, without its reference histograms."""

    version: str
    created_at: str
    parent_version: str | None
    model_sha256: str
    feature_spec_sha256: str
    features: list[FeatureSpec]
    outputs: list[str]
    metrics: dict[str, dict[str, float]]
    importances: dict[str, dict[str, float]]
    conformal: dict[str, float]
    calibration: list[CalibrationBin]
    training_data: TrainingData
    packages: dict[str, str]


class Health(WireStruct, frozen=True):
    """Liveness or readiness of this worker."""

    status: str  # "ok", "ready" or "not_ready"
    model_version: str | None = None
    reason: str | None = None


class ReloadResponse(WireStruct, frozen=True):
    """The version this worker serves after an admin reload."""

    model_version: str
    previous_version: str | None


class ErrorBody(WireStruct, frozen=True):
    """Every error response: a message naming the bad value and what was expected.

    `error` is the human message (the V2 protocol's shape); `kind` a stable code;
    `field` the offending input as a path such as ``scans[3].min_price``.
    """

    error: str
    kind: str
    field: str | None = None


# Open Inference Protocol V2 ------------------------------------------------------------


class V2Tensor(WireStruct, frozen=True):
    """An input or output tensor; `data` is absent when it travels as binary."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class V2RequestedOutput(WireStruct, frozen=True):
    """An output the client asks for, optionally as binary (`binary_data`)."""

    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(WireStruct, frozen=True):
    """POST /v2/models/{name}/infer body (its JSON part, for binary requests)."""

    inputs: list[V2Tensor]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2RequestedOutput] | None = None


class V2InferResponse(WireStruct, frozen=True):
    """The inference answer (its JSON part, for binary responses)."""

    model_name: str
    model_version: str
    outputs: list[V2Tensor]
    id: str | None = None


class V2TensorMetadata(WireStruct, frozen=True):
    """Name, type and shape of a model input or output (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(WireStruct, frozen=True):
    """GET /v2/models/{name}."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ModelReady(WireStruct, frozen=True):
    """GET /v2/models/{name}/ready."""

    name: str
    ready: bool


class V2ServerMetadata(WireStruct, frozen=True):
    """GET /v2."""

    name: str
    version: str
    extensions: list[str]


# Decoding ------------------------------------------------------------------------------

_AT: Final = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED: Final = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`")
_RULE: Final = re.compile(r"^(?P<name>[a-z_]+) \(")
_ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "universe": tuple(u.value for u in Universe),
    "strategy": tuple(s.value for s in Strategy),
    "timeframe": tuple(t.value for t in Timeframe),
}


def decode_body(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode a JSON body, turning msgspec's errors into an InputError that names the field.

    The field is a path such as ``scans[3].min_price``; the message says what was expected.
    """
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        field, message = _explain(str(exc))
        raise InputError(f"{field}: {message}" if field else message, field=field) from None
    except msgspec.DecodeError as exc:
        field, message = explain_malformed(body, str(exc))
        raise InputError(message, field=field) from None


def _explain(text: str) -> tuple[str | None, str]:
    """(field path, message) from a msgspec ValidationError text."""
    match = _AT.match(text)
    message = match["msg"] if match else text
    path = (match["path"] or "") if match else ""
    path = path.removeprefix(".")
    if named := _NAMED.match(message):
        path = f"{path}.{named['name']}" if path else named["name"]
        if "missing" in message:
            message = "this required field is missing"
        else:
            message = "unknown field: expected only the documented fields"
    elif rule := _RULE.match(message):
        path = f"{path}.{rule['name']}" if path else rule["name"]
    elif message.startswith("Invalid enum value"):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in _ENUMS:
            message += ": expected one of " + ", ".join(_ENUMS[leaf])
    elif message == "Number out of range":
        message = "number out of range: expected a finite number"
    elif repr(ID_PATTERN) in message:  # msgspec quotes the pattern with repr()
        message = (
            "expected an id without control characters (NUL, C0, DEL, C1) or Unicode "
            "bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)"
        )
    return path or None, message
