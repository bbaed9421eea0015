"""Parity: the ONNX graph in onnxruntime must give what scikit-learn + numpy give.

For every output, max |onnx - reference| / (1 + |reference|) must stay within the
tolerance; export refuses to write a version otherwise and validate re-checks it from the
fixture saved in the version folder (features and expected outputs, a numpy .npz read
with allow_pickle=False, so loading it runs no code).

Errors:

    GraphError      onnxruntime cannot load or run the graph
    ParityError     an output differs beyond the tolerance, or a fixture is not one
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS

__all__ = [
    "FIXTURE_FILE",
    "FIXTURE_ROWS",
    "MIN_PARITY_ROWS",
    "PARITY_TOLERANCE",
    "GraphError",
    "ParityError",
    "ParityReport",
    "compare_outputs",
    "encode_fixture",
    "open_session",
    "read_fixture",
    "run_graph",
]

PARITY_TOLERANCE: Final = 1e-3
MIN_PARITY_ROWS: Final = 10_000
FIXTURE_FILE: Final = "parity.npz"
# The fixture is a sample: enough rows to catch a wrong link or widening, small to commit.
FIXTURE_ROWS: Final = 2_000

Outputs = Mapping[str, npt.NDArray[np.floating]]


class ParityError(Exception):
    """The graph does not reproduce the reference; the message names the output."""


class GraphError(Exception):
    """onnxruntime refused the graph; the message is its first line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ParityReport(msgspec.Struct, frozen=True, kw_only=True):
    """Worst differences over all outputs, and the worst relative one per output."""

    rows: int
    max_abs_diff: float
    max_rel_diff: float
    worst_output: str
    by_output: dict[str, float]
    tolerance: float = PARITY_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_rel_diff <= self.tolerance

    def as_manifest(self) -> dict[str, float]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "rows": float(self.rows),
            "tolerance": self.tolerance,
        }

    def check(self) -> None:
        """Raise ParityError naming the worst output when beyond the tolerance."""
        if not self.passed:
            raise ParityError(
                f"parity failed: output {self.worst_output!r} differs from scikit-learn by "
                f"{self.max_rel_diff:.3g} relative (|onnx - sklearn| / (1 + |sklearn|)) on "
                f"{self.rows} rows: expected at most {self.tolerance:g}"
            )


def open_session(model: bytes | Path) -> ort.InferenceSession:
    """A CPU onnxruntime session of a serialized model or a model file."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not ours to fix
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    # onnxruntime's errors (InvalidProtobuf, InvalidGraph, Fail, ...) derive from Exception.
    except Exception as exc:
        raise GraphError(f"onnxruntime cannot load the model: {_first_line(exc)}") from None


def run_graph(
    session: ort.InferenceSession, features: npt.NDArray[np.float32]
) -> dict[str, npt.NDArray[np.float32]]:
    """Every MODEL_OUTPUT of the session for a float32 feature matrix."""
    try:
        values = session.run(list(MODEL_OUTPUTS), {MODEL_INPUT: np.asarray(features, np.float32)})
    except Exception as exc:
        raise GraphError(f"onnxruntime cannot run the model: {_first_line(exc)}") from None
    return dict(zip(MODEL_OUTPUTS, values, strict=True))


def compare_outputs(
    got: Outputs, expected: Outputs, tolerance: float = PARITY_TOLERANCE
) -> ParityReport:
    """Differences between two output sets; a missing output or wrong shape counts as infinite."""
    by_output: dict[str, float] = {}
    abs_diffs: dict[str, float] = {}
    rows = 0
    for name in MODEL_OUTPUTS:
        ref = np.asarray(expected[name], dtype=np.float64)
        rows = int(ref.shape[0])
        value = got.get(name)
        if value is None or np.shape(value) != ref.shape:
            by_output[name] = abs_diffs[name] = float("inf")
            continue
        diff = np.abs(np.asarray(value, dtype=np.float64) - ref)
        # NaN compares as no difference in max(); count it as infinite instead.
        diff = np.where(np.isnan(diff), np.inf, diff)
        abs_diffs[name] = float(diff.max(initial=0.0))
        by_output[name] = float((diff / (1.0 + np.abs(ref))).max(initial=0.0))
    worst = max(by_output, key=lambda k: by_output[k])
    return ParityReport(
        rows=rows,
        max_abs_diff=max(abs_diffs.values()),
        max_rel_diff=by_output[worst],
        worst_output=worst,
        by_output=by_output,
        tolerance=tolerance,
    )


def encode_fixture(features: npt.NDArray[np.float32], expected: Outputs) -> bytes:
    """The bytes of a parity fixture (.npz): the features and every expected output."""
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {
        name: np.asarray(expected[name], dtype=np.float64) for name in MODEL_OUTPUTS
    }
    arrays["features"] = np.asarray(features, dtype=np.float32)
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def read_fixture(path: Path) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.float64]]]:
    """Features and expected outputs of a fixture; ParityError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            features = np.asarray(data["features"], dtype=np.float32)
            expected = {name: np.asarray(data[name], dtype=np.float64) for name in MODEL_OUTPUTS}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ParityError(
            f"{path} is not a parity fixture ({exc}): expected an .npz with 'features' and "
            f"{', '.join(MODEL_OUTPUTS)}"
        ) from None
    return features, expected
