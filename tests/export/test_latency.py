"""The one-row cost in onnxruntime and the tree count of a graph."""

from __future__ import annotations

import pytest

from export.latency import main, paired_row_costs, row_cost_us, serving_session, tree_count
from export.parity import read_fixture
from export.version import ExportedVersion
from server.domain.artifact import MODEL_FILE
from train.training import QUICK_MODELS


def test_tree_count_is_the_rounds_of_all_seven_models(exported: ExportedVersion) -> None:
    """Count, duration and classifier rounds plus four quantile models' rounds."""
    m = QUICK_MODELS
    expected = m.count.max_iter + m.duration.max_iter + m.empty.max_iter + 4 * m.quantile.max_iter
    assert tree_count(exported.folder / MODEL_FILE) == expected


def test_row_cost_is_a_positive_figure_in_microseconds(exported: ExportedVersion) -> None:
    """A one-row run costs more than nothing and far less than a millisecond a row."""
    features, _ = read_fixture(exported.folder / "parity.npz")
    cost = row_cost_us(exported.folder / MODEL_FILE, features, calls=50, rounds=3)
    assert 0.5 < cost < 5_000


def test_paired_costs_give_one_figure_per_model(exported: ExportedVersion) -> None:
    """Two models alternating call by call: two positive µs figures; no rows is refused."""
    features, _ = read_fixture(exported.folder / "parity.npz")
    model = exported.folder / MODEL_FILE
    first, second = paired_row_costs(model, model.read_bytes(), features, calls=50)
    assert 0.5 < first < 5_000
    assert 0.5 < second < 5_000
    with pytest.raises(ValueError, match="at least one feature row"):
        paired_row_costs(model, model, features[:0])


def test_the_session_runs_single_threaded(exported: ExportedVersion) -> None:
    """The timing session uses the server's thread settings: one intra-op thread."""
    session = serving_session(exported.folder / MODEL_FILE)
    assert session.get_session_options().intra_op_num_threads == 1


def test_cli_prints_trees_and_cost_of_each_version(
    exported: ExportedVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    """`just model-cost`: one line per version with its trees and a µs figure."""
    artifacts = exported.folder.parent.parent
    assert main(["--artifacts", str(artifacts), "--rounds", "1", "--calls", "20"]) == 0
    out = capsys.readouterr().out
    m = QUICK_MODELS
    trees = m.count.max_iter + m.duration.max_iter + m.empty.max_iter + 4 * m.quantile.max_iter
    assert out.startswith(f"{exported.folder.name}: {trees} trees, one row ")
    assert " µs " in out


def test_cli_unknown_version_is_one_line(
    exported: ExportedVersion, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version that is not there: exit 1 and a one-line error naming the file."""
    artifacts = exported.folder.parent.parent
    assert main(["--artifacts", str(artifacts), "nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nope" in err
