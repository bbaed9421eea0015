"""Ways to damage a built model version in place, as an attacker or a bad copy would.

Each function takes a version folder. `flip_bytes` leaves the manifest alone (the
checksum no longer matches); the others rewrite the manifest's sha256 of the graph so the
version is self-consistent and only loading or inspecting the graph can refuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import onnx

__all__ = ["TAMPERINGS", "drop_output", "flip_bytes", "truncate_graph"]


def _rehash(folder: Path) -> None:
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    graph = folder / manifest["model_file"]
    manifest["files"][manifest["model_file"]] = hashlib.sha256(graph.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def flip_bytes(folder: Path) -> None:
    """Change bytes in the middle of model.onnx; the manifest keeps the old checksum."""
    graph = folder / "model.onnx"
    data = bytearray(graph.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    graph.write_bytes(bytes(data))


def truncate_graph(folder: Path) -> None:
    """Cut model.onnx in half (an interrupted copy) and re-sign it in the manifest."""
    graph = folder / "model.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    _rehash(folder)


def drop_output(folder: Path) -> None:
    """Remove p_empty from the graph while the manifest still lists it (a lying manifest)."""
    graph = folder / "model.onnx"
    model = onnx.load_from_string(graph.read_bytes())
    kept = [o for o in model.graph.output if o.name != "p_empty"]
    assert len(kept) == len(model.graph.output) - 1
    del model.graph.output[:]
    model.graph.output.extend(kept)
    graph.write_bytes(model.SerializeToString())
    _rehash(folder)


TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (how, a phrase the refusal must contain)
    "checksum_mismatch": (flip_bytes, "sha256"),
    "truncated_onnx": (truncate_graph, "onnxruntime cannot load"),
    "manifest_lies_about_outputs": (drop_output, "lacks outputs ['p_empty']"),
}
