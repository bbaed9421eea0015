"""The results writer: JSON that reads back, and Markdown that never shows a failed figure."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.latency import summarize
from bench.machine import Machine, describe_machine
from bench.openloop import OpenLoopResult
from bench.report import BenchReport, Check, HttpRun, InProcessFigure, render_markdown, write_report
from bench.wrk import WrkResult

MACHINE = Machine(
    nproc=2,
    cpu_model="Test CPU",
    mem_total_mb=2048.0,
    python="3.11.7",
    platform="Linux",
    load_before=(0.5, 0.4, 0.3),
    versions={"granian": "2.8.7"},
)


def _good_run() -> HttpRun:
    closed = WrkResult(
        url="http://x/v1/predict",
        threads=1,
        connections=16,
        duration_s=10,
        requests=54_321,
        requests_per_s=5432.1,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=3.25,
        max_ms=9.0,
    )
    lat = summarize([0.001, 0.002, 0.0031, 0.0047])
    opened = OpenLoopResult(
        url="http://x/v1/predict",
        target_rate=1000.0,
        duration_s=30.0,
        connections=32,
        requests=30_000,
        achieved_rate=999.8,
        latency=lat,
        send_lag=summarize([0.0, 0.0001]),
        client_cpu_share=0.15,
    )
    return HttpRun(
        name="scanopt",
        server="scanopt",
        path="/v1/predict",
        workers=1,
        batcher=False,
        startup_s=1.2,
        closed=closed,
        open=opened,
        peak_rss_mb=[120.5],
    )


def _report(**overrides: object) -> BenchReport:
    fields: dict[str, object] = {
        "started_at": "2025-01-02T03:04:05Z",
        "finished_at": "2025-01-02T03:10:05Z",
        "mode": "full",
        "machine": MACHINE,
        "load_after": (1.0, 0.9, 0.8),
        "model_version": "v-test",
        "inprocess": [
            InProcessFigure(
                name="predict_one", rounds=1000, median_us=41.5, p99_us=77.7, mean_us=45, max_us=300
            )
        ],
        "http": [
            _good_run(),
            HttpRun(
                name="fastapi-sklearn",
                server="fastapi-sklearn",
                path="/v1/predict",
                workers=1,
                failure="fastapi-sklearn exited with 1 before it was ready",
            ),
        ],
        "ratios": {"scanopt / ceiling (1 worker)": 0.81},
        "capacity": {
            "workers": 2.0,
            "replica_max_rps": 8000.0,
            "rps_per_core": 4000.0,
            "replicas_for_target_at_utilisation": 3.0,
        },
        "checks": [
            Check(
                name="one scan in-process p99",
                kind="plan",
                target="< 50 ms",
                value=0.0777,
                unit="ms",
                passed=True,
            )
        ],
        "batcher_recommendation": "recommend OFF by default (...)",
        "failures": ["fastapi-sklearn exited with 1 before it was ready"],
        "passed": False,
    }
    fields.update(overrides)
    return msgspec.convert(fields, BenchReport, from_attributes=True)


def test_json_round_trips(tmp_path: Path) -> None:
    """The JSON file decodes back into an equal BenchReport."""
    report = _report()
    json_path, md_path = write_report(report, tmp_path / "results", "2025-01-02")
    assert json_path.name == "2025-01-02.json"
    assert md_path.name == "2025-01-02.md"
    assert msgspec.json.decode(json_path.read_bytes(), type=BenchReport) == report


def test_markdown_shows_figures_of_good_runs() -> None:
    """The good run's throughput, open-loop p95 and peak RSS appear in the table."""
    md = render_markdown(_report())
    row = next(line for line in md.splitlines() if line.startswith("| scanopt |"))
    assert "5,432" in row
    assert "| 2.00 | 4.70 |" in row  # open-loop p50 and p95 (nearest rank of 4 samples)
    assert "120.5" in row


def test_markdown_shows_a_failed_run_as_failed_without_figures() -> None:
    """A failed run's row says FAILED and holds no number; the reason is listed."""
    md = render_markdown(_report())
    row = next(line for line in md.splitlines() if line.startswith("| fastapi-sklearn |"))
    assert "FAILED" in row
    assert not any(ch.isdigit() for ch in row.split("| 1 |", 1)[1])
    assert "- fastapi-sklearn exited with 1 before it was ready" in md
    assert "Result: FAILED" in md


def test_markdown_names_the_machine_and_its_load() -> None:
    """Cores, CPU model and the load averages before and after are in the header."""
    md = render_markdown(_report(passed=True, failures=[]))
    assert "2 cores, Test CPU" in md
    assert "Load average before: 0.50, 0.40, 0.30; after: 1.00, 0.90, 0.80" in md
    assert "Result: PASSED" in md


def test_markdown_lists_ratios_and_checks() -> None:
    """Each ratio and check gets a row with its value and verdict."""
    md = render_markdown(_report())
    assert "| scanopt / ceiling (1 worker) | 0.81 |" in md
    assert "| one scan in-process p99 | plan | < 50 ms | 0.0777 ms | met |" in md


def test_describe_machine_reads_this_machine() -> None:
    """The machine description has a core count, a CPU model and package versions."""
    m = describe_machine()
    assert m.nproc >= 1
    assert m.cpu_model
    assert "granian" in m.versions
    assert len(m.load_before) == 3


def test_markdown_shows_the_open_loop_clients_own_overhead() -> None:
    """Send lag and client CPU of each open-loop run are reported beside the figures."""
    md = render_markdown(_report())
    assert "| scanopt /v1/predict | 1,000 | 0.000 | 0.100 | 15.0 |" in md


def test_check_values_never_use_exponents() -> None:
    """A 3,698 µs p99 reads as 3,698, not 3.7e+03."""
    check = Check(name="x", kind="goal", target="< 100 µs", value=3698.4, unit="µs", passed=False)
    md = render_markdown(_report(checks=[check]))
    assert "| x | goal | < 100 µs | 3,698 µs | MISSED |" in md


def test_markdown_states_the_capacity_math() -> None:
    """Per-core throughput and the replica count appear with their basis."""
    md = render_markdown(_report())
    assert "answered 8,000 req/s flat out, 4,000 req/s per core" in md
    assert "needs 3 such replicas" in md
