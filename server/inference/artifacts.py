"""The one verification of a model version on disk, shared by every entry point.

The launcher (`python -m server.serve`, before it forks), every worker's load and hot
reload (`server.inference.model.load_model`) and `just validate` / promote (export.checks)
all run these checks, in this order, and stop at the first that fails:

    version         the pointer (server.domain.versions.read_current) names a folder that exists
    manifest        manifest.json decodes, has schema MANIFEST_SCHEMA and the folder's name
    feature spec    its feature spec (value and digest) is this code's FEATURE_SPEC
    input/outputs   its input is MODEL_INPUT and its outputs are exactly MODEL_OUTPUTS
    checksums       every listed file (the model among them) is inside the folder and matches
    onnx loads      onnxruntime builds a session from the hashed bytes   (model.py)
    graph contract  the graph takes "features" float32 [n, N_FEATURES] and yields exactly
                    the outputs its manifest lists, as float tensors     (model.py)
    warm-up         every output is float32 [n] and finite on a few plausible scans (model.py)

A refusal is an ArtifactError whose `check` is the step's name and whose message is the
reason, the same words wherever it was raised. Nothing is unpickled: the graph is read as
bytes (the same bytes that were hashed) and handed to onnxruntime. Offline tools add their
own checks after these (parity against the export fixture, metric targets), never instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Final

import msgspec

from server.domain.artifact import (
    CURRENT_FILE,
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    MODEL_INPUT,
    MODEL_OUTPUTS,
    MODELS_DIR,
    Manifest,
)
from server.domain.features import FEATURE_SPEC, N_FEATURES, feature_spec_digest
from server.domain.versions import VERSION_NAME, read_current
from server.errors import ArtifactError

__all__ = [
    "CHECKS",
    "OnPass",
    "Stamp",
    "VerifiedVersion",
    "read_stamp",
    "resolve_version",
    "verify_version",
]

# Every step's name, in the order they run (the module docstring says what each checks).
CHECKS: Final = (
    "version",
    "manifest",
    "feature spec",
    "input/outputs",
    "checksums",
    "onnx loads",
    "graph contract",
    "warm-up",
)
_MANIFEST_DECODER: Final = msgspec.json.Decoder(Manifest)

# (version named by current, mtime of current, mtime of that version's manifest), in ns:
# a poller compares stamps to notice a new version, or a version rewritten in place.
Stamp = tuple[str, int, int]
# Told each step that passed: its name and a one-line detail (`just validate` shows them).
OnPass = Callable[[str, str], None]


class VerifiedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A version whose manifest and checksums passed; `model_bytes` are the hashed bytes."""

    folder: Path
    manifest: Manifest
    model_bytes: bytes
    model_sha256: str
    stamp: Stamp


def _named(artifacts: Path, version: str | None) -> str:
    if version is None:
        version = read_current(artifacts)
        if version is None:
            raise ArtifactError(
                f"{artifacts / CURRENT_FILE}: no such file: expected the name of the version "
                "in service (run `just model`)"
            )
    elif not VERSION_NAME.match(version):
        raise ArtifactError(
            f"version {version!r} is not a folder name: expected letters, digits, '.', '_' "
            "or '-' (like 20261126T040512Z-1a2b3c4d)"
        )
    return version


def resolve_version(artifacts: Path, version: str | None = None) -> Path:
    """The folder of `version` (default: the one artifacts/current names); the "version" step."""
    folder = artifacts / MODELS_DIR / _named(artifacts, version)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such folder: expected the version named by current")
    return folder


def verify_version(
    artifacts: Path, version: str | None = None, *, on_pass: OnPass | None = None
) -> VerifiedVersion:
    """Run the file steps (version to checksums) on one version, without building a session."""

    def tell(name: str, detail: str) -> None:
        if on_pass is not None:
            on_pass(name, detail)

    current_mtime = _mtime(artifacts / CURRENT_FILE)
    folder = resolve_version(artifacts, version)
    tell("version", str(folder))
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_manifest(manifest_path, folder.name)
    tell("manifest", f"{manifest_path} parses: schema {manifest.schema}")
    where = f"model version {folder.name!r}"
    ours = feature_spec_digest()
    if manifest.feature_spec_sha256 != ours:
        raise ArtifactError(
            f"{where} was built for feature spec {manifest.feature_spec_sha256[:12]}..., this "
            f"code encodes spec {ours[:12]}...: expected equal digests (re-export the model)",
            check="feature spec",
        )
    # Compared by value too, not only re-hashed: JSON turns the spec's integer bounds into
    # floats, so a digest over the decoded values would differ from the one recorded.
    if manifest.feature_spec != list(FEATURE_SPEC) or len(manifest.feature_spec) != N_FEATURES:
        raise ArtifactError(
            f"{where}: its feature_spec differs from this code's FEATURE_SPEC "
            f"({len(manifest.feature_spec)} features, expected {N_FEATURES})",
            check="feature spec",
        )
    tell("feature spec", f"sha256 {ours[:12]}, {N_FEATURES} features, as the code's")
    if manifest.input_name != MODEL_INPUT or tuple(manifest.output_names) != MODEL_OUTPUTS:
        raise ArtifactError(
            f"{where}: its manifest lists input {manifest.input_name!r} and outputs "
            f"{manifest.output_names}, expected {MODEL_INPUT!r} and {list(MODEL_OUTPUTS)}",
            check="input/outputs",
        )
    tell("input/outputs", f"{manifest.input_name} -> {', '.join(manifest.output_names)}")
    files = _checked_files(folder, manifest, where)
    tell("checksums", f"{len(files)} files match their sha256")
    return VerifiedVersion(
        folder=folder,
        manifest=manifest,
        model_bytes=files[manifest.model_file],
        model_sha256=manifest.files[manifest.model_file],
        stamp=(folder.name, current_mtime, _mtime(manifest_path)),
    )


def read_stamp(artifacts: Path) -> Stamp:
    """The current version's stamp, cheaply (two stats and one small read)."""
    current_mtime = _mtime(artifacts / CURRENT_FILE)
    version = _named(artifacts, None)
    return (version, current_mtime, _mtime(artifacts / MODELS_DIR / version / MANIFEST_FILE))


def _read_manifest(path: Path, version: str) -> Manifest:
    where = f"model version {version!r}"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(
            f"{where}: {path} cannot be read ({exc.strerror}): expected manifest.json",
            check="manifest",
        ) from None
    try:
        manifest = _MANIFEST_DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise ArtifactError(
            f"{where}: {path} is not a valid manifest: {exc}", check="manifest"
        ) from None
    if manifest.schema != MANIFEST_SCHEMA:
        raise ArtifactError(
            f"{where}: manifest schema {manifest.schema}, expected {MANIFEST_SCHEMA}",
            check="manifest",
        )
    if manifest.version != version:
        raise ArtifactError(
            f"{where}: its manifest says version {manifest.version!r}", check="manifest"
        )
    return manifest


def _checked_files(folder: Path, manifest: Manifest, where: str) -> dict[str, bytes]:
    """Every listed file's bytes; one ArtifactError naming each file that is missing or off."""
    if manifest.model_file not in manifest.files:
        raise ArtifactError(
            f"{where}: model_file {manifest.model_file!r} has no checksum in the manifest's files",
            check="checksums",
        )
    files: dict[str, bytes] = {}
    bad: list[str] = []
    for name, expected in manifest.files.items():
        parts = PurePosixPath(name).parts
        # Files may sit in sub-folders (the training report's plots); never outside the version.
        if not parts or name.startswith("/") or "\\" in name or ".." in parts:
            bad.append(f"file name {name!r} is not a relative path inside the version folder")
            continue
        path = folder / name
        try:
            files[name] = path.read_bytes()
        except FileNotFoundError:
            bad.append(f"{path} is missing")
            continue
        except OSError as exc:
            bad.append(f"{path} cannot be read ({exc.strerror})")
            continue
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != expected:
            bad.append(
                f"{path} sha256 {actual[:12]} differs from the manifest's {expected[:12]}: "
                "the file is corrupt or was replaced"
            )
    if bad:
        raise ArtifactError(f"{where}: {'; '.join(bad)}", check="checksums")
    return files


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
