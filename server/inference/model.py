"""One model version ready to run: its manifest, its onnxruntime session, its cache.

A `LoadedModel` is immutable once built; hot reload builds a new one and swaps a single
reference, so a request that picked up the old one finishes on it. `load_model` runs the
whole verification (server.inference.artifacts lists its steps): the file steps, then
the three that need the graph itself (onnx loads, graph contract, warm-up).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from server.domain.artifact import MODEL_INPUT, MODEL_OUTPUTS, Manifest
from server.domain.features import N_FEATURES, encode_scans
from server.domain.scan import Scan, Strategy, Timeframe, Universe
from server.errors import ArtifactError
from server.inference.artifacts import OnPass, Stamp, VerifiedVersion, verify_version
from server.inference.cache import PredictionCache

__all__ = ["Features", "LoadedModel", "Outputs", "load_model"]

Features = npt.NDArray[np.float32]
Outputs = list[npt.NDArray[np.float32]]  # one float32 [n] array per MODEL_OUTPUTS name

# Warm-up sizes: one row (the hot path) and a batch (allocates the larger arenas).
_WARM_ROWS: Final = (1, 64)


class LoadedModel:
    """A verified version with its session; `run` is safe to call from several threads."""

    def __init__(
        self, verified: VerifiedVersion, session: ort.InferenceSession, cache_size: int
    ) -> None:
        self.folder: Path = verified.folder
        self.manifest: Manifest = verified.manifest
        self.version: str = verified.manifest.version
        self.sha256: str = verified.model_sha256
        self.stamp: Stamp = verified.stamp
        self.session = session
        self.cache = PredictionCache(cache_size)
        self._output_names: Final = list(MODEL_OUTPUTS)  # built once, not per call

    def run(self, features: Features) -> Outputs:
        """Every output for a float32 [n, N_FEATURES] matrix (onnxruntime releases the GIL)."""
        outputs: Outputs = self.session.run(self._output_names, {MODEL_INPUT: features})
        return outputs

    def warm(self) -> None:
        """Run once per warm-up size and check every output's shape, type and finiteness
        (the "warm-up" step)."""
        rows = _warm_features()
        for n in _WARM_ROWS:
            features = np.resize(rows, (n, N_FEATURES))
            outputs = self.run(features)
            for name, out in zip(MODEL_OUTPUTS, outputs, strict=True):
                if out.shape != (n,) or out.dtype != np.float32:
                    raise ArtifactError(
                        f"model version {self.version!r}: output {name!r} is {out.dtype} "
                        f"{list(out.shape)} for {n} rows, expected float32 [{n}]",
                        check="warm-up",
                    )
                if not np.isfinite(out).all():
                    raise ArtifactError(
                        f"model version {self.version!r}: output {name!r} is not finite "
                        "on the warm-up rows",
                        check="warm-up",
                    )


def load_model(
    artifacts: Path,
    *,
    intra_op_threads: int,
    cache_size: int,
    version: str | None = None,
    on_pass: OnPass | None = None,
) -> LoadedModel:
    """Verify a version (default: artifacts/current), build its session and warm it.

    ArtifactError names the step that refused it; `on_pass` hears each step that passed.
    """

    def tell(name: str, detail: str) -> None:
        if on_pass is not None:
            on_pass(name, detail)

    verified = verify_version(artifacts, version, on_pass=on_pass)
    where = f"model version {verified.manifest.version!r}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    try:
        session = ort.InferenceSession(
            verified.model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"{where}: onnxruntime cannot load {verified.manifest.model_file}: {first}",
            check="onnx loads",
        ) from None
    tell("onnx loads", f"{verified.folder / verified.manifest.model_file} in onnxruntime")
    tell("graph contract", _check_signature(session, where))
    model = LoadedModel(verified, session, cache_size)
    model.warm()
    tell("warm-up", f"{', '.join(map(str, _WARM_ROWS))} rows: every output float32 and finite")
    return model


def _check_signature(session: ort.InferenceSession, where: str) -> str:
    """The "graph contract" step; its one-line detail when it passes."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != MODEL_INPUT or inputs[0].type != "tensor(float)":
        found = [(i.name, i.type) for i in inputs]
        raise ArtifactError(
            f"{where}: graph inputs {found}, expected one {MODEL_INPUT!r} float tensor",
            check="graph contract",
        )
    shape = inputs[0].shape
    if len(shape) != 2 or shape[1] != N_FEATURES:
        raise ArtifactError(
            f"{where}: input shape {shape}, expected [n, {N_FEATURES}]", check="graph contract"
        )
    outputs = {o.name: o.type for o in session.get_outputs()}
    # The file steps made the manifest's output names exactly MODEL_OUTPUTS.
    missing = [name for name in MODEL_OUTPUTS if name not in outputs]
    if missing:
        raise ArtifactError(
            f"{where}: graph lacks outputs {missing} that its manifest lists",
            check="graph contract",
        )
    extra = sorted(set(outputs) - set(MODEL_OUTPUTS))
    if extra:
        raise ArtifactError(
            f"{where}: graph has outputs {extra} that its manifest does not list",
            check="graph contract",
        )
    not_float = [name for name in MODEL_OUTPUTS if outputs[name] != "tensor(float)"]
    if not_float:
        raise ArtifactError(
            f"{where}: outputs {not_float} are not float tensors", check="graph contract"
        )
    return f"input {MODEL_INPUT} float [n, {N_FEATURES}]; outputs {', '.join(MODEL_OUTPUTS)}"


def _warm_features() -> Features:
    """A few plausible scans across universes, strategies and timeframes."""
    at = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
    scans = [
        Scan(
            user_id="warm-up",
            session_id="warm-up",
            universe=universe,
            strategy=strategy,
            timeframe=timeframe,
            lookback_bars=50 + 40 * i,
            min_price=1.0 + i,
            max_price=500.0 + 100 * i,
            min_avg_volume=100_000.0 * i,
            min_market_cap_musd=100.0 * i,
            min_abs_change_pct=0.5 * i,
            min_relative_volume=0.5 * i,
            rsi_min=10.0 + i,
            rsi_max=80.0,
            n_extra_filters=i % 4,
            volatility_index=12.0 + 3 * i,
            timestamp=at,
        )
        for i, (universe, strategy, timeframe) in enumerate(
            zip(list(Universe), list(Strategy), [*Timeframe, Timeframe.D1], strict=True)
        )
    ]
    return encode_scans(scans)
