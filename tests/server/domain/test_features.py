"""The feature encoding shared by training and serving."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import numpy as np

from server.domain.features import (
    FEATURE_NAMES,
    FEATURE_SPEC,
    N_FEATURES,
    encode_row,
    encode_scans,
    feature_spec_digest,
    session_clock,
)
from server.domain.scan import Scan
from tests.server.domain.test_scan import GOOD

SCAN = msgspec.convert(GOOD, Scan, strict=False)


def test_row_has_one_value_per_spec_entry_in_order() -> None:
    """The row is as long as the spec and each named column holds its value."""
    row = dict(zip(FEATURE_NAMES, encode_row(SCAN), strict=True))
    assert len(FEATURE_SPEC) == N_FEATURES
    assert row["universe_size"] == 503
    assert row["universe_is_sp500"] == 1
    assert row["universe_is_nasdaq100"] == 0
    assert row["strategy_is_momentum"] == 1
    assert row["strategy_is_gap"] == 0
    assert row["timeframe_minutes"] == 5
    assert row["rsi_width"] == 40
    assert row["symbol_bars"] == 503 * 50


def test_values_stay_inside_the_declared_ranges() -> None:
    """Every encoded value lies within its spec's min and max."""
    for spec, value in zip(FEATURE_SPEC, encode_row(SCAN), strict=True):
        assert spec.min is not None
        assert spec.max is not None
        assert spec.min <= value <= spec.max, spec.name


def test_session_clock_follows_new_york_time_across_dst() -> None:
    """14:30 UTC is the open in summer (EDT) and an hour before it in winter (EST)."""
    assert session_clock(datetime(2026, 7, 1, 13, 30, tzinfo=UTC)) == (0.0, 2.0, 1.0)
    minutes, weekday, is_open = session_clock(datetime(2026, 1, 7, 13, 30, tzinfo=UTC))
    assert (minutes, weekday, is_open) == (-60.0, 2.0, 0.0)
    # Saturday at noon New York: closed.
    assert session_clock(datetime(2026, 11, 28, 17, 0, tzinfo=UTC))[2] == 0.0


def test_missing_timestamp_uses_the_given_now() -> None:
    """A scan without timestamp is encoded at `now`."""
    undated = msgspec.structs.replace(SCAN, timestamp=None)
    assert encode_row(undated, now=SCAN.timestamp) == encode_row(SCAN)


def test_matrix_is_float32_and_matches_rows() -> None:
    """encode_scans stacks encode_row into a float32 matrix; no scans gives (0, n)."""
    matrix = encode_scans([SCAN, SCAN])
    assert matrix.dtype == np.float32
    assert matrix.shape == (2, N_FEATURES)
    np.testing.assert_array_equal(matrix[0], np.asarray(encode_row(SCAN), dtype=np.float32))
    assert encode_scans([]).shape == (0, N_FEATURES)


def test_spec_digest_changes_when_the_spec_changes() -> None:
    """Any change to a spec entry changes the digest the server checks."""
    changed = list(FEATURE_SPEC)
    changed[0] = msgspec.structs.replace(changed[0], max=9.0)
    assert feature_spec_digest(changed) != feature_spec_digest()
    assert feature_spec_digest(list(FEATURE_SPEC)) == feature_spec_digest()
