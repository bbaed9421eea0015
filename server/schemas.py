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
    DECODING,
    ID_PATTERN,
    ID_RULE,
    NAME_PATTERN,
    NAME_RULE,
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
    "GatedAnswer",
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


def _doc(text: str) -> msgspec.Meta:
    """A field's description (meaning and unit), for the OpenAPI document."""
    return msgspec.Meta(description=text)


class Interval(WireStruct, frozen=True):
    """A predicted value with its 90% prediction interval."""

    predicted: Annotated[
        float,
        _doc("the point prediction, in the target's unit (results or seconds)"),
    ]
    lower: Annotated[float, _doc("lower end of the 90% prediction interval, in the same unit")]
    upper: Annotated[float, _doc("upper end of the 90% prediction interval, in the same unit")]


class Outcome(WireStruct, frozen=True):
    """Predicted outcomes of a scan, without identity (used inside recommendations)."""

    result_count: Annotated[
        Interval, _doc("symbols the scan is predicted to return, results, with its interval")
    ]
    duration_s: Annotated[
        Interval, _doc("how long the scan is predicted to run, seconds, with its interval")
    ]
    p_empty: Annotated[float, _doc("probability that the scan returns no symbol, share 0-1")]
    confidence: Annotated[
        float,
        _doc("how tight the intervals are, score 0-1 (1 for a point interval)"),
    ]  # server.domain.artifact.confidence_score, in [0, 1]


class Prediction(Outcome, frozen=True):
    """What the model says about one scan, and which version said it (ids are the data
    plane's: server.store.prediction_ids)."""

    model_version: Annotated[str, _doc("the model version that made the prediction")]


class BatchRequest(WireStruct, frozen=True):
    """Many scans in one call; at most SCANOPT_MAX_BATCH (checked after decoding)."""

    scans: Annotated[
        Annotated[list[Scan], msgspec.Meta(min_length=1)],
        _doc("the scans to predict, in order; at most SCANOPT_MAX_BATCH"),
    ]


class GatedAnswer(WireStruct, frozen=True):
    """The A/B decision every gated answer starts with (/v1/predict, /v1/recommend).

    `arm` is "control", "treatment" or null (outside the rollout, or the kill switch is
    on); `ml_enabled` says whether the scanner should show ML content. Without ML the
    answer holds only these fields (the scanner runs its standard flow), and the
    `prediction_id` is still there, so outcome events and feedback link to the scan.
    """

    prediction_id: Annotated[
        str, _doc("the id to send back with outcome events and feedback for this scan")
    ]
    arm: Annotated[
        str | None,
        _doc("the user's A/B arm: control or treatment; null outside the rollout or killed"),
    ]
    ml_enabled: Annotated[bool, _doc("whether the scanner should show ML content")]
    model_version: Annotated[
        str | None, _doc("the model version that made the prediction; left out without ML")
    ] = None


class PredictAnswer(GatedAnswer, frozen=True):
    """/v1/predict: the A/B decision for the scan's user and, when ML is on, the prediction."""

    result_count: Annotated[
        Interval | None,
        _doc("predicted symbols returned, results, with its interval; left out without ML"),
    ] = None
    duration_s: Annotated[
        Interval | None,
        _doc("predicted run time, seconds, with its interval; left out without ML"),
    ] = None
    p_empty: Annotated[
        float | None,
        _doc("probability that the scan returns no symbol, share 0-1; left out without ML"),
    ] = None
    confidence: Annotated[
        float | None,
        _doc("how tight the intervals are, score 0-1; left out without ML"),
    ] = None


class BatchResponse(WireStruct, frozen=True):
    """One answer per scan, in request order, each gated for its own user."""

    predictions: Annotated[list[PredictAnswer], _doc("one answer per scan, in request order")]
    model_version: Annotated[
        str | None, _doc("the model version that ran; left out when it ran for no scan")
    ] = None  # absent when the model ran for no scan


class RecommendRequest(WireStruct, frozen=True):
    """A scan and the result count the user wants from it."""

    scan: Annotated[Scan, _doc("the scan as the user set it up")]
    min_results: Annotated[
        ResultCount, _doc("fewest symbols the user wants, results; below max_results")
    ] = 5
    max_results: Annotated[
        ResultCount, _doc("most symbols the user wants, results; above min_results")
    ] = 100
    limit: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=20)], _doc("most suggestions to return, count")
    ] = 3

    def __post_init__(self) -> None:
        if not self.min_results < self.max_results:
            raise ValueError(
                f"min_results ({self.min_results}) must be below max_results ({self.max_results})"
            )


class Change(WireStruct, frozen=True):
    """One parameter a suggestion changes."""

    field: Annotated[str, _doc("the Scan field the suggestion changes")]
    from_: Annotated[
        str | int | float, _doc("the field's value in the scan as sent, in the field's unit")
    ] = msgspec.field(name="from")
    to: Annotated[str | int | float, _doc("the field's suggested value, in the field's unit")]


class Suggestion(WireStruct, frozen=True):
    """A changed scan, its predicted outcome and what changed; lower score is better."""

    scan: Annotated[Scan, _doc("the changed scan, ready to run")]
    prediction: Annotated[Outcome, _doc("the changed scan's predicted outcome")]
    changes: Annotated[list[Change], _doc("the fields changed, from the scan as sent")]
    score: Annotated[
        float,
        _doc("distance of the outcome from the desired range, unitless; lower is better"),
    ]


class RecommendResponse(WireStruct, frozen=True):
    """The scan as sent, as predicted, and the best changes found."""

    model_version: Annotated[str, _doc("the model version that made the predictions")]
    current: Annotated[Outcome, _doc("the predicted outcome of the scan as sent")]
    current_in_range: Annotated[
        bool, _doc("whether the scan as sent is predicted inside the desired result range")
    ]
    current_score: Annotated[
        float,
        _doc("distance of the scan as sent from the desired range, unitless; lower is better"),
    ]
    suggestions: Annotated[list[Suggestion], _doc("the best changed scans, best first")]
    candidates_scored: Annotated[int, _doc("changed scans the search predicted, count")]
    # True when no suggestion is predicted inside the desired range: the first one is then
    # the closest candidate, and `note` says so in words.
    unreachable: Annotated[
        bool,
        _doc("true when no suggestion is predicted in the desired range (the first is closest)"),
    ] = False
    note: Annotated[
        str | None, _doc("why the desired range is unreachable, in words; left out otherwise")
    ] = None


class RecommendAnswer(GatedAnswer, frozen=True):
    """/v1/recommend: the A/B decision and, when ML is on, the `RecommendResponse` fields."""

    current: Annotated[
        Outcome | None, _doc("the predicted outcome of the scan as sent; left out without ML")
    ] = None
    current_in_range: Annotated[
        bool | None,
        _doc("whether the scan as sent is predicted in the desired range; left out without ML"),
    ] = None
    current_score: Annotated[
        float | None,
        _doc("distance of the scan as sent from the desired range, unitless; left out without ML"),
    ] = None
    suggestions: Annotated[
        list[Suggestion] | None, _doc("the best changed scans, best first; left out without ML")
    ] = None
    candidates_scored: Annotated[
        int | None, _doc("changed scans the search predicted, count; left out without ML")
    ] = None
    unreachable: Annotated[
        bool | None,
        _doc("true when no suggestion is predicted in the desired range; left out without ML"),
    ] = None
    note: Annotated[
        str | None, _doc("why the desired range is unreachable, in words; left out otherwise")
    ] = None


class ModelSummary(WireStruct, frozen=True):
    """The manifest of the version in service, without its reference histograms."""

    version: Annotated[str, _doc("the version in service")]
    created_at: Annotated[str, _doc("when the version was trained, UTC ISO-8601")]
    parent_version: Annotated[
        str | None, _doc("the version it was retrained from; null for a first version")
    ]
    model_sha256: Annotated[str, _doc("SHA-256 of the ONNX model file, hex")]
    feature_spec_sha256: Annotated[str, _doc("SHA-256 of the feature specification, hex")]
    features: Annotated[list[FeatureSpec], _doc("the model's input features, in input order")]
    outputs: Annotated[list[str], _doc("the model's output names, in output order")]
    metrics: Annotated[
        dict[str, dict[str, float]],
        _doc(
            "held-out metrics by target, then by metric name (MAE in the target's unit, shares 0-1)"
        ),
    ]
    importances: Annotated[
        dict[str, dict[str, float]],
        _doc("permutation importance by target, then by feature: mean drop in score"),
    ]
    conformal: Annotated[
        dict[str, float],
        _doc("the widening added to each target's quantile interval (CQR), in its unit"),
    ]
    calibration: Annotated[list[CalibrationBin], _doc("reliability bins of p_empty")]
    training_data: Annotated[TrainingData, _doc("the data the version was trained on")]
    packages: Annotated[dict[str, str], _doc("versions of the training packages, by package name")]


class Health(WireStruct, frozen=True):
    """Liveness or readiness of this worker."""

    status: Annotated[str, _doc("ok (live), ready, or not_ready")]
    model_version: Annotated[
        str | None, _doc("the version this worker serves; left out when none is loaded")
    ] = None
    reason: Annotated[
        str | None, _doc("why the worker is not ready, in words; left out when ready")
    ] = None


class ReloadResponse(WireStruct, frozen=True):
    """The version this worker serves after an admin reload."""

    model_version: Annotated[str, _doc("the version this worker serves after the reload")]
    previous_version: Annotated[
        str | None, _doc("the version it served before; null when none was loaded")
    ]


class ErrorBody(WireStruct, frozen=True):
    """Every error response: a message naming the bad value and what was expected.

    `error` is the human message (the V2 protocol's shape); `kind` a stable code;
    `field` the offending input as a path such as ``scans[3].min_price``.
    """

    error: Annotated[str, _doc("what is wrong, naming the bad value and what was expected")]
    kind: Annotated[str, _doc("a stable error code, for programs")]
    field: Annotated[
        str | None,
        _doc("the offending input as a path such as scans[3].min_price; left out if none"),
    ] = None


# Open Inference Protocol V2 ------------------------------------------------------------


class V2Tensor(WireStruct, frozen=True):
    """An input or output tensor; `data` is absent when it travels as binary."""

    name: Annotated[str, _doc("the tensor's name")]
    shape: Annotated[list[int], _doc("size of each dimension, elements")]
    datatype: Annotated[
        str, _doc("the element type, as the V2 protocol names it (FP32, INT64, BYTES, ...)")
    ]
    parameters: Annotated[
        dict[str, Any] | None, _doc("protocol parameters such as binary_data_size, bytes")
    ] = None
    data: Annotated[
        list[Any] | None,
        _doc("the elements, flattened row-major; left out when the tensor travels as binary"),
    ] = None


class V2RequestedOutput(WireStruct, frozen=True):
    """An output the client asks for, optionally as binary (`binary_data`)."""

    name: Annotated[str, _doc("the output's name")]
    parameters: Annotated[
        dict[str, Any] | None,
        _doc("protocol parameters such as binary_data (true: send it as binary)"),
    ] = None


class V2InferRequest(WireStruct, frozen=True):
    """POST /v2/models/{name}/infer body (its JSON part, for binary requests)."""

    inputs: Annotated[list[V2Tensor], _doc("the input tensors")]
    id: Annotated[str | None, _doc("the client's request id, echoed in the response")] = None
    parameters: Annotated[
        dict[str, Any] | None, _doc("protocol parameters such as binary_data_output")
    ] = None
    outputs: Annotated[
        list[V2RequestedOutput] | None, _doc("the outputs wanted; left out: all of them")
    ] = None


class V2InferResponse(WireStruct, frozen=True):
    """The inference answer (its JSON part, for binary responses)."""

    model_name: Annotated[str, _doc("the model that answered")]
    model_version: Annotated[str, _doc("the version that answered")]
    outputs: Annotated[list[V2Tensor], _doc("the output tensors")]
    id: Annotated[str | None, _doc("the client's request id, echoed")] = None


class V2TensorMetadata(WireStruct, frozen=True):
    """Name, type and shape of a model input or output (-1: any size)."""

    name: Annotated[str, _doc("the tensor's name")]
    datatype: Annotated[
        str, _doc("the element type, as the V2 protocol names it (FP32, INT64, BYTES, ...)")
    ]
    shape: Annotated[list[int], _doc("size of each dimension, elements; -1 for any size")]


class V2ModelMetadata(WireStruct, frozen=True):
    """GET /v2/models/{name}."""

    name: Annotated[str, _doc("the model's name")]
    versions: Annotated[list[str], _doc("the versions available")]
    platform: Annotated[str, _doc("the runtime that serves it (onnxruntime_onnx)")]
    inputs: Annotated[list[V2TensorMetadata], _doc("the model's input tensors")]
    outputs: Annotated[list[V2TensorMetadata], _doc("the model's output tensors")]


class V2ModelReady(WireStruct, frozen=True):
    """GET /v2/models/{name}/ready."""

    name: Annotated[str, _doc("the model's name")]
    ready: Annotated[bool, _doc("whether it can answer inference requests now")]


class V2ServerMetadata(WireStruct, frozen=True):
    """GET /v2."""

    name: Annotated[str, _doc("the server's name")]
    version: Annotated[str, _doc("the server's version")]
    extensions: Annotated[
        list[str], _doc("the protocol extensions supported (such as binary_tensor_data)")
    ]


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
    DECODING.active = True  # the decoder checks the annotations: no second check
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        field, message = _explain(str(exc))
        raise InputError(f"{field}: {message}" if field else message, field=field) from None
    except msgspec.DecodeError as exc:
        field, message = explain_malformed(body, str(exc))
        raise InputError(message, field=field) from None
    finally:
        DECODING.active = False


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
        message = ID_RULE
    elif repr(NAME_PATTERN) in message:
        message = NAME_RULE
    return path or None, message
