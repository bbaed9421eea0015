"""Per-worker drift counting: served rows in, mergeable per-minute bin counts out.

The predictor (and the recommendation, for the user's own scan but not the neighbours it
scores) feeds it, because that is where the encoded feature row already exists: the data
plane's observers see the scan, and re-encoding it would cost more than the counting.
The request path only appends: `observe_row` keeps a reference to the feature row the
predictor already built and the output values it already has (a list append, well under
a microsecond), so monitoring adds no numpy call per request. `drain` (called off the
request path, every few seconds, by server.monitoring.monitor) stacks what was kept and
bins every column at once into the manifest's reference bins, giving one `DriftCount` per
(version, column, bin) for the current minute. Counts from every worker and replica add
up in the store. Above `capacity` rows between drains, rows are not kept (counted in
`skipped`): a window then holds a sample, which the thresholds allow for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from server.domain.artifact import MODEL_OUTPUTS
from server.domain.features import FEATURE_NAMES
from server.monitoring.drift import Reference, bin_values
from server.store.monitoring import DriftCount

__all__ = ["DriftCounter"]

_DEFAULT_CAPACITY: Final = 200_000
# The columns of a kept row: the features in model order, then the outputs.
_COLUMN_INDEX: Final = {name: i for i, name in enumerate((*FEATURE_NAMES, *MODEL_OUTPUTS))}


class DriftCounter:
    """Rows served since the last drain, per model version."""

    def __init__(self, capacity: int = _DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        # version -> (feature rows, output values), kept apart so drain needs no regrouping
        self._rows: dict[str, tuple[list[npt.NDArray[np.float32]], list[Sequence[float]]]] = {}
        self._batches: list[tuple[str, npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
        self._kept = 0
        self.skipped = 0

    @property
    def pending(self) -> int:
        """Rows kept since the last drain."""
        return self._kept

    def versions(self) -> set[str]:
        """Model versions with rows kept since the last drain."""
        return set(self._rows) | {v for v, _, _ in self._batches}

    def observe_row(
        self, version: str, row: npt.NDArray[np.float32], values: Sequence[float]
    ) -> None:
        """One served row: its features and its output values (MODEL_OUTPUTS order)."""
        if self._kept >= self._capacity:
            self.skipped += 1
            return
        self._kept += 1
        kept = self._rows.get(version)
        if kept is None:
            kept = self._rows[version] = ([], [])
        kept[0].append(row)
        kept[1].append(values)

    def observe_batch(
        self,
        version: str,
        features: npt.NDArray[np.float32],
        outputs: Sequence[npt.NDArray[np.float32]],
    ) -> None:
        """Many served rows of one run: the feature matrix and one array per output."""
        n = len(features)
        if self._kept + n > self._capacity:
            self.skipped += n
            return
        self._kept += n
        self._batches.append((version, features, np.stack(outputs, axis=1)))

    def drain(self, references: dict[str, Reference], at: datetime) -> list[DriftCount]:
        """Bin everything kept into its version's reference bins; versions without a
        reference are dropped. The counts are stamped with `at`'s minute."""
        rows, self._rows = self._rows, {}
        batches, self._batches = self._batches, []
        self._kept = 0
        grouped: dict[str, list[npt.NDArray[np.float32]]] = {}
        for version, (features, outputs) in rows.items():
            # Two numpy calls for all single rows: per-row concatenation would cost more
            # than the binning itself.
            grouped.setdefault(version, []).append(
                np.hstack([np.array(features), np.asarray(outputs, dtype=np.float32)])
            )
        for version, matrix, outputs_matrix in batches:
            grouped.setdefault(version, []).append(np.hstack([matrix, outputs_matrix]))
        counts: list[DriftCount] = []
        for version, parts in grouped.items():
            reference = references.get(version)
            if reference is None:
                continue
            matrix = np.vstack(parts)
            for column in reference.columns:
                index = _COLUMN_INDEX.get(column.name)
                if index is None:
                    continue
                tally = np.bincount(bin_values(column, matrix[:, index]), minlength=column.n_bins)
                counts.extend(
                    DriftCount(
                        bucket_start=at, version=version, feature=column.name, bin=b, n=int(n)
                    )
                    for b, n in enumerate(tally)
                    if n
                )
        return counts
