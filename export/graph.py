"""One ONNX graph from the seven fitted models, post-processing included.

Each model is converted by skl2onnx on the shared float32 input "features", its names are
prefixed so the seven graphs can live side by side, and plain ONNX nodes then repeat
`train.models.predict_outputs` exactly: the exp link of the Poisson and log-duration
models (skl2onnx 1.20 does not apply HistGradientBoostingRegressor's link for
loss="poisson": its converted output is the log of the prediction; parity catches it),
the per-group conformal widening, the exp back from the quantiles' log scale, the
clipping of counts to [0, universe size] (feature column 0) and of durations to
[DURATION_MIN_S, the timeout cap], stretching each interval to hold its point, and
P(class 1) of the classifier. The outputs are exactly
`server.domain.artifact.MODEL_OUTPUTS`, each float32 of shape [n].

The six regression outputs travel through the post-processing together, as one
[n, 3, 2] tensor: rows (point, lo, hi) by columns (count, duration), so each step is one
node for all six. onnxruntime spends ~0.3 µs per node on a one-row run whatever the
node does; one node per output and step (69 nodes) cost ~20 µs a row, as much as all the
trees of the default model (measured, README "Training and export"). Clipping commutes
with min/max, and a bound that does not apply to a column is a constant there (the
count columns' upper bound is the universe size, the duration columns' the cap).

Every post-processing node's name starts with "post_", so the graph splits into its tree
part (the converted models, with their constants) and what follows. A recalibration
(`just retrain --recalibrate-only`) reads the tree part's raw outputs (with_raw_outputs)
and writes the same tree part, byte for byte (tree_digest), before a new post-processing
(recalibrated_graph): other widenings, and p_empty through a Platt scaling.
"""

from __future__ import annotations

import hashlib
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
from train.models import DURATION_MIN_S, PLATT_EPS, FittedModels, PlattScaling

__all__ = [
    "IR_VERSION",
    "TARGET_OPSET",
    "build_graph",
    "raw_names",
    "recalibrated_graph",
    "tree_digest",
    "with_raw_outputs",
]

# Pinned so a version's graph does not change with the installed skl2onnx's defaults;
# onnxruntime >= 1.16 runs both.
TARGET_OPSET: Final[dict[str, int]] = {"": 18, "ai.onnx.ml": 3}
IR_VERSION: Final = 9
# Every post-processing node's name starts with it; the converted models' names never do.
_POST_PREFIX: Final = "post_"


def _convert(model: Any, prefix: str, *, classifier: bool = False) -> onnx.ModelProto:
    # DoubleTensorType inputs fail to load for HistGradientBoosting in onnxruntime 1.32,
    # and the server feeds float32 anyway.
    options = {id(model): {"zipmap": False}} if classifier else None
    with warnings.catch_warnings():
        # skl2onnx 1.20 passes booleans where onnx wants ints: protobuf 7 refuses them
        # ("Expected an int, got a boolean", hence protobuf<7 in pyproject.toml) and
        # protobuf 6 accepts them with a warning per tree attribute.
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

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        name = f"post_c{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        return self.op_n(op_type, *inputs, outs=[out] if out else 1, **attrs)[0]

    def op_n(self, op_type: str, *inputs: str, outs: list[str] | int, **attrs: Any) -> list[str]:
        """A node with several outputs: the given names, or `outs` fresh ones."""
        self._count += 1
        name = f"post_{op_type.lower()}_{self._count}"
        names = outs if isinstance(outs, list) else [f"{name}_{i}" for i in range(outs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name, **attrs))
        return names


# The [n, 3, 2] layout of the regression outputs: rows, then columns (count, duration).
_RAW_GRID: Final = (
    ("count_mean", "duration_mean"),
    ("count_lo", "duration_lo"),
    ("count_hi", "duration_hi"),
)
_OUTPUT_GRID: Final = (
    ("result_count", "duration_s"),
    ("result_count_lo", "duration_s_lo"),
    ("result_count_hi", "duration_s_hi"),
)


def _widening(b: _Builder, hi: str, intervals: tuple[Interval, Interval]) -> str:
    """train.conformal.Interval.widening_for of both columns of `hi` [n, 1, 2] at once
    (`hi` is whatever the groups split on: the raw upper quantile or the raw point).

    t = w0 + sum_g dw_g * clip((hi - edge_g) / (2 ramp) + 1/2, 0, 1)
      = (w0 + sum_g dw_g / 2) + sum_g dw_g * clip((hi - edge_g) / (2 ramp), -1/2, 1/2),
    with the edges stacked on a middle axis (a column with fewer edges gets dw = 0).
    """
    n_edges = max(1, *(len(i.edges) for i in intervals))
    edges = np.zeros((n_edges, 2))
    steps = np.zeros((n_edges, 2))
    for c, interval in enumerate(intervals):
        w = interval.widenings
        for g, edge in enumerate(interval.edges):
            edges[g, c], steps[g, c] = edge, w[g + 1] - w[g]
    slope = [0.5 / i.ramp for i in intervals]
    base = [[i.widenings[0] + 0.5 * steps[:, c].sum() for c, i in enumerate(intervals)]]
    scaled = b.op("Mul", b.op("Sub", hi, b.const(edges)), b.const(slope))
    ramp = b.op("Clip", scaled, b.const(-0.5), b.const(0.5))
    summed = b.op("ReduceSum", b.op("Mul", ramp, b.const(steps)), b.const([1], np.int64))
    return b.op("Add", summed, b.const(base))


def _post_process(
    b: _Builder,
    raw: dict[str, str],
    intervals: tuple[Interval, Interval],
    cap: float,
    platt: PlattScaling | None,
) -> None:
    """MODEL_OUTPUTS from the raw model outputs ([n, 1] each, probabilities [n, 2])."""
    stacked = b.op("Concat", *(raw[name] for row in _RAW_GRID for name in row), axis=1)
    grid = b.op("Reshape", stacked, b.const([-1, 3, 2], np.int64))
    if intervals[0].key != intervals[1].key:
        raise ValueError("both intervals must group on the same key (upper or point)")
    # The groups split on the raw upper quantile (grid row 2) or the raw point (row 0).
    row = 0 if intervals[0].key == "point" else 2
    key = b.op(
        "Slice",
        grid,
        b.const([row], np.int64),
        b.const([row + 1], np.int64),
        b.const([1], np.int64),
    )
    t = _widening(b, key, intervals)  # [n, 1, 2]
    # Rows (point, lo, hi) move by (0, -max(t, 0), t) = min(t * (0, -1, 1), (0, 0, inf)).
    rows = b.op("Mul", t, b.const([[0.0], [-1.0], [1.0]]))
    widened = b.op("Add", grid, b.op("Min", rows, b.const([[0.0], [0.0], [np.inf]])))
    # exp of every cell; the count's lower end is exp(lo) - 1 (train.conformal).
    values = b.op("Exp", widened)
    values = b.op("Sub", values, b.const([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
    size = b.op("Gather", MODEL_INPUT, b.const([[0]], np.int64), axis=1)  # [n, 1, 1]
    upper = b.op("Add", b.op("Mul", size, b.const([[1.0, 0.0]] * 3)), b.const([[0.0, cap]] * 3))
    lower = b.const([[0.0, DURATION_MIN_S]] * 3)
    clipped = b.op("Min", b.op("Max", values, lower), upper)
    point, lo, hi = b.op_n("Split", clipped, outs=3, axis=1, num_outputs=3)
    final = b.op("Concat", point, b.op("Min", lo, point), b.op("Max", hi, point), axis=1)
    # [n, 3, 2] -> [3, 2, n] -> 6n values -> six [n] outputs, in the grid's order.
    flat = b.op("Reshape", b.op("Transpose", final, perm=[1, 2, 0]), b.const([-1], np.int64))
    b.op_n("Split", flat, outs=[name for row in _OUTPUT_GRID for name in row], num_outputs=6)
    if platt is None:
        b.op("Gather", raw["empty"], b.const(1, np.int64), axis=1, out="p_empty")
        return
    # train.models.PlattScaling: sigmoid(a * logit(clip(p)) + b).
    p = b.op("Gather", raw["empty"], b.const(1, np.int64), axis=1)
    q = b.op("Clip", p, b.const(PLATT_EPS), b.const(1.0 - PLATT_EPS))
    logit = b.op("Log", b.op("Div", q, b.op("Sub", b.const(1.0), q)))
    z = b.op("Add", b.op("Mul", logit, b.const(platt.a)), b.const(platt.b))
    b.op("Sigmoid", z, out="p_empty")


def _needed(nodes: list[onnx.NodeProto], outputs: tuple[str, ...]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on, in order (drops e.g. the classifier's label)."""
    wanted = set(outputs)
    keep: list[onnx.NodeProto] = []
    for node in reversed(nodes):
        if wanted.intersection(node.output):
            keep.append(node)
            wanted.update(node.input)
    return keep[::-1]


def _assemble(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    raw: dict[str, str],
    intervals: tuple[Interval, Interval],
    cap: float,
    platt: PlattScaling | None,
) -> onnx.ModelProto:
    """The checked model: tree nodes, then the post-processing of their raw outputs."""
    builder = _Builder()
    _post_process(builder, raw, intervals, cap, platt)
    nodes = _needed(nodes + builder.nodes, MODEL_OUTPUTS)
    used = {name for node in nodes for name in node.input}
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
    nodes = [n for part in parts.values() for n in part.graph.node]
    initializers = [t for part in parts.values() for t in part.graph.initializer]
    intervals = (models.count_interval, models.duration_interval)
    return _assemble(nodes, initializers, raw, intervals, models.duration_cap_s, None)


def _is_post(node: onnx.NodeProto) -> bool:
    return node.name.startswith(_POST_PREFIX)


def _tree_part(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The nodes before the post-processing (the converted models) and their constants."""
    nodes = [n for n in model.graph.node if not _is_post(n)]
    used = {name for node in nodes for name in node.input}
    return nodes, [t for t in model.graph.initializer if t.name in used]


def raw_names(model: onnx.ModelProto) -> dict[str, str]:
    """The tensors the post-processing reads: the seven models' raw outputs, by model.

    The first post-processing node concatenates the six regression outputs in the grid's
    order; the classifier's probabilities are the other tree output it reads.
    """
    produced = {out for node in model.graph.node if not _is_post(node) for out in node.output}
    post = [n for n in model.graph.node if _is_post(n)]
    if not post or post[0].op_type != "Concat" or len(post[0].input) != 6:
        raise ValueError("not a scanopt graph: no post-processing Concat of six model outputs")
    names = dict(zip((name for row in _RAW_GRID for name in row), post[0].input, strict=True))
    others = {i for n in post for i in n.input if i in produced} - set(names.values())
    if len(others) != 1:
        raise ValueError(f"not a scanopt graph: expected one classifier output, got {others}")
    names["empty"] = others.pop()
    return names


def tree_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of the tree part (every node before the post-processing, with its
    constants, serialized in order): equal digests mean the same point models, byte for byte."""
    nodes, initializers = _tree_part(model)
    digest = hashlib.sha256()
    for node in nodes:
        digest.update(node.SerializeToString(deterministic=True))
    for tensor in initializers:
        digest.update(tensor.SerializeToString(deterministic=True))
    return digest.hexdigest()


def with_raw_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """The tree part alone, its outputs the raw tensors (a recalibration reads them)."""
    names = raw_names(model)
    nodes, initializers = _tree_part(model)
    info = {v.name: v for v in (*model.graph.value_info, *model.graph.output)}
    outputs = [
        info.get(name) or helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
        for name in names.values()
    ]
    graph = helper.make_graph(
        nodes,
        "scanopt_raw",
        list(model.graph.input),
        outputs,
        initializer=initializers,
    )
    raw = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=IR_VERSION)
    return raw, names


def recalibrated_graph(
    champion: onnx.ModelProto,
    intervals: tuple[Interval, Interval],
    cap: float,
    platt: PlattScaling | None,
) -> onnx.ModelProto:
    """The champion's tree nodes and constants as they are, with a new post-processing:
    other widenings (and group edges), and p_empty mapped by `platt`."""
    nodes, initializers = _tree_part(champion)
    return _assemble(list(nodes), list(initializers), raw_names(champion), intervals, cap, platt)
