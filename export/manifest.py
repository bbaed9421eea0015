"""The pieces of manifest.json: reference distributions, package versions, names, hashes.

Reference distributions (for drift checks) are histograms: `edges` has one more entry than
`shares`. Columns with few distinct values (binary, ordinal, a handful of presets) get one
bin per value, edges at the midpoints; other columns get up to `bins` quantile bins. A live
value below edges[0] belongs to the first bin, above edges[-1] to the last.

Errors:

    ManifestError   manifest.json is missing, is not JSON, or does not fit the Manifest struct
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from server.domain.artifact import Manifest, ReferenceDistribution
from server.domain.features import FEATURE_NAMES

__all__ = [
    "PACKAGES",
    "ManifestError",
    "decode_manifest",
    "encode_manifest",
    "package_versions",
    "read_manifest",
    "reference_distribution",
    "reference_distributions",
    "sha256_bytes",
    "version_name",
]

PACKAGES: Final = (
    "numpy",
    "scikit-learn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "polars",
    "msgspec",
    "protobuf",
)
_DECODER: Final = msgspec.json.Decoder(Manifest)


class ManifestError(Exception):
    """manifest.json cannot be used; the message is one line naming the path and cause."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_name(created: datetime, model_sha256: str) -> str:
    """`20261126T040512Z-1a2b3c4d`: sortable by time, unique by content."""
    return f"{created.strftime('%Y%m%dT%H%M%SZ')}-{model_sha256[:8]}"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a model, and Python's."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _discrete_edges(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    unique = np.unique(values)
    if unique.size == 1:
        return np.array([unique[0] - 0.5, unique[0] + 0.5])
    mids = (unique[:-1] + unique[1:]) / 2.0
    return np.concatenate(
        [[unique[0] - (mids[0] - unique[0])], mids, [unique[-1] + (unique[-1] - mids[-1])]]
    )


def reference_distribution(values: npt.ArrayLike, bins: int = 10) -> ReferenceDistribution:
    """Histogram of one column: per value when it has at most 2 x bins values, else quantiles."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("reference_distribution needs at least one finite value")
    if np.unique(v).size <= 2 * bins:
        edges = _discrete_edges(v)
    else:
        edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, bins + 1)))
    counts, _ = np.histogram(v, bins=edges)
    return ReferenceDistribution(
        edges=[float(e) for e in edges], shares=[float(c) / v.size for c in counts]
    )


def reference_distributions(
    features: npt.NDArray[np.float32], outputs: Mapping[str, npt.ArrayLike], bins: int = 10
) -> dict[str, ReferenceDistribution]:
    """Reference histogram of every feature column (by name) and every model output."""
    ref = {
        name: reference_distribution(features[:, i], bins) for i, name in enumerate(FEATURE_NAMES)
    }
    ref.update({name: reference_distribution(v, bins) for name, v in outputs.items()})
    return ref


def encode_manifest(manifest: Manifest) -> bytes:
    """Indented JSON, so a diff of two versions' manifests reads line by line."""
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def decode_manifest(data: bytes, path: Path) -> Manifest:
    """The Manifest in `data`; ManifestError naming `path` and the field otherwise."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise ManifestError(f"{path}: {exc}: expected a scanopt Manifest (JSON)") from None


def read_manifest(path: Path) -> Manifest:
    """The Manifest at `path`; ManifestError when missing or invalid."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(
            f"{path}: cannot read ({exc.strerror}): expected manifest.json"
        ) from None
    return decode_manifest(data, path)
