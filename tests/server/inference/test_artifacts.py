"""Verifying a version on disk: everything suspect is refused with the reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from export.validate import main as validate_main
from server.errors import ArtifactError
from server.inference.artifacts import read_stamp, verify_version
from server.inference.predictor import Predictor
from server.inference.watcher import ModelWatcher
from server.monitoring.metrics import Metrics
from tests.server.conftest import Versions, make_settings
from tests.server.onnx_graphs import write_version
from tests.server.test_serve import run_launcher


def test_current_version_verifies(artifacts: Path, built_versions: Versions) -> None:
    """The version named by current passes, with its checksum and stamp."""
    verified = verify_version(artifacts)
    assert verified.manifest.version == built_versions.first
    assert verified.model_sha256 == verified.manifest.files[verified.manifest.model_file]
    assert verified.stamp == read_stamp(artifacts)


def test_missing_current_is_refused(tmp_path: Path) -> None:
    """No artifacts/current: the error says which file and how to make it."""
    with pytest.raises(ArtifactError, match=r"current: no such file.*just model") as caught:
        verify_version(tmp_path)
    assert caught.value.check == "version"


def test_an_explicit_version_naming_a_path_is_refused(artifacts: Path) -> None:
    """A version asked for by name must be a plain folder name too."""
    with pytest.raises(ArtifactError, match=r"'\.\./models' is not a folder name"):
        verify_version(artifacts, "../models")


def test_missing_version_folder_is_refused(artifacts: Path) -> None:
    """current naming a version that does not exist is refused, naming the folder."""
    (artifacts / "current").write_text("nope")
    with pytest.raises(ArtifactError, match=r"models/nope: no such folder"):
        verify_version(artifacts)


def test_corrupt_model_file_is_refused(artifacts: Path, built_versions: Versions) -> None:
    """A model file whose bytes changed fails its sha256 check."""
    model = artifacts / "models" / built_versions.first / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ArtifactError, match=r"model.onnx sha256 .* corrupt or was replaced"):
        verify_version(artifacts)


def test_feature_spec_mismatch_is_refused(tmp_path: Path) -> None:
    """A version built for another feature spec is refused, showing both digests."""
    write_version(tmp_path, "other-spec", spec_digest="f" * 64)
    with pytest.raises(ArtifactError, match=r"built for feature spec ffffffffffff.*re-export"):
        verify_version(tmp_path)


def test_manifest_that_does_not_decode_is_refused(
    artifacts: Path, built_versions: Versions
) -> None:
    """A manifest missing a field is refused with msgspec's reason."""
    path = artifacts / "models" / built_versions.first / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"not a valid manifest.*files"):
        verify_version(artifacts)


def test_manifest_naming_another_version_is_refused(
    artifacts: Path, built_versions: Versions
) -> None:
    """A folder whose manifest claims another version is refused."""
    path = artifacts / "models" / built_versions.first / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["version"] = "someone-else"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="its manifest says version 'someone-else'"):
        verify_version(artifacts)


def test_stamp_changes_when_current_changes(artifacts: Path, built_versions: Versions) -> None:
    """Pointing current at another version changes the stamp pollers compare."""
    before = read_stamp(artifacts)
    (artifacts / "current").write_text(built_versions.second)
    after = read_stamp(artifacts)
    assert before[0] == built_versions.first
    assert after[0] == built_versions.second


def _list_file(artifacts: Path, version: str, name: str, content: bytes) -> None:
    folder = artifacts / "models" / version
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(content).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_files_in_sub_folders_are_verified(artifacts: Path, built_versions: Versions) -> None:
    """A listed file in a sub-folder (the training report's plots) is checked, not refused."""
    folder = artifacts / "models" / built_versions.first
    (folder / "report").mkdir(exist_ok=True)
    (folder / "report" / "plot.png").write_bytes(b"png")
    _list_file(artifacts, built_versions.first, "report/plot.png", b"png")
    assert verify_version(artifacts).manifest.version == built_versions.first
    (folder / "report" / "plot.png").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match=r"report/plot.png sha256 "):
        verify_version(artifacts)


@pytest.mark.parametrize("name", ["../../current", "/etc/hostname", "report\\plot.png"])
def test_listed_files_outside_the_version_are_refused(
    artifacts: Path, built_versions: Versions, name: str
) -> None:
    """A manifest may not make the server read files outside the version folder."""
    _list_file(artifacts, built_versions.first, name, b"x")
    with pytest.raises(ArtifactError, match="is not a relative path inside the version folder"):
        verify_version(artifacts)


# -- one verification, three entry points ------------------------------------------------
# The same tampered version must be refused by `just validate` (export.validate), by the
# launcher before it forks (server.serve) and by a worker's hot reload (ModelWatcher), each
# naming the same step and giving the same reason.


def _rewrite_model(folder: Path, data: bytes) -> None:
    """Replace model.onnx and record its new checksum, so only the graph itself is wrong."""
    (folder / "model.onnx").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _flip_a_byte(folder: Path) -> None:
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))


def _truncate(folder: Path) -> None:
    data = (folder / "model.onnx").read_bytes()
    _rewrite_model(folder, data[: len(data) // 2])


def _drop_p_empty(folder: Path) -> None:
    """The graph no longer yields p_empty; its manifest still lists it."""
    model = onnx.load_from_string((folder / "model.onnx").read_bytes())
    kept = [o for o in model.graph.output if o.name != "p_empty"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    _rewrite_model(folder, model.SerializeToString())


def _future_schema(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["schema"] = 2
    (folder / "manifest.json").write_text(json.dumps(manifest))


TAMPERS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "checksum mismatch": (_flip_a_byte, "checksums", r"model\.onnx sha256 \w+ differs"),
    "truncated onnx": (_truncate, "onnx loads", r"onnxruntime cannot load model\.onnx"),
    "manifest lies about its outputs": (
        _drop_p_empty,
        "graph contract",
        r"graph lacks outputs \['p_empty'\] that its manifest lists",
    ),
    "manifest schema from the future": (_future_schema, "manifest", "schema 2, expected 1"),
}


def _hot_reload_refusal(
    artifacts: Path, serving: str, caplog: pytest.LogCaptureFixture
) -> tuple[str, str]:
    """(step, reason) a worker serving `serving` logs when it reloads artifacts/current."""
    settings = make_settings(artifacts)
    metrics = Metrics(settings)
    predictor = Predictor(settings, metrics)
    predictor.install(predictor.load(serving))
    watcher = ModelWatcher(predictor, artifacts, 0, metrics, logging.getLogger("test.reload"))
    with caplog.at_level(logging.ERROR, logger="test.reload"):
        assert asyncio.run(watcher.reload()) is False
        with pytest.raises(ArtifactError) as caught:
            asyncio.run(watcher.reload(raise_refused=True))
    asyncio.run(predictor.close())
    assert predictor.model.version == serving  # the old version keeps serving
    logged = [r for r in caplog.records if r.getMessage() == "model version refused"]
    assert logged[0].fields["reason"] == caught.value.message  # type: ignore[attr-defined]
    return caught.value.check, caught.value.message


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_tampered_version_is_refused_alike_by_every_entry_point(
    artifacts: Path,
    built_versions: Versions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tamper: str,
) -> None:
    """validate, the launcher and the hot reload refuse it at the same step, in the same words."""
    change, step, pattern = TAMPERS[tamper]
    change(artifacts / "models" / built_versions.second)
    (artifacts / "current").write_text(built_versions.second + "\n")

    reload_step, reason = _hot_reload_refusal(artifacts, built_versions.first, caplog)
    assert (reload_step, re.search(pattern, reason) is not None) == (step, True), reason

    assert validate_main(["--artifacts", str(artifacts), "--no-targets"]) == 1
    assert capsys.readouterr().err.endswith(f": {step} failed: {reason}\n")

    launched = run_launcher(tmp_path, artifacts)
    assert (launched.returncode, launched.stderr) == (1, f"scanopt: cannot serve: {reason}\n")
