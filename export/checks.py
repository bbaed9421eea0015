"""Is a model version on disk ready to serve? Every check reads files only.

No scikit-learn object is loaded: the manifest, the ONNX graph and the parity fixture are
all there is, exactly as the server will see them. Each check is a `Check` with a one-line
detail; the first failure that makes later checks meaningless (no pointer, no manifest)
stops the run.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np

from export.artifacts import ArtifactError, read_current, version_dir
from export.manifest import ManifestError, read_manifest, sha256_bytes
from export.parity import (
    FIXTURE_FILE,
    MIN_PARITY_ROWS,
    PARITY_TOLERANCE,
    GraphError,
    ParityError,
    compare_outputs,
    open_session,
    read_fixture,
    run_graph,
)
from server.domain.artifact import (
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    MODEL_INPUT,
    MODEL_OUTPUTS,
    Manifest,
)
from server.domain.features import FEATURE_SPEC, N_FEATURES, feature_spec_digest
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


def _resolve(artifacts: Path, version: str | None) -> tuple[Path, Check]:
    if version is None:
        version = read_current(artifacts)
        if version is None:
            raise ArtifactError(
                f"{artifacts / 'current'}: no such file: expected the name of the version in "
                "service (run `just export`)"
            )
    folder = version_dir(artifacts, version)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such folder: expected the version named by current")
    return folder, Check(name="version", passed=True, detail=str(folder))


def _check_contract(manifest: Manifest) -> list[Check]:
    spec_ok = (
        manifest.feature_spec == list(FEATURE_SPEC)
        and manifest.feature_spec_sha256 == feature_spec_digest()
    )
    io_ok = manifest.input_name == MODEL_INPUT and tuple(manifest.output_names) == MODEL_OUTPUTS
    return [
        Check(
            name="schema",
            passed=manifest.schema == MANIFEST_SCHEMA,
            detail=f"manifest schema {manifest.schema}, expected {MANIFEST_SCHEMA}",
        ),
        Check(
            name="feature spec",
            passed=spec_ok,
            detail=f"sha256 {manifest.feature_spec_sha256[:12]}, code has "
            f"{feature_spec_digest()[:12]}",
        ),
        Check(
            name="input/outputs",
            passed=io_ok,
            detail=f"{manifest.input_name} -> {', '.join(manifest.output_names)}",
        ),
    ]


def _check_files(folder: Path, manifest: Manifest) -> Check:
    bad = []
    for name, digest in manifest.files.items():
        path = folder / name
        if not path.is_file():
            bad.append(f"{path} is missing")
        elif sha256_bytes(path.read_bytes()) != digest:
            bad.append(f"{path} sha256 differs from the manifest's {digest[:12]}")
    for needed in (manifest.model_file, FIXTURE_FILE):
        if needed not in manifest.files:
            bad.append(f"manifest lists no {needed}")
    detail = "; ".join(bad) if bad else f"{len(manifest.files)} files match their sha256"
    return Check(name="checksums", passed=not bad, detail=detail)


def _check_graph(folder: Path, manifest: Manifest) -> list[Check]:
    path = folder / manifest.model_file
    try:
        session = open_session(path)
    except GraphError as exc:
        return [Check(name="onnx loads", passed=False, detail=f"{path}: {exc}")]
    inputs = [(i.name, i.type, list(i.shape)[1:]) for i in session.get_inputs()]
    outputs = [(o.name, o.type) for o in session.get_outputs()]
    io_ok = inputs == [(MODEL_INPUT, "tensor(float)", [N_FEATURES])] and outputs == [
        (name, "tensor(float)") for name in MODEL_OUTPUTS
    ]
    checks = [
        Check(name="onnx loads", passed=True, detail=f"{path} in onnxruntime"),
        Check(
            name="graph contract",
            passed=io_ok,
            detail=f"inputs {inputs}; outputs {[n for n, _ in outputs]}",
        ),
    ]
    if not io_ok:
        return checks
    try:
        features, expected = read_fixture(folder / FIXTURE_FILE)
        report = compare_outputs(run_graph(session, features), expected, PARITY_TOLERANCE)
        detail = (
            f"{report.rows} fixture rows: max relative diff {report.max_rel_diff:.3g} "
            f"({report.worst_output}), tolerance {report.tolerance:g}"
        )
        checks.append(Check(name="parity", passed=report.passed, detail=detail))
    except (ParityError, GraphError) as exc:
        checks.append(Check(name="parity", passed=False, detail=str(exc).splitlines()[0]))
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


def _check_outputs_sane(folder: Path, manifest: Manifest) -> Check:
    """Counts within [0, universe size], intervals around their point, p in [0, 1]."""
    session = open_session(folder / manifest.model_file)
    features, _ = read_fixture(folder / FIXTURE_FILE)
    out = run_graph(session, features)
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
    try:
        folder, found = _resolve(artifacts, version)
        manifest = read_manifest(folder / MANIFEST_FILE)
    except (ArtifactError, ManifestError) as exc:
        return ValidationRun(
            folder=None,
            manifest=None,
            checks=[Check(name="version", passed=False, detail=str(exc))],
        )
    checks = [found, Check(name="manifest", passed=True, detail=f"{folder / MANIFEST_FILE} parses")]
    checks += _check_contract(manifest)
    files = _check_files(folder, manifest)
    checks.append(files)
    if files.passed:
        checks += _check_graph(folder, manifest)
        if all(c.passed for c in checks):
            checks.append(_check_outputs_sane(folder, manifest))
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
