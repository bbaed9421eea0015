"""The serving clock bucket: the model sees the time of day to the minute.

A scan without a timestamp is about to run, so the server supplies "now". Encoded to the
second (server.domain.features, as training does), that clock would give the same scan
a new feature row, and so a new cache key, every second: the prediction cache could never
hit. Serving therefore floors `minutes_since_open` to the whole minute, for a supplied
clock and an explicit timestamp alike, so the same scan within the same minute gets the
same row, the same answer and a cache hit.

Flooring that one column is exactly flooring the instant to its minute (New York's
offset from UTC is whole minutes, and `weekday` and `market_open` change only on whole
minutes), so the encoding and the models stay as trained: no re-export, and a model is
given at most 59 seconds' difference in the time of day. Raw V2 tensors are the caller's
own features and are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from server.domain.features import FEATURE_NAMES, encode_row, encode_scans
from server.domain.scan import Scan

__all__ = ["CLOCK_COLUMN", "served_matrix", "served_row"]

CLOCK_COLUMN: Final = FEATURE_NAMES.index("minutes_since_open")


def served_row(scan: Scan, now: datetime | None = None) -> npt.NDArray[np.float32]:
    """One scan's float32 feature row as served: the clock floored to the minute."""
    row = np.asarray(encode_row(scan, now), dtype=np.float32)
    row[CLOCK_COLUMN] = np.floor(row[CLOCK_COLUMN])
    return row


def served_matrix(scans: Iterable[Scan], now: datetime | None = None) -> npt.NDArray[np.float32]:
    """Many scans' feature matrix as served (`served_row` for each)."""
    features = encode_scans(scans, now)
    features[:, CLOCK_COLUMN] = np.floor(features[:, CLOCK_COLUMN])
    return features
