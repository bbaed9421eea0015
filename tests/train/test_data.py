"""The history loader: valid records in, every bad line reported with file, line and field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from server.domain.features import encode_scans
from server.domain.scan import ScanRecord
from train.data import HistoryError, dataset_from_records, load_history, records_digest
from train.generate import generate_records, write_history


@pytest.fixture(scope="module")
def records() -> list[ScanRecord]:
    return generate_records(12, seed=3)


def _lines(records: list[ScanRecord]) -> list[str]:
    return [msgspec.json.encode(r).decode() for r in records]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _with(line: str, **changes: object) -> str:
    data = json.loads(line)
    data.update(changes)
    return json.dumps(data)


def test_valid_jsonl_loads_every_record_and_hashes_the_file(
    tmp_path: Path, records: list[ScanRecord]
) -> None:
    """All lines of a clean file come back equal, with the file's sha256."""
    path = _write(tmp_path / "h.jsonl", _lines(records))
    history = load_history(path)
    assert history.records == records
    assert history.bad_lines == []
    assert history.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_copy_loads_the_same_records(tmp_path: Path, records: list[ScanRecord]) -> None:
    """The Parquet copy written by the generator validates to the same records."""
    _, parquet = write_history(records, tmp_path / "h.jsonl")
    assert load_history(parquet).records == records


def test_malformed_json_fails_naming_file_and_line(
    tmp_path: Path, records: list[ScanRecord]
) -> None:
    """A line that is not JSON stops the run with path:line and '(json)'."""
    lines = _lines(records[:4])
    lines[2] = lines[2].replace(":", "=", 1)
    path = _write(tmp_path / "h.jsonl", lines)
    with pytest.raises(
        HistoryError, match=r"h\.jsonl:3: field '\(json\)': JSON is malformed"
    ) as err:
        load_history(path)
    assert "\n" not in str(err.value)


def test_schema_violation_names_the_field(tmp_path: Path, records: list[ScanRecord]) -> None:
    """An out-of-range value is reported with its line number and msgspec's field path."""
    lines = _lines(records[:3])
    lines[1] = _with(lines[1], lookback_bars=5)
    path = _write(tmp_path / "h.jsonl", lines)
    with pytest.raises(
        HistoryError, match=r"h\.jsonl:2: field 'lookback_bars': Expected `int` >= 10"
    ):
        load_history(path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"universe": "ftse100"}, "universe"),
        ({"surprise": 1}, "surprise"),
        ({"timestamp": "2026-01-05T10:00:00"}, "timestamp"),
        ({"min_price": 50.0, "max_price": 10.0}, "(record)"),
        ({"result_count": 5000, "universe": "nasdaq100"}, "(record)"),
    ],
)
def test_each_kind_of_schema_violation_is_attributed(
    tmp_path: Path, records: list[ScanRecord], change: dict[str, object], field: str
) -> None:
    """Bad enum, unknown field, naive timestamp and cross-field rules each name their field."""
    lines = _lines(records[:2])
    lines[0] = _with(lines[0], **change)
    history = load_history(_write(tmp_path / "h.jsonl", lines), on_bad_line="skip")
    assert [(b.line, b.field) for b in history.bad_lines] == [(1, field)]


def test_missing_required_field_is_named(tmp_path: Path, records: list[ScanRecord]) -> None:
    """A record without its outcome names the missing field."""
    data = json.loads(_lines(records[:1])[0])
    del data["duration_s"]
    history = load_history(
        _write(tmp_path / "h.jsonl", [json.dumps(data), *_lines(records[1:2])]), on_bad_line="skip"
    )
    assert [(b.line, b.field) for b in history.bad_lines] == [(1, "duration_s")]


def test_skip_mode_drops_and_counts_bad_lines(tmp_path: Path, records: list[ScanRecord]) -> None:
    """With skip, valid records survive in order and each bad line is listed with its number."""
    lines = _lines(records[:6])
    lines[1] = "not json at all"
    lines[4] = _with(lines[4], rsi_min=120)
    history = load_history(_write(tmp_path / "h.jsonl", lines), on_bad_line="skip")
    assert history.records == [records[i] for i in (0, 2, 3, 5)]
    assert [(b.line, b.field) for b in history.bad_lines] == [(2, "(json)"), (5, "rsi_min")]
    assert history.bad_lines[1].describe().startswith(f"{tmp_path / 'h.jsonl'}:5: field 'rsi_min'")


def test_fail_mode_reports_how_many_more_bad_lines(
    tmp_path: Path, records: list[ScanRecord]
) -> None:
    """The failure names the first bad line and counts the rest."""
    lines = _lines(records[:4])
    lines[0] = "{"
    lines[3] = "}"
    with pytest.raises(HistoryError, match=r":1: .*and 1 more bad lines"):
        load_history(_write(tmp_path / "h.jsonl", lines))


def test_blank_lines_are_ignored_and_numbering_follows_the_file(
    tmp_path: Path, records: list[ScanRecord]
) -> None:
    """Blank lines carry no record, and a later bad line keeps its real line number."""
    lines = _lines(records[:2])
    path = _write(tmp_path / "h.jsonl", [lines[0], "", "   ", lines[1], "[]"])
    history = load_history(path, on_bad_line="skip")
    assert history.records == records[:2]
    assert [b.line for b in history.bad_lines] == [5]


def test_missing_file_is_a_one_line_error_naming_the_path(tmp_path: Path) -> None:
    """No file: the error names the path and what was expected."""
    path = tmp_path / "nope.jsonl"
    with pytest.raises(HistoryError) as err:
        load_history(path)
    message = str(err.value)
    assert str(path) in message
    assert "expected" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_a_one_line_error(tmp_path: Path, content: str) -> None:
    """An empty (or blank) file is refused with its path."""
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(HistoryError, match=r"empty\.jsonl is empty: expected JSON lines"):
        load_history(path)


def test_a_file_of_only_bad_lines_is_refused_even_when_skipping(tmp_path: Path) -> None:
    """Skipping every line leaves nothing to train on, which is an error, not an empty model."""
    path = _write(tmp_path / "h.jsonl", ["{", "nope"])
    with pytest.raises(HistoryError, match=r"no valid record \(2 bad lines\)"):
        load_history(path, on_bad_line="skip")


def test_not_utf8_is_reported_not_raised_raw(tmp_path: Path) -> None:
    """Binary garbage becomes a HistoryError naming the file."""
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(HistoryError, match=r"h\.jsonl"):
        load_history(path)


def test_features_come_from_the_domain_encoding(records: list[ScanRecord]) -> None:
    """The training matrix is exactly what the server's encoding produces."""
    data = dataset_from_records(records)
    assert np.array_equal(data.features, encode_scans(records))
    assert data.features.dtype == np.float32
    assert np.array_equal(data.result_count, [r.result_count for r in records])
    assert np.array_equal(data.empty, [int(r.result_count == 0) for r in records])


def test_missing_expectations_become_nan(records: list[ScanRecord]) -> None:
    """Real history without expectations keeps its rows; the oracle columns are NaN."""
    real = [msgspec.structs.replace(r, expected_result_count=None) for r in records[:3]]
    assert np.isnan(dataset_from_records(real).expected_result_count).all()


def test_records_digest_equals_the_sha256_of_their_jsonl(
    tmp_path: Path, records: list[ScanRecord]
) -> None:
    """In-memory training data gets the same hash its JSONL file would have."""
    jsonl, _ = write_history(records, tmp_path / "h.jsonl")
    assert records_digest(records) == hashlib.sha256(jsonl.read_bytes()).hexdigest()
