"""The analysis input: one row of sums per user in the experiment.

The store (or a simulation) aggregates each exposed user's events since assignment into a
UserMetrics; the analysis never sees single scans. Sums and counts, not averages, so that
every metric can be formed as a per-user mean or as a ratio of sums, whichever its test
needs. Pre-experiment fields describe the same user before assignment (for CUPED) and are
None for users who had no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
import numpy as np

from server.analysis.moments import FloatArray
from server.domain.scan import WireStruct

__all__ = ["UserColumns", "UserMetrics", "columns_from_users"]

Count = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0)]


class UserMetrics(WireStruct, frozen=True):
    """One user's experiment-period sums (and pre-period sums when they exist)."""

    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    arm: Annotated[str, msgspec.Meta(min_length=1)]
    n_sessions: Count
    n_scans: Count
    n_empty_scans: Count = 0
    total_scan_time_s: Seconds = 0.0
    # Sessions that reached a non-empty result, and the seconds from session start to it.
    n_time_to_first_result: Count = 0
    time_to_first_result_s_sum: Seconds = 0.0
    n_scans_in_desired_range: Count = 0
    # |predicted - actual| result count, over the scans that had a prediction logged.
    n_predictions: Count = 0
    prediction_abs_error_sum: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    # Ratings from 1 to 5.
    n_satisfaction: Count = 0
    satisfaction_sum: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    returned: bool = False  # came back on a later day than the first exposure
    adopted_suggestion: bool = False  # accepted at least one suggested parameter set
    pre_n_sessions: Count | None = None
    pre_n_scans: Count | None = None
    pre_n_empty_scans: Count | None = None
    pre_total_scan_time_s: Seconds | None = None

    def __post_init__(self) -> None:
        for part in ("n_empty_scans", "n_scans_in_desired_range"):
            if getattr(self, part) > self.n_scans:
                raise ValueError(
                    f"{part} ({getattr(self, part)}) cannot exceed n_scans ({self.n_scans}) "
                    f"for user {self.user_id!r}"
                )
        if self.n_time_to_first_result > self.n_sessions:
            raise ValueError(
                f"n_time_to_first_result ({self.n_time_to_first_result}) cannot exceed "
                f"n_sessions ({self.n_sessions}) for user {self.user_id!r}"
            )
        if (
            self.pre_n_scans is not None
            and self.pre_n_empty_scans is not None
            and self.pre_n_empty_scans > self.pre_n_scans
        ):
            raise ValueError(
                f"pre_n_empty_scans ({self.pre_n_empty_scans}) cannot exceed pre_n_scans "
                f"({self.pre_n_scans}) for user {self.user_id!r}"
            )


class UserColumns(msgspec.Struct, frozen=True, kw_only=True):
    """The numeric UserMetrics fields as arrays, one entry per user; NaN marks a missing pre field.

    The A/A validation builds this directly from simulated arrays, skipping the per-user
    structs, so a fast path and the report share every line after this point.
    """

    n_sessions: FloatArray
    n_scans: FloatArray
    n_empty_scans: FloatArray
    total_scan_time_s: FloatArray
    n_time_to_first_result: FloatArray
    time_to_first_result_s_sum: FloatArray
    n_scans_in_desired_range: FloatArray
    n_predictions: FloatArray
    prediction_abs_error_sum: FloatArray
    n_satisfaction: FloatArray
    satisfaction_sum: FloatArray
    returned: FloatArray
    adopted_suggestion: FloatArray
    pre_n_sessions: FloatArray
    pre_n_scans: FloatArray
    pre_n_empty_scans: FloatArray
    pre_total_scan_time_s: FloatArray

    def column(self, name: str) -> FloatArray:
        """One column by field name, naming the valid ones when the name is wrong."""
        if name not in self.__struct_fields__:
            raise KeyError(f"no user column {name!r}; expected one of {self.__struct_fields__}")
        value: FloatArray = getattr(self, name)
        return value

    def __len__(self) -> int:
        return int(self.n_scans.shape[0])


def columns_from_users(users: Sequence[UserMetrics]) -> UserColumns:
    """Stack the users' numeric fields into arrays (None becomes NaN)."""
    arrays: dict[str, FloatArray] = {}
    for name in UserColumns.__struct_fields__:
        values = [getattr(u, name) for u in users]
        arrays[name] = np.array(
            [np.nan if v is None else float(v) for v in values], dtype=np.float64
        )
    return UserColumns(**arrays)
