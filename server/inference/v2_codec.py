"""Open Inference Protocol V2 bodies, with Triton's binary tensor data extension.

A binary request is the JSON header followed by raw tensor bytes; the
`Inference-Header-Content-Length` HTTP header says where the JSON ends, and each binary
input carries `parameters.binary_data_size` instead of `data`. Outputs go back as binary
when the request says so (`parameters.binary_data_output` for all, or an output's
`parameters.binary_data`); tritonclient asks for that by default, so it is the common
case here, not an afterthought.

The model takes "features" FP32 [n, N_FEATURES] and returns every MODEL_OUTPUTS name as
FP32 [n]. Tensors are checked like JSON bodies: shape, type, finiteness, and each feature
against the range in FEATURE_SPEC.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, FEATURE_SPEC, N_FEATURES
from server.errors import InputError
from server.schemas import V2InferRequest, V2InferResponse, V2Tensor, decode_body

__all__ = ["HEADER_LENGTH", "V2Call", "decode_infer", "encode_infer"]

HEADER_LENGTH: Final = "Inference-Header-Content-Length"
DATATYPE: Final = "FP32"
_DECODER: Final = msgspec.json.Decoder(V2InferRequest)
_ENCODER: Final = msgspec.json.Encoder()
_MINS: Final = np.array([-np.inf if f.min is None else f.min for f in FEATURE_SPEC], np.float32)
_MAXS: Final = np.array([np.inf if f.max is None else f.max for f in FEATURE_SPEC], np.float32)


class V2Call(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded infer request: the feature matrix and which outputs to send how."""

    features: npt.NDArray[np.float32]
    outputs: list[tuple[str, bool]]  # (output name, as binary)
    request_id: str | None


def decode_infer(body: bytes, header_length: str | None, max_rows: int) -> V2Call:
    """Parse and check an infer body (JSON, or JSON + binary when `header_length` is set)."""
    binary = b""
    if header_length is not None:
        try:
            json_size = int(header_length)
        except ValueError:
            json_size = -1
        if not 0 < json_size <= len(body):
            raise InputError(
                f"{HEADER_LENGTH} {header_length!r}: expected the JSON header's byte length, "
                f"from 1 to the body size ({len(body)})",
                field=HEADER_LENGTH,
            )
        body, binary = body[:json_size], body[json_size:]
    request = decode_body(_DECODER, body)
    if len(request.inputs) != 1 or request.inputs[0].name != MODEL_INPUT:
        names = [t.name for t in request.inputs]
        raise InputError(
            f"inputs {names}: expected exactly one input named {MODEL_INPUT!r}", field="inputs"
        )
    features = _features(request.inputs[0], binary, max_rows)
    return V2Call(features=features, outputs=_requested(request), request_id=request.id)


def encode_infer(
    call: V2Call, model_name: str, version: str, outputs: list[npt.NDArray[np.float32]]
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    by_name = dict(zip(MODEL_OUTPUTS, outputs, strict=True))
    tensors: list[V2Tensor] = []
    chunks: list[bytes] = []
    for name, as_binary in call.outputs:
        array = by_name[name]
        shape = [len(array)]
        if as_binary:
            raw = array.astype("<f4", copy=False).tobytes()
            chunks.append(raw)
            tensors.append(
                V2Tensor(
                    name=name,
                    shape=shape,
                    datatype=DATATYPE,
                    parameters={"binary_data_size": len(raw)},
                )
            )
        else:
            tensors.append(V2Tensor(name=name, shape=shape, datatype=DATATYPE, data=array.tolist()))
    header = _ENCODER.encode(
        V2InferResponse(
            model_name=model_name, model_version=version, outputs=tensors, id=call.request_id
        )
    )
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _features(tensor: V2Tensor, binary: bytes, max_rows: int) -> npt.NDArray[np.float32]:
    where = f"inputs[0] ({MODEL_INPUT})"
    if tensor.datatype != DATATYPE:
        raise InputError(
            f"{where}: datatype {tensor.datatype!r}, expected {DATATYPE!r}",
            field="inputs[0].datatype",
        )
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != N_FEATURES or not 1 <= shape[0] <= max_rows:
        raise InputError(
            f"{where}: shape {shape}, expected [n, {N_FEATURES}] with n from 1 to {max_rows}",
            field="inputs[0].shape",
        )
    size = _binary_size(tensor.parameters)
    if size is not None:
        expected = shape[0] * N_FEATURES * 4
        if size != expected or size != len(binary):
            raise InputError(
                f"{where}: binary_data_size {size} with {len(binary)} bytes after the JSON "
                f"header, expected {expected} bytes (FP32 {shape}) and nothing more",
                field="inputs[0].parameters.binary_data_size",
            )
        features = np.frombuffer(binary, dtype="<f4").reshape(shape).astype(np.float32)
    else:
        if binary:
            raise InputError(
                f"{len(binary)} bytes follow the JSON header but no input declares "
                "binary_data_size",
                field=HEADER_LENGTH,
            )
        features = _from_json(tensor.data, shape, where)
    _check_values(features, where)
    return features


def _from_json(data: list[Any] | None, shape: list[int], where: str) -> npt.NDArray[np.float32]:
    if data is None:
        raise InputError(f"{where}: no data and no binary_data_size", field="inputs[0].data")
    try:
        flat = np.asarray(data, dtype=np.float32).reshape(-1)
    except (ValueError, TypeError):
        raise InputError(
            f"{where}: data must be numbers (flat or nested lists)", field="inputs[0].data"
        ) from None
    if flat.size != shape[0] * shape[1]:
        raise InputError(
            f"{where}: {flat.size} values, expected {shape[0] * shape[1]} for shape {shape}",
            field="inputs[0].data",
        )
    return flat.reshape(shape)


def _check_values(features: npt.NDArray[np.float32], where: str) -> None:
    bad = ~np.isfinite(features) | (features < _MINS) | (features > _MAXS)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{where}: row {row}, feature {FEATURE_NAMES[col]!r} is {float(features[row, col])!r}, "
            f"expected a finite number from {_MINS[col]:g} to {_MAXS[col]:g}",
            field="inputs[0].data",
        )


def _binary_size(parameters: dict[str, Any] | None) -> int | None:
    if not parameters or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InputError(
            f"binary_data_size {size!r}: expected a byte count",
            field="inputs[0].parameters.binary_data_size",
        )
    return size


def _flag(parameters: dict[str, Any] | None, name: str, default: bool, field: str) -> bool:
    if not parameters or name not in parameters:
        return default
    value = parameters[name]
    if not isinstance(value, bool):
        raise InputError(f"{field}: {value!r}, expected true or false", field=field)
    return value


def _requested(request: V2InferRequest) -> list[tuple[str, bool]]:
    all_binary = _flag(
        request.parameters, "binary_data_output", False, "parameters.binary_data_output"
    )
    if request.outputs is None:
        return [(name, all_binary) for name in MODEL_OUTPUTS]
    requested = []
    for i, output in enumerate(request.outputs):
        if output.name not in MODEL_OUTPUTS:
            raise InputError(
                f"outputs[{i}].name {output.name!r}: expected one of {', '.join(MODEL_OUTPUTS)}",
                field=f"outputs[{i}].name",
            )
        field = f"outputs[{i}].parameters.binary_data"
        requested.append((output.name, _flag(output.parameters, "binary_data", all_binary, field)))
    return requested
