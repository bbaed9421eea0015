"""`just validate`'s fresh-population check: the version's graph scored on unseen users.

The figures in a manifest were measured at training time, by the code that trained the
model. This check measures again from the version folder alone: it regenerates the fresh
population (`train.fresh`: history of other seeds, users the model never saw), runs the
ONNX graph on it in onnxruntime, and holds the result to `train.targets.FRESH_TARGETS`,
the same bars as the test split. A model that only learned its training users' saved
scans fails here even when its recorded figures look fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from export.checks import Check, ValidationRun, target_checks
from export.parity import GraphError, open_session, run_graph
from server.domain.artifact import Manifest
from train.fresh import FRESH_ROWS, FRESH_SEEDS, fresh_metrics
from train.targets import FRESH_TARGETS, check_targets

__all__ = ["fresh_population_checks", "with_fresh_checks"]


def fresh_population_checks(
    folder: Path,
    manifest: Manifest,
    *,
    seeds: Sequence[int] = FRESH_SEEDS,
    rows_per_seed: int = FRESH_ROWS,
) -> list[Check]:
    """One check per fresh-population bar, measured now through the version's graph."""
    try:
        session = open_session(folder / manifest.model_file)
        metrics = fresh_metrics(lambda x: run_graph(session, x), seeds, rows_per_seed)
    except GraphError as exc:
        return [Check(name="fresh population", passed=False, detail=str(exc))]
    population = metrics["fresh_population"]
    checks = [
        Check(
            name="fresh population",
            passed=True,
            detail=f"{population['rows']:.0f} scans of {population['users']:.0f} unseen users "
            f"(seeds {', '.join(str(s) for s in seeds)}) through {manifest.model_file}",
        )
    ]
    return checks + target_checks(check_targets(metrics, FRESH_TARGETS), "measured now")


def with_fresh_checks(run: ValidationRun) -> ValidationRun:
    """`run` with the fresh-population checks appended, when its graph was found intact.

    A version that failed an integrity check (checksums, parity, ...) is not run: its
    graph is not the one the manifest describes, and the first failure already says so.
    """
    intact = all(c.passed for c in run.checks if not c.name.startswith("target:"))
    if run.folder is None or run.manifest is None or not intact:
        return run
    return msgspec.structs.replace(
        run, checks=[*run.checks, *fresh_population_checks(run.folder, run.manifest)]
    )
