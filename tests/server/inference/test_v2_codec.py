"""V2 bodies: JSON and Triton binary tensors in and out, every malformed tensor refused."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES, N_FEATURES, encode_scans
from server.domain.scan import Scan
from server.errors import InputError
from server.inference.v2_codec import decode_infer, encode_infer
from tests.server.conftest import SCAN

ROWS = encode_scans([msgspec.convert(SCAN, Scan)] * 2)


def tensor(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "features",
        "shape": [2, N_FEATURES],
        "datatype": "FP32",
        "data": ROWS.reshape(-1).tolist(),
    }
    base.update(overrides)
    return base


def body(**fields: Any) -> bytes:
    return msgspec.json.encode({"inputs": [tensor()], **fields})


def binary_body(rows: np.ndarray, **fields: Any) -> tuple[bytes, str]:
    raw = rows.astype("<f4").tobytes()
    header = msgspec.json.encode(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            **fields,
        }
    )
    return header + raw, str(len(header))


def test_json_tensor_decodes_to_the_feature_matrix() -> None:
    """Flat JSON data becomes the float32 matrix; all outputs as JSON by default."""
    call = decode_infer(body(id="r1"), None, max_rows=10)
    np.testing.assert_array_equal(call.features, ROWS)
    assert call.outputs == [(name, False) for name in MODEL_OUTPUTS]
    assert call.request_id == "r1"


def test_nested_json_data_is_accepted() -> None:
    """Row-major nested lists are the same tensor as the flat list."""
    nested = msgspec.json.encode({"inputs": [tensor(data=ROWS.tolist())]})
    np.testing.assert_array_equal(decode_infer(nested, None, 10).features, ROWS)


def test_binary_tensor_decodes_after_the_json_header() -> None:
    """The bytes after Inference-Header-Content-Length are the FP32 tensor."""
    raw, length = binary_body(ROWS, parameters={"binary_data_output": True})
    call = decode_infer(raw, length, max_rows=10)
    np.testing.assert_array_equal(call.features, ROWS)
    assert call.outputs == [(name, True) for name in MODEL_OUTPUTS]


def test_per_output_binary_flag_overrides_the_default() -> None:
    """outputs[i].parameters.binary_data picks binary per output, in the asked order."""
    outputs = [
        {"name": "p_empty", "parameters": {"binary_data": True}},
        {"name": "result_count"},
    ]
    call = decode_infer(body(outputs=outputs), None, 10)
    assert call.outputs == [("p_empty", True), ("result_count", False)]


def test_binary_response_layout() -> None:
    """Binary outputs are appended after the JSON in order; sizes in their parameters."""
    call = decode_infer(
        body(
            outputs=[
                {"name": "p_empty", "parameters": {"binary_data": True}},
                {"name": "duration_s"},
            ]
        ),
        None,
        10,
    )
    outputs = [np.arange(2, dtype=np.float32) + i for i in range(len(MODEL_OUTPUTS))]
    payload, header_length = encode_infer(call, "scanopt", "v9", outputs)
    assert header_length is not None
    header = msgspec.json.decode(payload[:header_length])
    assert header["model_version"] == "v9"
    p_empty, duration = header["outputs"]
    assert p_empty == {
        "name": "p_empty",
        "shape": [2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 8},
    }
    assert duration["data"] == outputs[3].tolist()
    np.testing.assert_array_equal(np.frombuffer(payload[header_length:], "<f4"), outputs[6])


def test_json_only_response_has_no_header_length() -> None:
    """Without binary outputs the body is plain JSON."""
    call = decode_infer(body(), None, 10)
    payload, header_length = encode_infer(call, "scanopt", "v9", [np.zeros(2, np.float32)] * 7)
    assert header_length is None
    assert len(msgspec.json.decode(payload)["outputs"]) == len(MODEL_OUTPUTS)


def nan_rows() -> np.ndarray:
    rows = ROWS.copy()
    rows[1, 3] = np.nan
    return rows


def wide_rows() -> np.ndarray:
    rows = ROWS.copy()
    rows[0, FEATURE_NAMES.index("rsi_max")] = 1000.0
    return rows


@pytest.mark.parametrize(
    ("raw", "length", "field", "words"),
    [
        (msgspec.json.encode({"inputs": [tensor(name="x")]}), None, "inputs", "named 'features'"),
        (
            msgspec.json.encode({"inputs": [tensor(datatype="FP64")]}),
            None,
            "inputs[0].datatype",
            "expected 'FP32'",
        ),
        (
            msgspec.json.encode({"inputs": [tensor(shape=[2, 3])]}),
            None,
            "inputs[0].shape",
            f"[n, {N_FEATURES}]",
        ),
        (
            msgspec.json.encode({"inputs": [tensor(shape=[20, N_FEATURES])]}),
            None,
            "inputs[0].shape",
            "from 1 to 10",
        ),
        (
            msgspec.json.encode({"inputs": [tensor(data=[1.0])]}),
            None,
            "inputs[0].data",
            f"expected {2 * N_FEATURES}",
        ),
        (
            msgspec.json.encode({"inputs": [tensor(data=["a"] * 2 * N_FEATURES)]}),
            None,
            "inputs[0].data",
            "must be numbers",
        ),
        (msgspec.json.encode({"inputs": [tensor(data=None)]}), None, "inputs[0].data", "no data"),
        (body(outputs=[{"name": "nope"}]), None, "outputs[0].name", "expected one of result_count"),
        (
            body(parameters={"binary_data_output": "yes"}),
            None,
            "parameters.binary_data_output",
            "true or false",
        ),
        (*binary_body(nan_rows()), "inputs[0].data", "row 1"),
        (
            *binary_body(wide_rows()),
            "inputs[0].data",
            "'rsi_max' is 1000.0, expected a finite number from 0 to 100",
        ),
        (
            binary_body(ROWS)[0][:-4],
            binary_body(ROWS)[1],
            "inputs[0].parameters.binary_data_size",
            f"expected {8 * N_FEATURES} bytes",
        ),
        (
            binary_body(ROWS)[0] + b"xxxx",
            binary_body(ROWS)[1],
            "inputs[0].parameters.binary_data_size",
            "nothing more",
        ),
        (
            binary_body(ROWS)[0],
            "abc",
            "Inference-Header-Content-Length",
            "JSON header's byte length",
        ),
        (
            body() + b"\x00\x00",
            str(len(body())),
            "Inference-Header-Content-Length",
            "no input declares",
        ),
        (b"{", None, None, "not valid JSON"),
    ],
)
def test_malformed_tensors_are_refused(
    raw: bytes, length: str | None, field: str | None, words: str
) -> None:
    """Each malformed request names the offending field and what was expected."""
    with pytest.raises(InputError) as caught:
        decode_infer(raw, length, max_rows=10)
    assert caught.value.field == field
    assert words in str(caught.value)
