"""Is a model version on disk ready to serve? Every check reads files only.

The integrity checks are the server's own (server.inference.artifacts lists them: version,
manifest, feature spec, input/outputs, checksums, onnx loads, graph contract, warm-up),
run through `load_model` exactly as the launcher and the hot reload run them, so `just
validate` and a worker can never disagree about a version. This module adds what only
an offline tool has: parity on the fixture saved at export, the parity recorded then,
output ranges and the metric targets. No scikit-learn object is loaded. The first
failing integrity check ends the run: later checks would say nothing new.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from export.parity import (
    FIXTURE_FILE,
    MIN_PARITY_ROWS,
    PARITY_TOLERANCE,
    ParityError,
    compare_outputs,
    read_fixture,
)
from server.domain.artifact import MODEL_OUTPUTS, Manifest
from server.errors import ArtifactError
from server.inference.artifacts import resolve_version
from server.inference.model import Features, LoadedModel, load_model
from train.targets import check_targets

__all__ = ["Check", "ValidationRun", "validate_version"]


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One readiness check: its name, whether it passed, and a one-line detail."""

    name: str
    passed: bool
    detail: str


class ValidationRun(msgspec.Struct, frozen=True, kw_only=True):
    """Every check run on one version, and what was needed to make predictions."""

    folder: Path | None
    manifest: Manifest | None
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


def _outputs(model: LoadedModel, features: Features) -> dict[str, npt.NDArray[np.float32]]:
    return dict(zip(MODEL_OUTPUTS, model.run(features), strict=True))


def _check_parity(model: LoadedModel, folder: Path) -> list[Check]:
    """The graph, in the session the server builds, against the outputs saved at export."""
    manifest = model.manifest
    if FIXTURE_FILE not in manifest.files:
        return [Check(name="parity", passed=False, detail=f"manifest lists no {FIXTURE_FILE}")]
    try:
        features, expected = read_fixture(folder / FIXTURE_FILE)
        report = compare_outputs(_outputs(model, features), expected, PARITY_TOLERANCE)
        detail = (
            f"{report.rows} fixture rows: max relative diff {report.max_rel_diff:.3g} "
            f"({report.worst_output}), tolerance {report.tolerance:g}"
        )
        checks = [Check(name="parity", passed=report.passed, detail=detail)]
    except ParityError as exc:
        checks = [Check(name="parity", passed=False, detail=str(exc).splitlines()[0])]
    recorded = manifest.parity.get("max_rel_diff", float("inf"))
    checks.append(
        Check(
            name="export parity",
            passed=recorded <= PARITY_TOLERANCE,
            detail=f"recorded at export: max relative diff {recorded:.3g} on "
            f"{manifest.parity.get('rows', 0):.0f} rows",
        )
    )
    return checks


def _check_outputs_sane(model: LoadedModel, folder: Path) -> Check:
    """Counts within [0, universe size], intervals around their point, p in [0, 1]."""
    features, _ = read_fixture(folder / FIXTURE_FILE)
    out = _outputs(model, features)
    size = features[:, 0]
    problems = []
    for target in ("result_count", "duration_s"):
        lo, mid, hi = out[f"{target}_lo"], out[target], out[f"{target}_hi"]
        if not np.all((lo <= mid) & (mid <= hi)):
            problems.append(f"{target} outside its interval")
        if not np.all(np.isfinite(mid)) or np.any(lo < 0):
            problems.append(f"{target} not finite and >= 0")
    if np.any(out["result_count_hi"] > size):
        problems.append("result_count_hi above the universe size")
    if np.any(out["duration_s_lo"] <= 0):
        problems.append("duration_s_lo not > 0")
    if np.any((out["p_empty"] < 0) | (out["p_empty"] > 1)):
        problems.append("p_empty outside [0, 1]")
    detail = "; ".join(problems) if problems else f"{len(size)} rows: bounds and order hold"
    return Check(name="output ranges", passed=not problems, detail=detail)


def validate_version(
    artifacts: Path, version: str | None = None, *, targets: bool = True
) -> ValidationRun:
    """Run every check on `version` (default: the one `current` names)."""
    checks: list[Check] = []

    def passed(name: str, detail: str) -> None:
        checks.append(Check(name=name, passed=True, detail=detail))

    try:
        model = load_model(
            artifacts, intra_op_threads=1, cache_size=0, version=version, on_pass=passed
        )
    except ArtifactError as exc:
        checks.append(Check(name=exc.check, passed=False, detail=exc.message))
        # Only a refused "version" step (no pointer, no folder) leaves no folder to name.
        folder = None if exc.check == "version" else resolve_version(artifacts, version)
        return ValidationRun(folder=folder, manifest=None, checks=checks)
    folder = model.folder
    checks += _check_parity(model, folder)
    if all(c.passed for c in checks):
        checks.append(_check_outputs_sane(model, folder))
    manifest = model.manifest
    if targets:
        rows = manifest.parity.get("rows", 0.0)
        checks.append(
            Check(
                name="target: parity rows",
                passed=rows >= MIN_PARITY_ROWS,
                detail=f"{rows:.0f} rows compared at export (bar >= {MIN_PARITY_ROWS})",
            )
        )
        for t in check_targets(manifest.metrics):
            measured = "missing" if t.measured is None else f"{t.measured:.4g}"
            checks.append(
                Check(
                    name=f"target: {t.target.label}",
                    passed=t.passed,
                    detail=f"{measured} (bar {t.target.describe()})",
                )
            )
    return ValidationRun(folder=folder, manifest=manifest, checks=checks)
