"""The scan schema: what it accepts, what it refuses and how it says so."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from server.domain import scan as scan_module
from server.domain.scan import (
    DECODING,
    EARLIEST_TIMESTAMP,
    UNIVERSE_SIZES,
    Scan,
    ScanRecord,
    Universe,
    timestamp_problem,
)
from server.errors import InputError
from server.schemas import decode_body

GOOD: dict[str, Any] = {
    "user_id": "u1",
    "session_id": "s1",
    "universe": "sp500",
    "strategy": "momentum",
    "timeframe": "5m",
    "lookback_bars": 50,
    "min_price": 5.0,
    "max_price": 100.0,
    "min_avg_volume": 500_000.0,
    "min_market_cap_musd": 300.0,
    "min_abs_change_pct": 2.0,
    "min_relative_volume": 1.5,
    "rsi_min": 30.0,
    "rsi_max": 70.0,
    "n_extra_filters": 1,
    "volatility_index": 18.0,
    "timestamp": "2026-11-25T15:00:00Z",
}


def decode(body: dict[str, Any], typ: type = Scan) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body), type=typ)


def test_good_scan_decodes_with_enums_and_aware_timestamp() -> None:
    """A well-formed scan decodes into enums and a timezone-aware timestamp."""
    scan = decode(GOOD)
    assert scan.universe is Universe.SP500
    assert scan.timestamp.utcoffset() is not None


def test_timestamp_is_optional_for_a_scan_about_to_run() -> None:
    """A scan without a timestamp is valid: it means now."""
    body = {k: v for k, v in GOOD.items() if k != "timestamp"}
    assert decode(body).timestamp is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_price": 200.0}, "min_price (200) must be below max_price (100)"),
        ({"rsi_min": 70.0}, "rsi_min (70) must be below rsi_max (70)"),
        ({"universe": "ftse"}, "Invalid enum value 'ftse' - at `$.universe`"),
        ({"lookback_bars": 5}, "Expected `int` >= 10 - at `$.lookback_bars`"),
        ({"volatility_index": 95.0}, "Expected `float` <= 90.0 - at `$.volatility_index`"),
        ({"user_id": ""}, "Expected `str` of length >= 1 - at `$.user_id`"),
        ({"extra": 1}, "Object contains unknown field `extra`"),
        ({"timestamp": "2026-11-25T15:00:00"}, "Expected `datetime` with a timezone component"),
        ({"min_price": "cheap"}, "Expected `float`, got `str` - at `$.min_price`"),
    ],
)
def test_bad_fields_are_refused_with_the_field_and_expectation(
    change: dict[str, Any], message: str
) -> None:
    """Each schema violation names the field and what was expected."""
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        decode(GOOD | change)


def test_missing_field_is_named() -> None:
    """A missing required field is named in the error."""
    body = {k: v for k, v in GOOD.items() if k != "strategy"}
    with pytest.raises(msgspec.ValidationError, match="missing required field `strategy`"):
        decode(body)


def test_infinity_is_refused() -> None:
    """A number that overflows to infinity is out of range, not accepted."""
    raw = msgspec.json.encode(GOOD).replace(b'"min_avg_volume":500000.0', b'"min_avg_volume":1e400')
    with pytest.raises(msgspec.ValidationError, match="min_avg_volume"):
        msgspec.json.decode(raw, type=Scan)


def test_record_result_count_cannot_exceed_universe() -> None:
    """History whose result count exceeds the universe size is refused."""
    size = UNIVERSE_SIZES[Universe.SP500]
    with pytest.raises(
        msgspec.ValidationError, match=f"exceeds the sp500 universe size \\({size}\\)"
    ):
        decode(GOOD | {"result_count": size + 1, "duration_s": 3.0}, ScanRecord)


def test_record_requires_timestamp_and_strips_to_scan() -> None:
    """A history record needs its timestamp; to_scan() gives back the scan alone."""
    body = {k: v for k, v in GOOD.items() if k != "timestamp"}
    with pytest.raises(msgspec.ValidationError, match="missing required field `timestamp`"):
        decode(body | {"result_count": 3, "duration_s": 3.0}, ScanRecord)
    record = decode(GOOD | {"result_count": 3, "duration_s": 3.0}, ScanRecord)
    assert record.to_scan() == decode(GOOD)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("lookback_bars", 5, "Expected `int` >= 10 - at `$.lookback_bars`"),
        ("min_price", float("nan"), "Expected `float` >= 0.0 - at `$.min_price`"),
        ("user_id", "", "Expected `str` of length >= 1 - at `$.user_id`"),
    ],
)
def test_a_scan_built_in_python_is_checked_as_a_body_is(
    field: str, value: Any, expected: str
) -> None:
    """Scan(...) applies the same annotated rules as decoding, with the decoder's message."""
    fields = {f: getattr(decode(GOOD), f) for f in Scan.__struct_fields__}
    with pytest.raises(msgspec.ValidationError) as built:
        Scan(**{**fields, field: value})
    assert str(built.value) == expected
    if value == value:  # NaN is not JSON: the decoder never sees one
        with pytest.raises(msgspec.ValidationError) as decoded:
            decode({**GOOD, field: value})
        assert str(decoded.value) == str(built.value)


def test_a_body_is_checked_once_and_a_scan_built_meanwhile_still_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """decode_body skips the repeated check; nothing else does, on any thread, after it."""
    calls: list[str] = []
    real = scan_module.check_fields

    def counted(struct: msgspec.Struct) -> None:
        calls.append(threading.current_thread().name)
        real(struct)

    monkeypatch.setattr(scan_module, "check_fields", counted)
    decoder = msgspec.json.Decoder(Scan)
    decoded = decode_body(decoder, msgspec.json.encode(GOOD))
    assert calls == []  # the decoder applied every annotation itself
    with pytest.raises(InputError, match="lookback_bars"):
        decode_body(decoder, msgspec.json.encode({**GOOD, "lookback_bars": 5}))
    assert not DECODING.active  # reset after a refused body too

    fields = {f: getattr(decoded, f) for f in Scan.__struct_fields__}
    Scan(**fields)
    assert calls == ["MainThread"]

    # Another thread builds scans while this one decodes: its scans are still checked.
    built: list[BaseException | None] = []

    def build_bad() -> None:
        try:
            Scan(**{**fields, "lookback_bars": 5})
            built.append(None)
        except msgspec.ValidationError as exc:
            built.append(exc)

    DECODING.active = True
    try:
        thread = threading.Thread(target=build_bad, name="builder")
        thread.start()
        thread.join()
    finally:
        DECODING.active = False
    assert isinstance(built[0], msgspec.ValidationError)
    assert calls[-1] == "builder"


@pytest.mark.parametrize("stamp", ["1900-01-01T00:00:00Z", "9999-12-31T00:00:00Z"])
def test_timestamps_no_scanner_can_send_are_refused_with_the_range(stamp: str) -> None:
    """1900 and 9999 are refused; the message gives the accepted range."""
    with pytest.raises(msgspec.ValidationError) as caught:
        decode({**GOOD, "timestamp": stamp})
    message = str(caught.value)
    assert message.startswith("timestamp (")
    assert "expected from 2000-01-01T00:00:00+00:00 to 1 h after the server's clock" in message


def test_timestamp_problem_allows_the_past_and_an_hour_of_skew() -> None:
    """2000-01-01 and now + 59 min pass; now + 61 min does not."""
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert timestamp_problem(EARLIEST_TIMESTAMP, now) is None
    assert timestamp_problem(now + timedelta(minutes=59), now) is None
    assert timestamp_problem(now + timedelta(minutes=61), now) is not None
    assert timestamp_problem(EARLIEST_TIMESTAMP - timedelta(seconds=1), now) is not None
