"""`just validate` on a version from disk: ready when intact, one-line errors when not."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx
import pytest

from export.checks import validate_version
from export.validate import main
from server.domain.artifact import CURRENT_FILE, MANIFEST_FILE, MODEL_FILE


@pytest.fixture
def artifacts(built_artifacts: Path, tmp_path: Path) -> Path:
    """A private copy of the session's artifacts, free to corrupt."""
    return Path(shutil.copytree(built_artifacts, tmp_path / "artifacts"))


def _folder(artifacts: Path) -> Path:
    return artifacts / "models" / (artifacts / CURRENT_FILE).read_text().strip()


def _edit_manifest(artifacts: Path, **changes: object) -> None:
    path = _folder(artifacts) / MANIFEST_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _run(artifacts: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--artifacts", str(artifacts), "--no-targets", *extra])
    return code, capsys.readouterr().err


def test_an_intact_version_is_ready(artifacts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A freshly exported version passes every integrity check and predicts sample scans."""
    code, err = _run(artifacts, capsys)
    assert (code, err) == (0, "")


def test_targets_are_checked_unless_switched_off(artifacts: Path) -> None:
    """A tiny model misses the default bars (parity rows at least), so validate says not ready."""
    run = validate_version(artifacts, targets=True)
    failed = {c.name for c in run.checks if not c.passed}
    assert "target: parity rows" in failed
    assert not run.ready
    assert main(["--artifacts", str(artifacts)]) == 1


def test_a_flipped_byte_in_the_model_fails_its_checksum(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One changed byte in model.onnx: exit 1 and a one-line error naming the file."""
    model = _folder(artifacts) / MODEL_FILE
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "checksums failed" in err
    assert f"{model} sha256 " in err
    assert "differs from the manifest's" in err


def test_a_corrupt_onnx_with_a_matching_checksum_fails_to_load(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Garbage that matches its (edited) checksum still fails: onnxruntime cannot load it."""
    model = _folder(artifacts) / MODEL_FILE
    model.write_bytes(b"not an onnx model")
    manifest = json.loads((_folder(artifacts) / MANIFEST_FILE).read_text())
    manifest["files"][MODEL_FILE] = hashlib.sha256(b"not an onnx model").hexdigest()
    (_folder(artifacts) / MANIFEST_FILE).write_text(json.dumps(manifest))
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "onnx loads failed" in err


def test_a_graph_with_other_outputs_breaks_the_contract(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A loadable graph whose outputs differ from MODEL_OUTPUTS is refused."""
    folder = _folder(artifacts)
    model = onnx.load(folder / MODEL_FILE)
    model.graph.output[0].name = "something_else"
    naming = next(n for n in model.graph.node if n.output[0] == "result_count")
    naming.output[0] = "something_else"
    data = model.SerializeToString()
    (folder / MODEL_FILE).write_bytes(data)
    _edit_manifest(
        artifacts,
        files={
            **json.loads((folder / MANIFEST_FILE).read_text())["files"],
            MODEL_FILE: hashlib.sha256(data).hexdigest(),
        },
    )
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert "graph contract failed" in err


def test_a_changed_feature_spec_is_refused(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest trained on other features (renamed column) does not match the code's spec."""
    spec = json.loads((_folder(artifacts) / MANIFEST_FILE).read_text())["feature_spec"]
    spec[3]["name"] = "universe_is_ftse100"
    _edit_manifest(artifacts, feature_spec=spec)
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert "feature spec failed" in err


def test_a_manifest_with_other_outputs_is_refused(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Output names in the manifest must be MODEL_OUTPUTS, in order."""
    _edit_manifest(artifacts, output_names=["result_count"])
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert "input/outputs failed" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "malformed"),
        (b'{"schema": 1}', "missing required field"),
        (b"", "truncated"),
    ],
)
def test_an_unreadable_manifest_is_one_line(
    artifacts: Path, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    """Broken JSON or a manifest missing fields: one line naming manifest.json."""
    (_folder(artifacts) / MANIFEST_FILE).write_bytes(content)
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert MANIFEST_FILE in err
    assert expected in err


def test_missing_current_is_one_line_naming_it(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No artifacts/current: exit 1, one line with its path and what it should hold."""
    (artifacts / CURRENT_FILE).unlink()
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert err == (
        f"error: {artifacts / CURRENT_FILE}: no such file: expected the name of the version "
        "in service (run `just model`)\n"
    )


def test_current_naming_a_missing_folder_is_one_line(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pointer to a version that is not there is named with the folder it expected."""
    (artifacts / CURRENT_FILE).write_text("20990101T000000Z-deadbeef\n")
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert "20990101T000000Z-deadbeef: no such folder" in err


def test_a_missing_parity_fixture_is_caught(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting a listed file fails the checksum check by name."""
    (_folder(artifacts) / "parity.npz").unlink()
    code, err = _run(artifacts, capsys)
    assert code == 1
    assert "parity.npz is missing" in err
