"""The report struct and its JSON."""

from __future__ import annotations

import msgspec
import pytest

from server.analysis.analysis import analyse_experiment
from server.analysis.report import decode_report, encode_report
from tests.server.analysis.sample_report import NOW, SPEC
from tests.server.analysis.sample_report import sample_report as report


def test_json_round_trips_and_has_no_nan() -> None:
    """msgspec JSON decodes to an equal report; unknown values are null/absent, never NaN."""
    r = report()
    data = encode_report(r)
    assert b"NaN" not in data
    assert b"Infinity" not in data
    assert decode_report(data) == r
    assert msgspec.json.decode(data)["srm"]["flagged"] is False


def test_a_report_with_no_users_still_encodes() -> None:
    """Day zero: every metric has a note and no numbers, and the JSON is still valid."""
    r = analyse_experiment([], SPEC, now=NOW)
    assert decode_report(encode_report(r)) == r
    assert all(m.note and m.p_value is None for m in r.treatments[0].metrics)


def test_unknown_fields_in_a_stored_report_are_refused() -> None:
    """A report JSON from a different schema fails loudly instead of losing data."""
    data = msgspec.json.decode(encode_report(report(300)))
    data["surprise"] = 1
    with pytest.raises(msgspec.ValidationError, match="surprise"):
        decode_report(msgspec.json.encode(data))
