"""The fresh-population check: a model scored on users from a world it never saw.

A fresh population is history generated exactly as the training data is (`just generate`),
but with other seeds: other users with other saved scans, another year of market regime.
Its metrics go next to the test split's, under groups named with
`train.targets.FRESH_PREFIX`, and meet the same bars. `just train` scores the fitted
models on it through scikit-learn; `just validate` regenerates it and scores the ONNX
graph, so the check needs nothing but the version folder.

The seeds are far from the default history's (7) and from the seeds tests draw with;
training on one of them would make the check a test on training data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from train.data import Dataset, dataset_from_records
from train.evaluate import population_metrics
from train.generate import generate_records
from train.targets import FRESH_PREFIX

__all__ = ["FRESH_ROWS", "FRESH_SEEDS", "fresh_metrics", "fresh_population"]

FRESH_SEEDS: Final = (90_001, 90_002, 90_003)
# Per seed: as many scans as a month of a busy scanner, enough for tercile coverage
# (2,000 rows a tercile over three seeds) to be known within about +-0.7 points.
FRESH_ROWS: Final = 6_000

Outputs = Mapping[str, npt.NDArray[np.floating]]


def fresh_population(
    seeds: Sequence[int] = FRESH_SEEDS, rows_per_seed: int = FRESH_ROWS
) -> Dataset:
    """The histories of every seed, one after the other; user ids are kept apart by seed."""
    parts = []
    for seed in seeds:
        data = dataset_from_records(generate_records(rows_per_seed, seed))
        parts.append(
            Dataset(
                features=data.features,
                users=np.char.add(f"seed{seed}-", data.users),
                result_count=data.result_count,
                duration_s=data.duration_s,
                expected_result_count=data.expected_result_count,
                expected_duration_s=data.expected_duration_s,
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    return out


def fresh_metrics(
    predict: Callable[[npt.NDArray[np.float32]], Outputs],
    seeds: Sequence[int] = FRESH_SEEDS,
    rows_per_seed: int = FRESH_ROWS,
) -> dict[str, dict[str, float]]:
    """Metrics of `predict` on a fresh population, groups prefixed, plus what it was.

    `predict` maps a float32 feature matrix to every model output (scikit-learn and numpy
    in training, the ONNX graph in validation).
    """
    population = fresh_population(seeds, rows_per_seed)
    outputs = {k: np.asarray(v, dtype=np.float64) for k, v in predict(population.features).items()}
    metrics = {
        f"{FRESH_PREFIX}{group}": values
        for group, values in population_metrics(outputs, population).items()
    }
    metrics[f"{FRESH_PREFIX}population"] = {
        "rows": float(len(population)),
        "users": float(np.unique(population.users).size),
        **{f"seed_{i + 1}": float(s) for i, s in enumerate(seeds)},
    }
    return metrics
