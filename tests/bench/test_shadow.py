"""bench.shadow: the same load with and without a shadow on real 2-worker servers."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.shadow import RoundFigures, main

REPO = Path(__file__).resolve().parents[2]


def test_one_short_round_scores_every_request_and_fails_none(tmp_path: Path) -> None:
    """One plain and one shadow server, 1 s at 50 req/s: no failed request (the run would
    raise), and the shadow server's merged /metrics count every request as scored."""
    out = tmp_path / "figures.json"
    argv = ["--rounds", "1", "--duration", "1", "--rate", "50", "--workers", "2"]
    argv += ["--artifacts", str(REPO / "artifacts"), "--work", str(tmp_path), "--out", str(out)]
    assert main(argv) == 0
    plain, shadow = msgspec.json.decode(out.read_bytes(), type=list[RoundFigures])
    assert (plain.shadow, shadow.shadow) == (False, True)
    assert plain.scored is None
    # The warm-up second and the measured second: 100 answered scans, all scored.
    assert shadow.scored == 100
    assert shadow.dropped == 0
