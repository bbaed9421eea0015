"""The scanner simulation: scan changes stay valid, and a short run closes the whole loop.

The end-to-end run starts a real server (Granian) on a tiny model trained here by the real
pipeline, drives it with simulated users over HTTP, and reads the server's own report;
the full-strength effect criteria are `just simulate`'s to guard, not a test's.
"""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from matplotlib import image
from rich.console import Console

from bench.simulate import SimulationOutcome, simulate
from bench.simulation.people import loosen, overtighten, tighten
from bench.simulation.runner import SimConfig, tally
from bench.simulation.timeline import Calendar, trading_days_before
from server.analysis.report import decode_report
from server.domain.features import MARKET_TZ
from server.domain.scan import Scan
from tests.browser import CHROMIUM_ARGS, chromium
from train.generate import generate_records
from train.habits import sample_scans

_SCAN = msgspec.json.Decoder(Scan)


def test_scan_changes_keep_scans_valid() -> None:
    """Loosened, tightened and over-tightened scans still pass the server's wire rules."""
    rng = np.random.default_rng(0)
    for scan in sample_scans(rng, 300):
        for change in (loosen, tighten, overtighten, loosen):
            scan = change(scan, rng)
            assert _SCAN.decode(msgspec.json.encode(scan)) == scan


def test_loosening_never_cuts_results() -> None:
    """Loosening a filter never lowers, and tightening never raises, the expected count."""
    from train.market import expected_result_count

    rng = np.random.default_rng(1)
    for scan in sample_scans(rng, 200):
        base = expected_result_count(scan)
        assert expected_result_count(loosen(scan, rng)) >= base * (1 - 1e-9)
        assert expected_result_count(tighten(scan, rng)) <= base * (1 + 1e-9)


def test_calendar_is_trading_days_in_the_past() -> None:
    """Experiment and history days are weekdays before today; sessions start in market hours."""
    thursday = date(2026, 3, 5)
    assert trading_days_before(thursday, 4) == [
        date(2026, 2, 27),
        date(2026, 3, 2),
        date(2026, 3, 3),
        date(2026, 3, 4),
    ]
    calendar = Calendar.build(thursday, 3, 2, np.random.default_rng(2))
    assert calendar.days == 3
    assert calendar.experiment_start == datetime(2026, 3, 2, tzinfo=UTC)
    rng = np.random.default_rng(3)
    for day in (-2, -1, 0, 2):
        local = calendar.session_start(day, rng).astimezone(MARKET_TZ)
        assert (local.hour, local.minute) >= (9, 30)
        assert local.hour < 16
    with pytest.raises(ValueError, match="outside the calendar"):
        calendar.session_start(3, rng)


@pytest.fixture(scope="module")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real model version (quick pipeline on a small simulated history)."""
    from export.pipeline import build_version

    root = tmp_path_factory.mktemp("sim-artifacts")
    build_version(generate_records(3000, seed=11), root, seed=0, quick=True)
    assert (root / "current").is_file()
    return root


@pytest.fixture(scope="module")
def outcome(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> SimulationOutcome:
    """One short simulation against a real server, run once for the module."""
    work = tmp_path_factory.mktemp("sim")
    config = SimConfig(users=240, days=3, pre_days=3, threads=8, seed=5)
    return simulate(
        config,
        url=None,
        artifacts=tiny_artifacts,
        out_dir=work / "reports",
        console=Console(file=io.StringIO(), width=150),
        log_dir=work / "log",
    )


@pytest.mark.slow
def test_simulation_closes_the_loop(outcome: SimulationOutcome) -> None:
    """Every simulated user and scan is in the server's report, which is written in three
    formats, and no user failed."""
    assert outcome.result.failures == []
    assert len(outcome.result.users) == 240
    by_label = {c.label: c for c in outcome.checks}
    assert by_label["every simulated user and scan reported"].passed
    assert by_label["no sample-ratio mismatch"].passed
    assert [p.name for p in outcome.paths] == [
        "ml_scanning.json",
        "ml_scanning.html",
        "ml_scanning.md",
    ]
    assert decode_report(outcome.paths[0].read_bytes()) == outcome.rendered.report
    assert outcome.paths[1].read_text().startswith("<!doctype html>")


@pytest.mark.slow
def test_report_matches_what_the_simulation_counted(outcome: SimulationOutcome) -> None:
    """The server's per-arm empty-scan and in-range rates equal the simulation's own counts,
    and treatment users hit fewer empty scans than control users."""
    arms = tally(outcome.result.users)
    (treatment,) = outcome.rendered.report.treatments
    metrics = {m.key: m for m in treatment.metrics}
    empty, in_range = metrics["empty_scan_rate"], metrics["desired_range_share"]
    for arm, value in (("control", empty.control_value), ("treatment", empty.treatment_value)):
        assert value == pytest.approx(arms[arm].empty_scans / arms[arm].scans)
    assert in_range.treatment_value == pytest.approx(
        arms["treatment"].scans_in_range / arms["treatment"].scans
    )
    assert arms["treatment"].empty_rate < arms["control"].empty_rate
    assert metrics["feature_adoption"].treatment_value == pytest.approx(
        sum(u.suggestions_applied > 0 for u in outcome.result.users if u.arm == "treatment")
        / arms["treatment"].users
    )
    assert metrics["satisfaction"].n_control > 0
    assert metrics["empty_scan_rate"].cuped is not None  # users with history before the start
    assert outcome.rendered.report.looks  # one look per simulated day


@pytest.mark.slow
def test_html_report_renders_in_chromium(outcome: SimulationOutcome, tmp_path: Path) -> None:
    """Headless Chromium renders the HTML report to a non-blank screenshot."""
    png = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_ARGS,
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--window-size=1200,2600",
            f"--screenshot={png}",
            outcome.paths[1].resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    pixels = image.imread(png)
    assert pixels.shape[:2] == (2600, 1200)
    ink = (pixels[..., :3] < 0.6).any(axis=-1)  # dark enough to be text, bars or lines
    assert 0.005 < ink.mean() < 0.5
