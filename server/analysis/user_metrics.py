"""The analysis input as columns: the users' sums (server.store.records.UserMetrics) stacked
into one array per field, which every statistic reads.

The store (or a simulation) aggregates each exposed user's events since assignment into a
UserMetrics; the analysis never sees single scans. Pre-experiment fields (for CUPED) are
NaN here for users who had no history.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from server.analysis.moments import FloatArray
from server.store.records import UserMetrics

__all__ = ["UserColumns", "columns_from_users"]


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
