"""How often probation would roll back a good promotion, and how soon it catches a bad one.

    python -m bench.probation [--histories 40] [--artifacts artifacts] [--step 50]
                              [--plan 400:400,400:1000,1000:2000]

The good version is the model --artifacts/current names (the committed default), judged
on traffic it never saw; the bad one a quick model fitted on a world with 4x the results
and durations (as in tests/server/monitoring/test_probation.py). Each history is
`train.generate` with its own seed (its own mix of days, volatility and scans: what one
stretch of real traffic looks like), its real outcomes in order. For each plan
MIN:OUTCOMES the conditions probation watches (server.monitoring.alerts.accuracy_alerts,
the same function) are evaluated on the cumulative outcomes every --step outcomes from MIN
to OUTCOMES, as the scheduled check would see them; a history counts as rolled back when
any look trips. Prints, per plan, the share of histories that would roll back each version
and the median outcomes at the bad version's first trip. Reads and fits only; no server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from export.pipeline import build_version
from server.domain.artifact import MANIFEST_FILE, MODEL_INPUT, Manifest
from server.domain.features import encode_scans
from server.domain.scan import UNIVERSE_SIZES, ScanRecord
from server.monitoring.alerts import VersionAccuracy, accuracy_alerts
from train.generate import generate_records

__all__ = ["main"]

Plan = tuple[int, int]


class _Errors(msgspec.Struct, frozen=True):
    """Per outcome, in arrival order: absolute errors and interval hits of both targets."""

    count_err: np.ndarray
    count_hit: np.ndarray
    dur_err: np.ndarray
    dur_hit: np.ndarray


def _shifted(records: Sequence[ScanRecord]) -> list[ScanRecord]:
    return [
        msgspec.structs.replace(
            r,
            result_count=min(4 * r.result_count, UNIVERSE_SIZES[r.universe]),
            duration_s=min(4 * r.duration_s, 3600.0),
            expected_result_count=None,
            expected_duration_s=None,
        )
        for r in records
    ]


def _errors(folder: Path, records: Sequence[ScanRecord]) -> _Errors:
    session = ort.InferenceSession(str(folder / "model.onnx"))
    features = encode_scans([r.to_scan() for r in records], datetime.now(UTC))
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {MODEL_INPUT: features}), strict=True))
    count = np.asarray([r.result_count for r in records], dtype=np.float64)
    dur = np.asarray([r.duration_s for r in records], dtype=np.float64)
    return _Errors(
        count_err=np.abs(out["result_count"] - count),
        count_hit=(count >= out["result_count_lo"]) & (count <= out["result_count_hi"]),
        dur_err=np.abs(out["duration_s"] - dur),
        dur_hit=(dur >= out["duration_s_lo"]) & (dur <= out["duration_s_hi"]),
    )


def _first_trip(errors: _Errors, manifest: Manifest, plan: Plan, step: int) -> int | None:
    """Outcomes at the first look whose conditions trip, or None."""
    low, high = plan
    training = {t: manifest.metrics[t]["mae"] for t in ("result_count", "duration_s")}
    for n in range(low, high + 1, step):
        figures = VersionAccuracy(
            version=manifest.version,
            labelled=n,
            mae={
                "result_count": float(errors.count_err[:n].mean()),
                "duration_s": float(errors.dur_err[:n].mean()),
            },
            training_mae=training,
            coverage={
                "result_count": float(errors.count_hit[:n].mean()),
                "duration_s": float(errors.dur_hit[:n].mean()),
            },
        )
        if accuracy_alerts([figures], low):
            return n
    return None


def _plans(text: str) -> list[Plan]:
    plans = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        try:
            plan = (int(low), int(high))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected MIN:OUTCOMES, two integers like 400:1000"
            ) from None
        if not 1 <= plan[0] <= plan[1]:
            raise argparse.ArgumentTypeError(f"{part!r}: expected 1 <= MIN <= OUTCOMES")
        plans.append(plan)
    return plans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probation", description=__doc__)
    parser.add_argument("--histories", type=int, default=40)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--step", type=int, default=50)
    parser.add_argument("--plan", type=_plans, default=_plans("400:400,400:1000,1000:2000"))
    args = parser.parse_args(argv)
    try:
        good = args.artifacts / "models" / (args.artifacts / "current").read_text().strip()
        good_manifest = msgspec.json.decode((good / MANIFEST_FILE).read_bytes(), type=Manifest)
    except (OSError, msgspec.DecodeError) as exc:
        print(f"error: {exc}: expected a model in service under {args.artifacts}", file=sys.stderr)
        return 1
    console = Console()
    longest = max(high for _, high in args.plan)
    with tempfile.TemporaryDirectory() as work:
        console.print("fitting the bad version (4x world, quick)...")
        bad = build_version(
            _shifted(generate_records(1500, seed=0)), Path(work), seed=2, quick=True
        )
        bad_manifest = msgspec.json.decode((bad / MANIFEST_FILE).read_bytes(), type=Manifest)
        trips: dict[tuple[str, Plan], list[int | None]] = {}
        for seed in range(1000, 1000 + args.histories):
            records = generate_records(longest, seed=seed)
            for name, folder, manifest in (
                ("good", good, good_manifest),
                ("bad", bad, bad_manifest),
            ):
                errors = _errors(folder, records)
                for plan in args.plan:
                    trips.setdefault((name, plan), []).append(
                        _first_trip(errors, manifest, plan, args.step)
                    )
    table = Table(
        title=f"Probation on {args.histories} generated histories (looks every "
        f"{args.step} outcomes)"
    )
    for column in (
        "min labelled",
        "outcomes",
        "good rolled back",
        "bad rolled back",
        "bad: outcomes at first trip (median)",
    ):
        table.add_column(column, justify="right")
    for plan in args.plan:
        good_trips = trips[("good", plan)]
        bad_trips = [n for n in trips[("bad", plan)] if n is not None]
        table.add_row(
            str(plan[0]),
            str(plan[1]),
            f"{sum(n is not None for n in good_trips) / len(good_trips):.1%}",
            f"{len(bad_trips) / args.histories:.1%}",
            f"{int(np.median(bad_trips))}" if bad_trips else "-",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
