"""What one row costs in onnxruntime: the serving budget of a model version, measured.

    python -m export.latency [--artifacts artifacts] [--rounds 5] [VERSION ...]

prints, for each version (default: current), its tree count and the median µs of a one-row
run on its own parity rows (parity.npz); several versions are measured in interleaved
rounds, so a busy moment on a shared machine falls on all of them alike.

onnxruntime walks every tree of every model for every row, so the cost of a one-row run
is what a model's accuracy is bought with. Measured the way the server runs: one intra-op
thread, sequential execution, all graph optimizations, one-row calls on the rows in turn
(one row repeated would stay warm in the caches and flatter the figure). The figure is the
median over `rounds` rounds of the per-round median, so one busy moment on a shared
machine moves it little.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from export.artifacts import ArtifactError, read_current, version_dir
from export.parity import FIXTURE_FILE, ParityError, read_fixture
from server.domain.artifact import MODEL_FILE, MODEL_INPUT

__all__ = [
    "main",
    "paired_row_costs",
    "row_cost_us",
    "serving_session",
    "tree_count",
]


def serving_session(model: bytes | Path) -> ort.InferenceSession:
    """A session with the server's options: CPU, one intra-op thread, sequential."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def row_cost_us(
    model: bytes | Path,
    features: npt.NDArray[np.float32],
    *,
    calls: int = 2000,
    rounds: int = 5,
) -> float:
    """Median µs of a one-row run over `rounds` rounds of `calls` calls on the rows in turn."""
    if features.shape[0] == 0:
        raise ValueError("row_cost_us needs at least one feature row")
    session = serving_session(model)
    rows = [
        np.ascontiguousarray(features[i : i + 1], dtype=np.float32) for i in range(len(features))
    ]
    for row in rows[: min(len(rows), 200)]:  # warm up: allocations, first-run paths
        session.run(None, {MODEL_INPUT: row})
    medians = []
    for r in range(rounds):
        times = []
        for i in range(calls):
            row = rows[(r * calls + i) % len(rows)]
            started = time.perf_counter_ns()
            session.run(None, {MODEL_INPUT: row})
            times.append(time.perf_counter_ns() - started)
        medians.append(statistics.median(times) / 1000.0)
    return statistics.median(medians)


def paired_row_costs(
    first: bytes | Path,
    second: bytes | Path,
    features: npt.NDArray[np.float32],
    *,
    calls: int = 3000,
) -> tuple[float, float]:
    """Median µs of a one-row run of two models, alternating call by call (ABBA order) on
    the rows in turn: a busy moment on a shared machine, which lasts far longer than one
    call, falls on both alike, where rounds of hundreds of calls each were hit unevenly
    (measured: README "Model lifecycle")."""
    if features.shape[0] == 0:
        raise ValueError("paired_row_costs needs at least one feature row")
    sessions = (serving_session(first), serving_session(second))
    rows = [
        np.ascontiguousarray(features[i : i + 1], dtype=np.float32) for i in range(len(features))
    ]
    for row in rows[: min(len(rows), 200)]:  # warm up: allocations, first-run paths
        for session in sessions:
            session.run(None, {MODEL_INPUT: row})
    times: tuple[list[int], list[int]] = ([], [])
    for i in range(calls):
        feed = {MODEL_INPUT: rows[i % len(rows)]}
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            started = time.perf_counter_ns()
            sessions[k].run(None, feed)
            times[k].append(time.perf_counter_ns() - started)
    return statistics.median(times[0]) / 1000.0, statistics.median(times[1]) / 1000.0


def tree_count(model: bytes | Path) -> int:
    """Trees in a graph: the distinct tree ids of every tree-ensemble node."""
    import onnx  # only for counting; serving never needs it

    proto = onnx.load(str(model)) if isinstance(model, Path) else onnx.load_from_string(model)
    total = 0
    for node in proto.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            for attr in node.attribute:
                if attr.name in ("nodes_treeids", "tree_roots"):
                    total += len(set(attr.ints)) if attr.name == "nodes_treeids" else len(attr.ints)
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("versions", nargs="*", help="version folder names (default: current)")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    try:
        names = args.versions or [read_current(args.artifacts) or ""]
        folders = [version_dir(args.artifacts, name) for name in names]
        rows = [read_fixture(folder / FIXTURE_FILE)[0] for folder in folders]
    except (ArtifactError, ParityError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    costs: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, folder, features in zip(names, folders, rows, strict=True):
            model = folder / MODEL_FILE
            costs[name].append(row_cost_us(model, features, calls=args.calls, rounds=1))
    for name, folder in zip(names, folders, strict=True):
        median = statistics.median(costs[name])
        print(
            f"{name}: {tree_count(folder / MODEL_FILE)} trees, one row {median:.1f} µs "
            f"(median of {args.rounds} interleaved rounds of {args.calls} calls; "
            f"rounds {min(costs[name]):.1f}-{max(costs[name]):.1f} µs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
