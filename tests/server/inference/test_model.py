"""Building a session: the graph's signature and outputs are checked before serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import N_FEATURES
from server.errors import ArtifactError
from server.inference.model import load_model
from tests.server.conftest import Versions
from tests.server.onnx_graphs import linear_graph, write_version


def test_real_version_loads_and_runs(artifacts: Path, built_versions: Versions) -> None:
    """The pipeline's version loads, warms and returns float32 [n] for every output."""
    model = load_model(artifacts, intra_op_threads=1, cache_size=8)
    assert model.version == built_versions.first
    outputs = model.run(np.zeros((3, N_FEATURES), dtype=np.float32) + 1.0)
    assert [o.shape for o in outputs] == [(3,)] * len(MODEL_OUTPUTS)
    assert all(o.dtype == np.float32 for o in outputs)


def test_graph_missing_an_output_is_refused(tmp_path: Path) -> None:
    """A graph without p_empty cannot serve the contract."""
    write_version(tmp_path, "no-p-empty", linear_graph(outputs=MODEL_OUTPUTS[:-1]))
    with pytest.raises(ArtifactError, match=r"graph lacks outputs \['p_empty'\]"):
        load_model(tmp_path, intra_op_threads=1, cache_size=0)


def test_graph_with_wrong_input_width_is_refused(tmp_path: Path) -> None:
    """A graph fed another number of features is refused, naming both widths."""
    write_version(tmp_path, "narrow", linear_graph(n_features=N_FEATURES - 1))
    with pytest.raises(ArtifactError, match=rf"expected \[n, {N_FEATURES}\]"):
        load_model(tmp_path, intra_op_threads=1, cache_size=0)


def test_bytes_that_are_not_onnx_are_refused(tmp_path: Path) -> None:
    """Garbage with a matching checksum still fails, as onnxruntime cannot load it."""
    write_version(tmp_path, "garbage", b"not a graph")
    with pytest.raises(ArtifactError, match=r"onnxruntime cannot load model\.onnx"):
        load_model(tmp_path, intra_op_threads=1, cache_size=0)
