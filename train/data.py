"""Loading scan history: every line validated as a ScanRecord, every rejection accounted for.

Polars reads the file lazily (JSONL as raw lines with their line numbers, Parquet as rows);
msgspec validates each line against `ScanRecord`, so training sees exactly the schema the
server enforces. A line that is not JSON or breaks the schema is a `BadLine` naming the
file, the line and the field; `on_bad_line="fail"` stops at the first one, `"skip"` drops
and counts them. Nothing bad is ever trained on silently.

Features come only from `server.domain.features.encode_scans`, the one encoding the server
also uses.

Errors:

    HistoryError           the file is missing, unreadable, empty, or has a bad line (fail)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from server.domain.features import encode_scans
from server.domain.scan import ScanRecord

__all__ = [
    "BadLine",
    "Dataset",
    "History",
    "HistoryError",
    "OnBadLine",
    "dataset_from_records",
    "load_history",
    "records_digest",
]

OnBadLine = Literal["skip", "fail"]
_EXPECTED = "JSON lines of scan records (server.domain.scan.ScanRecord), one per line"
# msgspec names the failing field either as a path ("- at `$.lookback_bars`") or, for a
# missing or unknown field, in the message itself ("missing required field `timestamp`").
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"field `([^`]+)`")


class HistoryError(Exception):
    """The history cannot be used as asked; the message is one line naming path and cause."""


class BadLine(msgspec.Struct, frozen=True, kw_only=True):
    """One rejected line: where it is, which field is wrong, and msgspec's reason."""

    path: str
    line: int
    field: str
    message: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}: field {self.field!r}: {self.message}"


class History(msgspec.Struct, frozen=True, kw_only=True):
    """The valid records of one history file, with what was rejected and the file's hash."""

    path: str
    sha256: str
    records: list[ScanRecord]
    bad_lines: list[BadLine]


class Dataset(msgspec.Struct, frozen=True, kw_only=True):
    """Model inputs and targets, row-aligned. Expectations are NaN where history lacks them.

    `users` holds each row's user_id: the splits keep a user's scans together, since most
    scans re-run a saved scan and a user's next scan is best predicted by their last.
    """

    features: npt.NDArray[np.float32]
    users: npt.NDArray[np.str_]
    result_count: npt.NDArray[np.float64]
    duration_s: npt.NDArray[np.float64]
    expected_result_count: npt.NDArray[np.float64]
    expected_duration_s: npt.NDArray[np.float64]

    @property
    def empty(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.result_count == 0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, rows: npt.NDArray[np.int64]) -> Dataset:
        """The subset at `rows` (a split)."""
        return Dataset(
            features=self.features[rows],
            users=self.users[rows],
            result_count=self.result_count[rows],
            duration_s=self.duration_s[rows],
            expected_result_count=self.expected_result_count[rows],
            expected_duration_s=self.expected_duration_s[rows],
        )

    def concat(self, other: Dataset) -> Dataset:
        """These rows followed by `other`'s."""
        return Dataset(
            features=np.concatenate([self.features, other.features]),
            users=np.concatenate([self.users, other.users]),
            result_count=np.concatenate([self.result_count, other.result_count]),
            duration_s=np.concatenate([self.duration_s, other.duration_s]),
            expected_result_count=np.concatenate(
                [self.expected_result_count, other.expected_result_count]
            ),
            expected_duration_s=np.concatenate(
                [self.expected_duration_s, other.expected_duration_s]
            ),
        )


def _field_of(message: str) -> str:
    if match := _PATH.search(message):
        return match.group(1) or "(record)"
    if match := _NAMED.search(message):
        return match.group(1)
    return "(record)"


def _validate_line(
    decoder: msgspec.json.Decoder[ScanRecord], path: str, line: int, text: str
) -> ScanRecord | BadLine:
    try:
        return decoder.decode(text)
    except msgspec.ValidationError as exc:
        return BadLine(path=path, line=line, field=_field_of(str(exc)), message=str(exc))
    except msgspec.DecodeError as exc:
        return BadLine(path=path, line=line, field="(json)", message=str(exc))


def _validate_row(path: str, line: int, row: dict[str, Any]) -> ScanRecord | BadLine:
    # Parquet rows without a value are null; dropping them lets defaults and "missing
    # required field" errors apply exactly as for JSON.
    present = {k: v for k, v in row.items() if v is not None}
    try:
        return msgspec.convert(present, ScanRecord)
    except msgspec.ValidationError as exc:
        return BadLine(path=path, line=line, field=_field_of(str(exc)), message=str(exc))


def _scan(path: Path) -> list[ScanRecord | BadLine]:
    shown = str(path)
    if path.suffix == ".parquet":
        frame = pl.scan_parquet(path).with_row_index("__row", offset=1).collect()
        return [_validate_row(shown, int(r.pop("__row")), r) for r in frame.iter_rows(named=True)]
    lines = pl.scan_lines(path, name="text", row_index_name="line", row_index_offset=1)
    # Blank lines carry no record (a trailing newline, a hand edit); everything else counts.
    frame = lines.filter(pl.col("text").str.strip_chars() != "").collect()
    decoder = msgspec.json.Decoder(ScanRecord)
    return [_validate_line(decoder, shown, n, t) for n, t in frame.iter_rows()]


def load_history(path: Path, *, on_bad_line: OnBadLine = "fail") -> History:
    """The valid records of a .jsonl or .parquet history file.

    Raises HistoryError when the file is missing, unreadable or holds no valid record, and
    at the first bad line when `on_bad_line` is "fail".
    """
    if on_bad_line not in ("skip", "fail"):
        raise HistoryError(f"on_bad_line is {on_bad_line!r}: expected 'skip' or 'fail'")
    if not path.is_file():
        raise HistoryError(f"{path}: no such file: expected {_EXPECTED} (run `just generate`)")
    raw = path.read_bytes()
    if not raw.strip():
        raise HistoryError(f"{path} is empty: expected {_EXPECTED}")
    try:
        rows = _scan(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HistoryError(f"{path} cannot be read ({reason}): expected {_EXPECTED}") from None
    records = [r for r in rows if isinstance(r, ScanRecord)]
    bad = [r for r in rows if isinstance(r, BadLine)]
    if bad and on_bad_line == "fail":
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise HistoryError(f"{bad[0].describe()}{more}; use --on-bad-line skip to drop them")
    if not records:
        raise HistoryError(
            f"{path} has no valid record ({len(bad)} bad lines): expected {_EXPECTED}"
        )
    return History(
        path=str(path), sha256=hashlib.sha256(raw).hexdigest(), records=records, bad_lines=bad
    )


def records_digest(records: Sequence[ScanRecord]) -> str:
    """sha256 of records as the JSONL a file of them would hold (for in-memory training)."""
    digest = hashlib.sha256()
    encoder = msgspec.json.Encoder()
    for record in records:
        digest.update(encoder.encode(record) + b"\n")
    return digest.hexdigest()


def _floats(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def dataset_from_records(records: Sequence[ScanRecord]) -> Dataset:
    """Features (through the domain encoding) and targets of records, row-aligned."""
    return Dataset(
        features=encode_scans(records),
        users=np.asarray([r.user_id for r in records], dtype=np.str_),
        result_count=_floats([r.result_count for r in records]),
        duration_s=_floats([r.duration_s for r in records]),
        expected_result_count=_floats([r.expected_result_count for r in records]),
        expected_duration_s=_floats([r.expected_duration_s for r in records]),
    )
