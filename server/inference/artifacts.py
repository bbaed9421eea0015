"""Reading a model version from the artifacts directory, refusing anything suspect.

A version is served only if its manifest decodes, its feature spec digest equals this
server's (`feature_spec_digest()`), every file matches its sha256, and the ONNX graph takes
"features" float32 [n, N_FEATURES] and yields every name in MODEL_OUTPUTS. Nothing is
unpickled: the graph is read as bytes (the same bytes that were hashed) and handed to
onnxruntime.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Final

import msgspec

from server.domain.artifact import (
    CURRENT_FILE,
    MANIFEST_FILE,
    MODEL_INPUT,
    MODEL_OUTPUTS,
    MODELS_DIR,
    Manifest,
)
from server.domain.features import FEATURE_SPEC, N_FEATURES, feature_spec_digest
from server.errors import ArtifactError

__all__ = ["Stamp", "VerifiedVersion", "read_current", "read_stamp", "verify_version"]

# A version names a directory: no separators, no "..", nothing a shell would mangle.
_VERSION_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MANIFEST_DECODER: Final = msgspec.json.Decoder(Manifest)

# (version named by current, mtime of current, mtime of that version's manifest), in ns:
# a poller compares stamps to notice a new version, or a version rewritten in place.
Stamp = tuple[str, int, int]


class VerifiedVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A version whose manifest and checksums passed; `model_bytes` are the hashed bytes."""

    manifest: Manifest
    model_bytes: bytes
    model_sha256: str
    stamp: Stamp


def read_current(artifacts: Path) -> str:
    """The version named by `artifacts/current`, checked to be a plain directory name."""
    path = artifacts / CURRENT_FILE
    try:
        version = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ArtifactError(
            f"{path} does not exist: expected a file naming the model version to serve "
            "(run `just model`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from None
    if not _VERSION_RE.match(version):
        raise ArtifactError(
            f"{path} names version {version!r}: expected a directory name of letters, digits, "
            "'.', '_' or '-'"
        )
    return version


def verify_version(artifacts: Path, version: str | None = None) -> VerifiedVersion:
    """Read and check one version (default: the current one) without building a session."""
    current_mtime = _mtime(artifacts / CURRENT_FILE)
    version = version or read_current(artifacts)
    folder = artifacts / MODELS_DIR / version
    manifest_path = folder / MANIFEST_FILE
    try:
        raw_manifest = manifest_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(
            f"model version {version!r}: {manifest_path} unreadable: {exc}"
        ) from None
    try:
        manifest = _MANIFEST_DECODER.decode(raw_manifest)
    except msgspec.DecodeError as exc:
        raise ArtifactError(
            f"model version {version!r}: {manifest_path} is not a valid manifest: {exc}"
        ) from None
    _check_manifest(manifest, version)
    files: dict[str, bytes] = {}
    for name, expected in manifest.files.items():
        path = folder / name
        parts = PurePosixPath(name).parts
        # Files may sit in sub-folders (the training report's plots); never outside the version.
        if not parts or name.startswith("/") or "\\" in name or ".." in parts:
            raise ArtifactError(
                f"model version {version!r}: file name {name!r} is not a relative path "
                "inside the version folder"
            )
        try:
            files[name] = path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"model version {version!r}: {path} unreadable: {exc}") from None
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != expected:
            raise ArtifactError(
                f"model version {version!r}: {name} has sha256 {actual[:12]}..., the manifest "
                f"expects {expected[:12]}...: the file is corrupt or was replaced"
            )
    return VerifiedVersion(
        manifest=manifest,
        model_bytes=files[manifest.model_file],
        model_sha256=manifest.files[manifest.model_file],
        stamp=(version, current_mtime, _mtime(manifest_path)),
    )


def read_stamp(artifacts: Path) -> Stamp:
    """The current version's stamp, cheaply (two stats and one small read)."""
    current_mtime = _mtime(artifacts / CURRENT_FILE)
    version = read_current(artifacts)
    manifest = artifacts / MODELS_DIR / version / MANIFEST_FILE
    return (version, current_mtime, _mtime(manifest))


def _check_manifest(manifest: Manifest, version: str) -> None:
    where = f"model version {version!r}"
    if manifest.version != version:
        raise ArtifactError(f"{where}: its manifest says version {manifest.version!r}")
    ours = feature_spec_digest()
    if manifest.feature_spec_sha256 != ours:
        raise ArtifactError(
            f"{where} was built for feature spec {manifest.feature_spec_sha256[:12]}..., this "
            f"server encodes spec {ours[:12]}...: expected equal digests (re-export the model)"
        )
    # Compared by value, not re-hashed: JSON turns the spec's integer bounds into floats.
    if manifest.feature_spec != list(FEATURE_SPEC):
        raise ArtifactError(f"{where}: its feature_spec differs from this server's FEATURE_SPEC")
    if manifest.input_name != MODEL_INPUT:
        raise ArtifactError(f"{where}: input {manifest.input_name!r}, expected {MODEL_INPUT!r}")
    missing = [name for name in MODEL_OUTPUTS if name not in manifest.output_names]
    if missing:
        raise ArtifactError(f"{where}: outputs {missing} missing, expected all of {MODEL_OUTPUTS}")
    if manifest.model_file not in manifest.files:
        raise ArtifactError(
            f"{where}: model_file {manifest.model_file!r} has no checksum in the manifest's files"
        )
    if len(manifest.feature_spec) != N_FEATURES:
        raise ArtifactError(
            f"{where}: {len(manifest.feature_spec)} features, expected {N_FEATURES}"
        )


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
