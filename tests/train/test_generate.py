"""The scan-history generator: determinism, calibration, files on disk and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest

from server.domain.scan import UNIVERSE_SIZES, ScanRecord
from train import market
from train.generate import (
    DEFAULT_N,
    DEFAULT_SEED,
    generate_records,
    main,
    records_frame,
    summarize,
    write_history,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def default_history() -> list[ScanRecord]:
    # The full default (120,000 rows) takes a few seconds: check the real thing.
    return generate_records(DEFAULT_N, DEFAULT_SEED)


def test_same_seed_same_records_and_other_seed_other_records() -> None:
    """Generation is deterministic for a seed, and a different seed gives other records."""
    assert generate_records(300, 11) == generate_records(300, 11)
    assert generate_records(300, 11) != generate_records(300, 12)


def test_n_150_gives_150_valid_records() -> None:
    """The plan's original size works; every record survives a msgspec round trip."""
    records = generate_records(150, DEFAULT_SEED)
    assert len(records) == 150
    raw = msgspec.json.encode(records)
    assert msgspec.json.decode(raw, type=list[ScanRecord]) == records


def test_n_below_one_is_refused() -> None:
    """Asking for no records names the bad value."""
    with pytest.raises(ValueError, match="got 0"):
        generate_records(0, 1)


def test_counts_stay_within_the_universe(default_history: list[ScanRecord]) -> None:
    """No scan returns more symbols than its universe holds."""
    assert all(r.result_count <= UNIVERSE_SIZES[r.universe] for r in default_history)


def test_default_history_is_calibrated(default_history: list[ScanRecord]) -> None:
    """Empty share 25-40%, median non-empty count 5-50, durations about 2-120 s, median 10-30 s."""
    summary = summarize(default_history)
    assert 0.25 <= summary.empty_share <= 0.40
    assert 5 <= summary.median_nonempty_count <= 50
    assert summary.duration_min_s < 3.0
    assert 100.0 <= summary.duration_max_s <= market.TIMEOUT_S
    assert 10.0 <= summary.duration_median_s <= 30.0


def test_oracle_floor_leaves_room_under_the_model_targets(
    default_history: list[ScanRecord],
) -> None:
    """The oracle MAE is a few units / seconds, well under the 10 and 5 s model targets."""
    summary = summarize(default_history)
    assert summary.oracle_mae_count is not None
    assert summary.oracle_mae_duration_s is not None
    assert 1.0 < summary.oracle_mae_count < 7.0
    assert 1.0 < summary.oracle_mae_duration_s < 4.0


def test_expectations_match_the_market_model(default_history: list[ScanRecord]) -> None:
    """Each record's expectations are what train.market says for its scan."""
    for record in default_history[::2000]:
        s = record.to_scan()
        assert record.expected_result_count == pytest.approx(market.expected_result_count(s))
        assert record.expected_duration_s == pytest.approx(market.expected_duration_s(s))


def test_features_carry_the_signal(default_history: list[ScanRecord]) -> None:
    """Counts follow their expectations: the rank correlation is strong, not noise."""
    frame = records_frame(default_history)
    rho = frame.select(pl.corr("expected_result_count", "result_count", method="spearman")).item()
    assert rho > 0.8


def test_jsonl_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    """Both files hold every record; the Parquet copy equals the JSONL read back."""
    records = generate_records(200, 5)
    jsonl, parquet = write_history(records, tmp_path / "sub" / "history.jsonl")
    assert parquet == tmp_path / "sub" / "history.parquet"
    decoder = msgspec.json.Decoder(ScanRecord)
    lines = jsonl.read_bytes().splitlines()
    assert [decoder.decode(line) for line in lines] == records
    assert pl.read_parquet(parquet).equals(records_frame(records))


def test_parquet_path_as_history_path_is_refused(tmp_path: Path) -> None:
    """A .parquet history path would be overwritten by its own copy: refused up front."""
    with pytest.raises(ValueError, match=r"expected \.jsonl"):
        write_history(generate_records(5, 1), tmp_path / "history.parquet")


def test_summary_without_expectations_has_no_oracle() -> None:
    """Real history carries no expectations: the oracle MAE is unknown, not zero."""
    records = [
        msgspec.structs.replace(r, expected_result_count=None, expected_duration_s=None)
        for r in generate_records(20, 3)
    ]
    summary = summarize(records)
    assert summary.oracle_mae_count is None
    assert summary.oracle_mae_duration_s is None
    assert summary.rows == 20


def test_cli_writes_both_files_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--n 150` writes the JSONL and the Parquet copy and prints the oracle MAEs."""
    out = tmp_path / "history.jsonl"
    assert main(["--n", "150", "--seed", "3", "--out", str(out)]) == 0
    assert len(out.read_bytes().splitlines()) == 150
    assert pl.read_parquet(out.with_suffix(".parquet")).height == 150
    printed = capsys.readouterr().out
    assert "oracle MAE result_count" in printed
    assert "by universe" in printed


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse leaves through SystemExit
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--n", "0"],
        ["--n", "many"],
        ["--out", "{file}/history.jsonl"],
        ["--out", "{tmp}/history.parquet"],
    ],
)
def test_cli_bad_arguments_end_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """Bad --n or an unwritable --out: exit 2 with one line on stderr naming the problem."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    argv = [a.format(file=blocker, tmp=tmp_path) for a in args]
    code, err = run_main(["--n", "150", *argv], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0]
    assert argv[-1] in lines[0]


def test_cli_process_fails_without_a_traceback(tmp_path: Path) -> None:
    """Run as a real process, an unwritable path exits 2 with one line and no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [sys.executable, "-m", "train.generate", "--n", "150", "--out", f"{blocker}/h.jsonl"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_history_spans_scans_people_set(default_history: list[ScanRecord]) -> None:
    """Scans come in time order over about a year, mostly with a few filters switched on."""
    stamps = [r.timestamp for r in default_history]
    assert stamps == sorted(stamps)
    assert (stamps[-1] - stamps[0]).days > 300
    extra = np.asarray([r.n_extra_filters for r in default_history])
    assert np.median(extra) <= 2
