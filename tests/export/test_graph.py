"""The combined ONNX graph: its contract, and parity that catches a missing link."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import onnx
import pytest

from export.graph import (
    TARGET_OPSET,
    build_graph,
    recalibrated_graph,
    tree_digest,
    with_raw_outputs,
)
from export.parity import (
    ParityError,
    compare_outputs,
    encode_fixture,
    open_session,
    read_fixture,
    run_graph,
)
from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS
from server.domain.features import N_FEATURES
from train.models import PlattScaling, post_process, predict_outputs
from train.recalibrate import raw_graph_outputs
from train.training import TrainResult


@pytest.fixture(scope="module")
def graph(quick_result: TrainResult) -> onnx.ModelProto:
    return build_graph(quick_result.models)


def _held_out(result: TrainResult) -> np.ndarray:
    return np.concatenate([result.splits.calibration.features, result.splits.test.features])


def test_graph_has_one_float_input_and_exactly_the_contract_outputs(graph: onnx.ModelProto) -> None:
    """Input "features" [n, N_FEATURES] float32; outputs MODEL_OUTPUTS, each float32 [n]."""
    session = open_session(graph.SerializeToString())
    (inp,) = session.get_inputs()
    assert (inp.name, inp.type, inp.shape[1]) == (MODEL_INPUT, "tensor(float)", N_FEATURES)
    assert [o.name for o in session.get_outputs()] == list(MODEL_OUTPUTS)
    out = run_graph(session, np.zeros((3, N_FEATURES), np.float32) + 1.0)
    assert all(v.shape == (3,) and v.dtype == np.float32 for v in out.values())
    assert {i.domain or "": i.version for i in graph.opset_import} == TARGET_OPSET


def test_onnx_matches_sklearn_on_held_out_rows(
    quick_result: TrainResult, graph: onnx.ModelProto
) -> None:
    """Every output agrees with scikit-learn + numpy post-processing within 1e-3 relative."""
    x = _held_out(quick_result)
    report = compare_outputs(
        run_graph(open_session(graph.SerializeToString()), x),
        predict_outputs(quick_result.models, x),
    )
    assert report.passed, report
    assert report.rows == len(x)
    report.check()


def _without_exp_on(graph: onnx.ModelProto, raw_output: str) -> onnx.ModelProto:
    """The graph with Log applied to `raw_output` before the post-processing's one Exp.

    exp(log(raw)) is the raw log-scale score: what the graph gives when it misses the link.
    """
    broken = onnx.ModelProto()
    broken.CopyFrom(graph)
    for node in broken.graph.node:
        node.input[:] = [f"{raw_output}_log" if i == raw_output else i for i in node.input]
    undo = onnx.helper.make_node("Log", [raw_output], [f"{raw_output}_log"])
    producer = next(i for i, n in enumerate(broken.graph.node) if raw_output in n.output)
    broken.graph.node.insert(producer + 1, undo)
    return broken


def test_parity_catches_a_missing_poisson_link(
    quick_result: TrainResult, graph: onnx.ModelProto
) -> None:
    """Without exp on the Poisson output (skl2onnx's pitfall), parity fails on result_count."""
    broken = _without_exp_on(graph, "count_mean_variable")
    x = _held_out(quick_result)
    report = compare_outputs(
        run_graph(open_session(broken.SerializeToString()), x),
        predict_outputs(quick_result.models, x),
    )
    assert not report.passed
    assert report.worst_output in {"result_count", "result_count_lo", "result_count_hi"}
    assert report.by_output["result_count"] > 1e-3
    with pytest.raises(ParityError, match=r"output 'result_count.*expected at most 0\.001"):
        report.check()


def test_a_missing_or_misshapen_output_counts_as_infinitely_far(quick_result: TrainResult) -> None:
    """Parity cannot pass by omission: a missing output or a wrong shape is an infinite diff."""
    x = _held_out(quick_result)[:10]
    expected = predict_outputs(quick_result.models, x)
    got = {k: v.astype(np.float32) for k, v in expected.items() if k != "p_empty"}
    got["duration_s"] = got["duration_s"][:5]
    report = compare_outputs(got, expected)
    assert report.by_output["p_empty"] == float("inf")
    assert report.by_output["duration_s"] == float("inf")
    assert report.by_output["result_count"] < 1e-6


def test_nan_output_fails_parity(quick_result: TrainResult) -> None:
    """A NaN where a number was expected is a failure, not a zero difference."""
    x = _held_out(quick_result)[:10]
    expected = predict_outputs(quick_result.models, x)
    got = dict(expected)
    got["p_empty"] = np.full(10, np.nan)
    assert not compare_outputs(got, expected).passed


def test_parity_fixture_round_trips_without_pickle(
    quick_result: TrainResult, tmp_path: Path
) -> None:
    """The .npz fixture gives back the same features and expected outputs."""
    x = _held_out(quick_result)[:20]
    expected = predict_outputs(quick_result.models, x)
    path = tmp_path / "parity.npz"
    path.write_bytes(encode_fixture(x, expected))
    features, back = read_fixture(path)
    assert np.array_equal(features, x)
    assert all(np.array_equal(back[k], expected[k]) for k in MODEL_OUTPUTS)


def test_a_fixture_that_is_not_one_is_a_parity_error(tmp_path: Path) -> None:
    """A truncated or foreign file is reported with its path, not a zipfile traceback."""
    path = tmp_path / "parity.npz"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ParityError, match="is not a parity fixture"):
        read_fixture(path)


def test_a_recalibrated_graph_keeps_the_trees_and_moves_only_what_follows(
    quick_result: TrainResult, graph: onnx.ModelProto
) -> None:
    """Rebuilt with the same widenings and no scaling it answers exactly as before; with
    other widenings and a Platt scaling only the intervals and p_empty move, as the numpy
    post-processing of the graph's own raw outputs says, and the tree part is unchanged."""
    models, x = quick_result.models, _held_out(quick_result)
    intervals = (models.count_interval, models.duration_interval)
    before = run_graph(open_session(graph.SerializeToString()), x)
    same = recalibrated_graph(graph, intervals, models.duration_cap_s, None)
    again = run_graph(open_session(same.SerializeToString()), x)
    assert all(np.array_equal(before[k], again[k]) for k in MODEL_OUTPUTS)
    wider = tuple(
        msgspec.structs.replace(i, widenings=[w + 0.2 for w in i.widenings]) for i in intervals
    )
    platt = PlattScaling(a=1.5, b=-0.3)
    moved = recalibrated_graph(graph, (wider[0], wider[1]), models.duration_cap_s, platt)
    assert tree_digest(moved) == tree_digest(graph)
    out = run_graph(open_session(moved.SerializeToString()), x)
    for name in ("result_count", "duration_s"):
        assert np.array_equal(out[name], before[name])
    assert (out["duration_s_hi"] >= before["duration_s_hi"]).all()
    assert (out["duration_s_hi"] > before["duration_s_hi"]).mean() > 0.5
    _, names = with_raw_outputs(graph)
    assert list(names) == [*(n for row in _RAW_ROWS for n in row), "empty"]
    raw = raw_graph_outputs(graph, x)
    expected = post_process(raw, x, wider[0], wider[1], models.duration_cap_s, platt)
    report = compare_outputs(out, expected)
    assert report.passed, report
    assert np.allclose(raw.p_empty, before["p_empty"], atol=1e-6)


_RAW_ROWS = (
    ("count_mean", "duration_mean"),
    ("count_lo", "duration_lo"),
    ("count_hi", "duration_hi"),
)
