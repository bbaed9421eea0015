"""`just retrain --recalibrate-only`: new widenings and p_empty scaling, the same trees."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import onnx
import pytest

from bench.simulation.shifts import SHIFTS
from export.graph import tree_digest
from export.validate import main as validate_main
from server.domain.scan import ScanRecord
from tests.train.conftest import OUTCOMES, World, recent, write_outcomes
from train.compare import COVERAGE_BAND, RECALIBRATION_RULE
from train.generate import generate_records
from train.models import PlattScaling
from train.recalibrate import fit_platt, recalibrate
from train.retrain import RetrainError, main

MIN_HINT = "expected at least 200"


def _current(world: World) -> str:
    return (world.artifacts / "current").read_text().strip()


def _slow_provider(n: int = OUTCOMES) -> list[ScanRecord]:
    """Outcomes in the world of `just simulate --shift slow_provider`: every scan takes
    2.5x as long (the shift's own function), the results as before."""
    shift = SHIFTS["slow_provider"]
    return [
        msgspec.structs.replace(r, duration_s=shift.duration(r.duration_s))
        for r in recent(generate_records(n, seed=5), 1.0)
    ]


def _args(world: World, *extra: str) -> list[str]:
    return [
        "--recalibrate-only",
        "--store",
        world.store,
        "--artifacts",
        str(world.artifacts),
        "--out",
        str(world.out),
        *extra,
    ]


def _graph(world: World, version: str) -> onnx.ModelProto:
    return onnx.load(str(world.artifacts / "models" / version / "model.onnx"))


def test_recalibration_restores_coverage_with_the_same_trees(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the provider slows down (durations 2.5x), the champion's duration intervals
    cover far less than 0.85 of the holdout; the recalibrated version covers 0.85-0.95
    with the champion's tree nodes byte for byte, identical point outputs, is promoted by
    the recalibration rule, records its lineage and passes `just validate`'s integrity."""
    write_outcomes(world.store, _slow_provider())
    assert main(_args(world)) == 0
    out = capsys.readouterr().out
    assert f"rule: {RECALIBRATION_RULE}" in " ".join(out.split())
    version = _current(world)
    assert version != world.champion
    manifest = json.loads((world.artifacts / "models" / version / "manifest.json").read_text())
    comparison = manifest["comparison"]
    checks = comparison["checks"]
    low, high = COVERAGE_BAND
    assert checks["champion_duration_s_coverage_90"] < low
    assert low <= checks["duration_s_coverage_90"] <= high
    assert low <= checks["result_count_coverage_90"] <= high
    assert checks["point_max_abs_change"] == 0.0
    assert comparison["promote"]
    assert comparison["rule"] == RECALIBRATION_RULE
    by_metric = {d["metric"]: d for d in comparison["differences"]}
    assert by_metric["duration_s coverage_90"]["verdict"] == "better"
    for target in ("result_count", "duration_s"):
        assert by_metric[f"{target} MAE"]["difference"] == 0.0
    assert manifest["parent_version"] == world.champion
    window = manifest["data_window"]
    used = window["rows"] + window["holdout_rows"]
    unused = window["unused_holdout_users_before"] + window["unused_train_users_after"]
    assert used + unused == OUTCOMES
    assert window["holdout_from"] == "2025-06-04T00:00:00Z"
    assert window["base_rows"] == 0
    champion, recalibrated = _graph(world, world.champion), _graph(world, version)
    assert manifest["recalibration"]["point_models_sha256"] == tree_digest(champion)
    assert tree_digest(recalibrated) == tree_digest(champion)
    trees = {
        n.SerializeToString(deterministic=True)
        for n in recalibrated.graph.node
        if n.op_type.startswith("TreeEnsemble")
    }
    champion_trees = [n for n in champion.graph.node if n.op_type.startswith("TreeEnsemble")]
    assert len(champion_trees) == 7
    assert all(n.SerializeToString(deterministic=True) in trees for n in champion_trees)
    assert (
        manifest["conformal"]
        != json.loads((world.artifacts / "models" / world.champion / "manifest.json").read_text())[
            "conformal"
        ]
    )
    assert (world.out / version / "report.md").is_file()
    args = ["--artifacts", str(world.artifacts), "--version", version, "--no-targets"]
    assert validate_main(args) == 0


def test_a_recalibration_that_fixes_nothing_is_refused(world: World) -> None:
    """Recalibrating the recalibrated version on the same outcomes starts again from the
    same raw outputs (the maps never stack) and finds the same widenings: nothing moves
    toward 0.90, so the second one is written but not promoted."""
    write_outcomes(world.store, _slow_provider())
    first = recalibrate(world.store, world.artifacts, world.out)
    assert first.promoted
    second = recalibrate(world.store, world.artifacts, world.out)
    assert not second.promoted
    assert _current(world) == first.challenger
    assert second.folder.is_dir()
    assert "no coverage moved closer to 0.9" in second.comparison.reasons[-1]
    manifest = json.loads((second.folder / "manifest.json").read_text())
    assert manifest["parent_version"] == first.challenger
    assert (
        manifest["conformal"]
        == json.loads((first.folder / "manifest.json").read_text())["conformal"]
    )


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        (
            0,
            f"no labelled outcomes (scan_completed events joined to logged predictions): "
            f"{MIN_HINT}",
        ),
        (150, f"150 labelled outcomes: {MIN_HINT} (50 more)"),
    ],
)
def test_too_few_outcomes_is_one_line(
    world: World, capsys: pytest.CaptureFixture[str], outcomes: int, message: str
) -> None:
    """No or too few outcomes: one line saying how many are needed, exit 1, nothing written."""
    records = _slow_provider()[:outcomes]
    write_outcomes(world.store, records)
    assert main(_args(world)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert _current(world) == world.champion
    assert [p.name for p in (world.artifacts / "models").iterdir()] == [world.champion]


def test_an_unreadable_store_is_one_line(
    tmp_path: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store file that is not a database: one line naming it, exit 1, current untouched."""
    bad = tmp_path / "not-a.db"
    bad.write_text("not sqlite")
    args = _args(world)
    args[args.index("--store") + 1] = f"sqlite:///{bad}"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not-a.db" in err
    assert _current(world) == world.champion


def test_platt_scaling_fits_a_miscalibrated_probability() -> None:
    """Outcomes drawn at sigmoid(2 logit(p) - 1): the fit recovers (2, -1) roughly; one
    class only gives the identity."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 20_000)
    truth = PlattScaling(a=2.0, b=-1.0).apply(p)
    fitted = fit_platt(p, rng.random(p.size) < truth)
    assert fitted.a == pytest.approx(2.0, abs=0.15)
    assert fitted.b == pytest.approx(-1.0, abs=0.1)
    assert fit_platt(p, np.zeros(p.size, dtype=bool)) == PlattScaling(a=1.0, b=0.0)


def test_a_missing_champion_is_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """No artifacts/current: nothing to recalibrate, exit 1."""
    write_outcomes(world.store, _slow_provider())
    (world.artifacts / "current").unlink()
    assert main(_args(world)) == 1
    assert "no champion to recalibrate" in capsys.readouterr().err
    with pytest.raises(RetrainError, match="no champion"):
        recalibrate(world.store, world.artifacts, world.out)
