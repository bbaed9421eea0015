"""One ONNX graph from the seven fitted models, post-processing included.

Each model is converted by skl2onnx on the shared float32 input "features", its names are
prefixed so the seven graphs can live side by side, and plain ONNX nodes then repeat
`train.models.predict_outputs` exactly: the exp link of the Poisson and log-duration
models (skl2onnx leaves the Poisson output on the log scale, DESIGN.md "Known pitfalls"),
the per-group conformal widening, the exp back from the quantiles' log scale, the
clipping of counts to [0, universe size] (feature column 0) and of durations to
[DURATION_MIN_S, the timeout cap], stretching each interval to hold its point, and
P(class 1) of the classifier. The outputs are exactly
`server.domain.artifact.MODEL_OUTPUTS`, each float32 of shape [n].
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS
from server.domain.features import N_FEATURES
from train.conformal import Interval
from train.models import DURATION_MIN_S, FittedModels

__all__ = ["IR_VERSION", "TARGET_OPSET", "build_graph"]

# Pinned so a version's graph does not change with the installed skl2onnx's defaults;
# onnxruntime >= 1.16 runs both.
TARGET_OPSET: Final[dict[str, int]] = {"": 18, "ai.onnx.ml": 3}
IR_VERSION: Final = 9


def _convert(model: Any, prefix: str, *, classifier: bool = False) -> onnx.ModelProto:
    # DoubleTensorType fails to load for HistGradientBoosting in onnxruntime 1.32, and the
    # server feeds float32 anyway (DESIGN.md, "Known pitfalls").
    options = {id(model): {"zipmap": False}} if classifier else None
    with warnings.catch_warnings():
        # skl2onnx 1.20 passes booleans where onnx wants ints (the protobuf < 7 pitfall of
        # DESIGN.md); protobuf 6 accepts them and says so once per tree attribute.
        warnings.filterwarnings("ignore", "Field onnx.AttributeProto", DeprecationWarning)
        converted = convert_sklearn(
            model,
            initial_types=[(MODEL_INPUT, FloatTensorType([None, N_FEATURES]))],
            target_opset=dict(TARGET_OPSET),
            options=options,
        )
    return onnx.compose.add_prefix(converted, prefix, rename_inputs=False)


class _Builder:
    """Collects post-processing nodes and their constants under unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, value: float | list[int] | int, dtype: Any = np.float32) -> str:
        name = f"post_c{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        self._count += 1
        name = out or f"post_{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name


def _flat(b: _Builder, tensor: str) -> str:
    return b.op("Reshape", tensor, b.const([-1], np.int64))


def _clip(b: _Builder, x: str, low: str, high: str, out: str | None = None) -> str:
    # Min/Max rather than Clip: the upper bound for counts is a per-row tensor.
    return b.op("Min", b.op("Max", x, low), high, out=out)


def _interval(b: _Builder, raw_lo: str, raw_hi: str, interval: Interval) -> tuple[str, str]:
    """train.conformal.Interval.apply: the ramped per-group widening t, lo - max(t, 0), hi + t."""
    lo, hi = _flat(b, raw_lo), _flat(b, raw_hi)
    w = interval.widenings
    t = b.const(w[0])
    for g, edge in enumerate(interval.edges, start=1):
        # clip((hi - edge) / (2 ramp) + 1/2, 0, 1): 0 below the edge's ramp, 1 above it.
        scaled = b.op("Mul", b.op("Sub", hi, b.const(edge)), b.const(0.5 / interval.ramp))
        step = b.op("Clip", b.op("Add", scaled, b.const(0.5)), b.const(0.0), b.const(1.0))
        t = b.op("Add", t, b.op("Mul", step, b.const(w[g] - w[g - 1])))
    return b.op("Sub", lo, b.op("Max", t, b.const(0.0))), b.op("Add", hi, t)


def _post_process(b: _Builder, raw: dict[str, str], models: FittedModels) -> None:
    size = b.op("Gather", MODEL_INPUT, b.const(0, np.int64), axis=1)
    zero, one = b.const(0.0), b.const(1.0)
    d_min, d_max = b.const(DURATION_MIN_S), b.const(models.duration_cap_s)

    count = _clip(b, b.op("Exp", _flat(b, raw["count_mean"])), zero, size)
    c_lo, c_hi = _interval(b, raw["count_lo"], raw["count_hi"], models.count_interval)
    c_lo = _clip(b, b.op("Sub", b.op("Exp", c_lo), one), zero, size)
    c_hi = _clip(b, b.op("Exp", c_hi), zero, size)
    b.op("Identity", count, out="result_count")
    b.op("Min", c_lo, count, out="result_count_lo")
    b.op("Max", c_hi, count, out="result_count_hi")

    duration = _clip(b, b.op("Exp", _flat(b, raw["duration_mean"])), d_min, d_max)
    d_lo, d_hi = _interval(b, raw["duration_lo"], raw["duration_hi"], models.duration_interval)
    d_lo = _clip(b, b.op("Exp", d_lo), d_min, d_max)
    d_hi = _clip(b, b.op("Exp", d_hi), d_min, d_max)
    b.op("Identity", duration, out="duration_s")
    b.op("Min", d_lo, duration, out="duration_s_lo")
    b.op("Max", d_hi, duration, out="duration_s_hi")

    b.op("Gather", raw["empty"], b.const(1, np.int64), axis=1, out="p_empty")


def _needed(nodes: list[onnx.NodeProto], outputs: tuple[str, ...]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on, in order (drops e.g. the classifier's label)."""
    wanted = set(outputs)
    keep: list[onnx.NodeProto] = []
    for node in reversed(nodes):
        if wanted.intersection(node.output):
            keep.append(node)
            wanted.update(node.input)
    return keep[::-1]


def build_graph(models: FittedModels) -> onnx.ModelProto:
    """The combined, checked model: input "features" [n, N_FEATURES], MODEL_OUTPUTS [n] each."""
    parts = {
        "count_mean": _convert(models.count_mean, "count_mean_"),
        "count_lo": _convert(models.count_lo, "count_lo_"),
        "count_hi": _convert(models.count_hi, "count_hi_"),
        "duration_mean": _convert(models.duration_mean, "duration_mean_"),
        "duration_lo": _convert(models.duration_lo, "duration_lo_"),
        "duration_hi": _convert(models.duration_hi, "duration_hi_"),
        "empty": _convert(models.empty, "empty_", classifier=True),
    }
    raw = {name: part.graph.output[0].name for name, part in parts.items()}
    # The classifier's outputs are (label, probabilities): take the probabilities.
    raw["empty"] = next(o.name for o in parts["empty"].graph.output if "probabilities" in o.name)
    builder = _Builder()
    _post_process(builder, raw, models)
    nodes = [n for part in parts.values() for n in part.graph.node] + builder.nodes
    nodes = _needed(nodes, MODEL_OUTPUTS)
    used = {name for node in nodes for name in node.input}
    initializers = [t for part in parts.values() for t in part.graph.initializer]
    initializers = [t for t in initializers + builder.constants if t.name in used]
    graph = helper.make_graph(
        nodes,
        "scanopt",
        [helper.make_tensor_value_info(MODEL_INPUT, TensorProto.FLOAT, ["n", N_FEATURES])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["n"]) for o in MODEL_OUTPUTS],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in TARGET_OPSET.items()],
        producer_name="scanopt",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model
