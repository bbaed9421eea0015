"""Hand-built ONNX versions for the refusal tests: graphs that break the contract on purpose.

The working model in every other test comes from the real pipeline (conftest); these
exist because a pipeline that works cannot produce a graph missing an output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS, Manifest, TrainingData
from server.domain.features import FEATURE_SPEC, N_FEATURES, feature_spec_digest

# Each output as (op, scale) of z = |features . w|: plausible values (lower <= predicted
# <= upper, p_empty in [0, 1]) so that a contract graph can stand in for a real model.
_RECIPES: dict[str, tuple[str, float]] = {
    "result_count": ("Mul", 100.0),
    "result_count_lo": ("Mul", 50.0),
    "result_count_hi": ("Mul", 200.0),
    "duration_s": ("Add", 1.0),
    "duration_s_lo": ("Add", 0.5),
    "duration_s_hi": ("Add", 3.0),
    "p_empty": ("Sigmoid", 0.0),
}


def linear_graph(
    outputs: Sequence[str] = MODEL_OUTPUTS,
    n_features: int = N_FEATURES,
    recipes: Mapping[str, tuple[str, float]] | None = None,
) -> bytes:
    """A graph with the contract's shape: features [n, F] in, one float [n] per output
    (`recipes` overrides the (op, constant) of some outputs)."""
    chosen = {**_RECIPES, **(recipes or {})}
    weights = np.full((n_features, 1), 1e-7, dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", [MODEL_INPUT, "w"], ["lin"]),
        helper.make_node("Squeeze", ["lin", "axis"], ["z"]),
        helper.make_node("Abs", ["z"], ["a"]),
    ]
    constants = []
    for name in outputs:
        op, value = chosen[name]
        if op == "Sigmoid":
            nodes.append(helper.make_node("Neg", ["a"], [f"{name}_neg"]))
            nodes.append(helper.make_node("Sigmoid", [f"{name}_neg"], [name]))
        else:
            constants.append(numpy_helper.from_array(np.array(value, np.float32), f"{name}_k"))
            nodes.append(helper.make_node(op, ["a", f"{name}_k"], [name]))
    graph = helper.make_graph(
        nodes,
        "contract-test",
        [helper.make_tensor_value_info(MODEL_INPUT, TensorProto.FLOAT, ["n", n_features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"]) for name in outputs],
        [
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
            *constants,
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    raw: bytes = model.SerializeToString()
    return raw


def write_version(
    artifacts: Path,
    version: str,
    graph: bytes | None = None,
    *,
    spec_digest: str | None = None,
    make_current: bool = True,
) -> Path:
    """Write `graph` (default: a valid linear one) and its manifest as a version folder."""
    graph = linear_graph() if graph is None else graph
    folder = artifacts / "models" / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(graph)
    manifest = Manifest(
        schema=1,
        version=version,
        created_at="2024-01-01T00:00:00Z",
        parent_version=None,
        model_file="model.onnx",
        input_name=MODEL_INPUT,
        output_names=list(MODEL_OUTPUTS),
        feature_spec=list(FEATURE_SPEC),
        feature_spec_sha256=spec_digest or feature_spec_digest(),
        files={"model.onnx": hashlib.sha256(graph).hexdigest()},
        training_data=TrainingData(path="none", sha256="0" * 64, rows=0),
        metrics={},
        calibration=[],
        parity={},
        conformal={},
        importances={},
        reference={},
        packages={},
        opsets={"": 17},
    )
    (folder / "manifest.json").write_bytes(msgspec.json.encode(manifest))
    if make_current:
        (artifacts / "current").write_text(version + "\n")
    return folder
