"""Promotions for the probation tests, and traffic whose real outcomes are known.

The parent is the committed default model. The good child serves the same graph under a
new name (a promotion that predicts exactly as well as what it replaced); the bad child
is a quick model fitted on a world where every scan returns 4x the results and takes 4x
as long, so on ordinary traffic its durations are off by tens of seconds and its
intervals miss nearly every outcome. Traffic is simulated history (`train.generate`) the
default model never saw: the scans are served, then their real outcomes posted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from export.pipeline import build_version
from server.domain.alias import alias_lock, write_alias
from server.domain.scan import UNIVERSE_SIZES, ScanRecord
from train.generate import generate_records

__all__ = [
    "Promotions",
    "build_promotions",
    "copy_promotions",
    "promote_now",
    "serve_outcomes",
    "traffic",
]

REPO = Path(__file__).resolve().parents[3]
GOOD_SUFFIX = "-goodcopy"


class Promotions(msgspec.Struct, frozen=True):
    """Where the versions were built and their names (`good` and `bad` name `parent`)."""

    root: Path
    parent: str
    good: str
    bad: str


def _shifted(records: Sequence[ScanRecord]) -> list[ScanRecord]:
    return [
        msgspec.structs.replace(
            r,
            result_count=min(4 * r.result_count, UNIVERSE_SIZES[r.universe]),
            duration_s=min(4 * r.duration_s, 3600.0),
            expected_result_count=None,
            expected_duration_s=None,
        )
        for r in records
    ]


def build_promotions(root: Path) -> Promotions:
    """The committed default model, its good copy and a bad quick model, under `root`."""
    source = REPO / "artifacts"
    parent = (source / "current").read_text().strip()
    shutil.copytree(source / "models" / parent, root / "models" / parent)
    (root / "current").write_text(parent + "\n")
    good = parent.split("-", 1)[0] + GOOD_SUFFIX
    shutil.copytree(root / "models" / parent, root / "models" / good)
    manifest_path = root / "models" / good / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(version=good, parent_version=parent)
    manifest_path.write_text(json.dumps(manifest))
    # The export names the version `current` names (the default model) as its parent.
    bad = build_version(_shifted(generate_records(1500, seed=0)), root, seed=2, quick=True).name
    (root / "current").write_text(parent + "\n")
    return Promotions(root=root, parent=parent, good=good, bad=bad)


def copy_promotions(built: Promotions, dest: Path) -> Path:
    """A private copy of the built versions; `current` names the parent."""
    shutil.copytree(built.root, dest)
    return dest


def promote_now(artifacts: Path, version: str) -> None:
    """Move the alias to `version` as `just promote` does (validation aside)."""
    with alias_lock(artifacts):
        write_alias(artifacts, version, kind="promote")


def traffic(n: int, seed: int, *, hard: bool = False) -> list[ScanRecord]:
    """`n` scans of simulated history with their real outcomes; `hard`: outcomes of the
    4x world, a stretch of traffic on which the default model trips every absolute bar."""
    records = generate_records(n, seed=seed)
    return _shifted(records) if hard else records


class _Response(Protocol):
    status_code: int

    def json(self) -> Any: ...


class _Http(Protocol):
    def post(self, url: str, *, json: Any) -> _Response: ...


def serve_outcomes(
    http: _Http, records: Sequence[ScanRecord], now: str, *, ids: str = "e"
) -> list[str]:
    """Serve every scan (batches of 500), then post its real outcome (event ids `ids`-N);
    the version that answered each batch, in order."""
    versions = []
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        scans = [msgspec.to_builtins(r.to_scan()) for r in chunk]
        answer = http.post("/v1/predict/batch", json={"scans": scans})
        assert answer.status_code == 200, answer.json()
        versions.append(answer.json()["model_version"])
        for i, (record, prediction) in enumerate(
            zip(chunk, answer.json()["predictions"], strict=True)
        ):
            event = {
                "type": "scan_completed",
                "event_id": f"{ids}-{start + i}",
                "user_id": record.user_id,
                "session_id": record.session_id,
                "timestamp": now,
                "prediction_id": prediction["prediction_id"],
                "arm": prediction["arm"],
                "result_count": record.result_count,
                "duration_s": record.duration_s,
            }
            posted = http.post("/v1/events", json=event)
            assert posted.status_code == 201, posted.json()
    return versions
