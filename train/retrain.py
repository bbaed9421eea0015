"""`just retrain`: a challenger from production outcomes, promoted only if it wins.

    python -m train.retrain [--store DSN] [--history data/scan_history.jsonl]
                            [--artifacts artifacts] [--out var/retrain] [--recent-weight 4]
                            [--holdout-share 0.3] [--holdout-days 1]
                            [--min-outcomes 200] [--seed 0]
                            [--quick] [--no-promote] [--recalibrate-only]

With --recalibrate-only the point models stay the champion's and only the interval
widenings and the p_empty calibration are refitted (train.recalibrate); the steps below
are the full retrain.

1. Labelled outcomes (train.outcomes: logged predictions joined to their scan_completed
   events) are read from the store, SQLite or PostgreSQL (default SCANOPT_STORE_DSN, else
   sqlite:///var/scanopt.db), into Polars.
2. The outcomes are split by user and by time. Users are split by a seeded hash:
   --holdout-share of them are held out, and their scans on the latest --holdout-days
   dates (UTC) with outcomes are the holdout. The challenger trains on the other users'
   scans before those dates. So the holdout is from users neither model saw AND later
   than everything the challenger learned from: a split by user alone let the
   challenger learn the shift for the very days the holdout scanned on (each day's own
   volatility and hours tell them apart from the base history) and showed a gain that
   new days did not. Holdout users' scans before the cutoff and the other users' from it
   on are used by neither side (their counts are printed and recorded).
3. The training outcomes are merged with the base history, recent outcomes weighted up: each
   outcome counts --recent-weight base records. The weight is applied by keeping each
   base record with probability 1 / weight (seeded), not by copying outcomes, so no row
   is ever in both the training and the calibration split.
4. The challenger is trained by train.training.train_models, the code `just train` runs
   (FitSettings(seed) as `just train`, or FitSettings.quick with --quick), and exported
   with parity by export.version (the code `just export` runs), without moving the alias.
5. Champion (the version artifacts/current names, through its ONNX graph) and challenger
   are compared on the holdout with train.compare's rule, printed with its figures, and
   the challenger is promoted (export.lifecycle, the code `just promote` runs) only when
   the rule says so. Its manifest records its parent, the data window and the comparison.
6. The report (train.retrain_report: Markdown, HTML, PNGs) goes to --out/<challenger>/,
   with the worst-error slices (universe x strategy x timeframe) of the holdout.

Bad input (no store, no labelled outcomes, too few of them or of holdout users, no model
in service, no base history) is one line on stderr and exit 1; nothing is written.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl
from rich.console import Console

from export.artifacts import ArtifactError, read_current, version_dir
from export.graph import build_graph
from export.latency import paired_row_costs
from export.lifecycle import LifecycleError, promote
from export.manifest import ManifestError, read_manifest
from export.parity import MIN_PARITY_ROWS, GraphError, ParityError, open_session, run_graph
from export.version import export_version
from server.domain.artifact import (
    MANIFEST_FILE,
    DataWindow,
    PairedDifference,
    RetrainComparison,
    TrainingData,
)
from server.domain.features import encode_scans
from server.domain.scan import ScanRecord
from train.compare import CompareError, coverage_interval, decide, paired_difference
from train.data import HistoryError, dataset_from_records, load_history, records_digest
from train.models import predict_outputs
from train.outcomes import OutcomeError, outcome_records, read_outcomes, shown_dsn
from train.retrain_report import write_report
from train.training import FitSettings, TrainError, train_models

__all__ = [
    "MIN_HOLDOUT_USERS",
    "MIN_OUTCOMES",
    "RecentOutcomes",
    "RetrainError",
    "RetrainResult",
    "covered_rows",
    "evaluate_holdout",
    "holdout_coverage",
    "holdout_differences",
    "main",
    "one_row_costs",
    "recent_outcomes",
    "retrain",
    "split_users",
    "time_cutoff",
]

# Below these the paired intervals are too wide to decide anything.
MIN_OUTCOMES: Final = 200
MIN_HOLDOUT_USERS: Final = 10
# 4,000 one-row calls per graph, alternating: ~0.3 s for both.
_ONE_ROW_CALLS: Final = 4000
_DEFAULT_STORE: Final = "sqlite:///var/scanopt.db"


class RetrainError(Exception):
    """Retraining cannot start or finish; one line naming what is missing."""


class RetrainResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one retrain did: the challenger, the comparison, whether it now serves."""

    challenger: str
    folder: Path
    comparison: RetrainComparison
    promoted: bool
    report: Path


def _user_fraction(user: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_users(users: Sequence[str], share: float, seed: int) -> npt.NDArray[np.bool_]:
    """True for rows whose user is held out (a seeded hash, so a user is all in or out)."""
    return np.array([_user_fraction(u, seed) < share for u in users], dtype=bool)


def time_cutoff(records: Sequence[ScanRecord], days: int) -> datetime | None:
    """The start (UTC midnight) of the latest `days` dates on which outcomes ran; None
    when they ran on `days` dates or fewer (nothing would be left before it)."""
    dates = sorted({r.timestamp.astimezone(UTC).date() for r in records})
    if len(dates) <= days:
        return None
    return datetime.combine(dates[-days], time(), UTC)


def _iso_dt(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso(us: int) -> str:
    return _iso_dt(datetime.fromtimestamp(us / 1e6, UTC))


def one_row_costs(
    champion: bytes | Path, challenger: bytes | Path, features: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Both graphs' one-row µs (medians, the two alternating call by call on the holdout
    rows in turn), as the checks `one_row_us` (the challenger's) and `champion_one_row_us`."""
    champion_us, challenger_us = paired_row_costs(
        champion, challenger, features, calls=_ONE_ROW_CALLS
    )
    return {"one_row_us": challenger_us, "champion_one_row_us": champion_us}


def evaluate_holdout(
    records: Sequence[ScanRecord],
    users: Sequence[str],
    champion: Mapping[str, npt.NDArray[np.floating[Any]]],
    challenger: Mapping[str, npt.NDArray[np.floating[Any]]],
) -> pl.DataFrame:
    """One row per holdout outcome: its slice, the truth and both models' outputs."""
    data = {
        "user": list(users),
        "universe": [r.universe.value for r in records],
        "strategy": [r.strategy.value for r in records],
        "timeframe": [r.timeframe.value for r in records],
        "result_count": [float(r.result_count) for r in records],
        "duration_s": [r.duration_s for r in records],
    }
    for who, out in (("champion", champion), ("challenger", challenger)):
        for name in ("result_count", "result_count_lo", "result_count_hi", "duration_s"):
            data[f"{who}_{name}"] = out[name].astype(np.float64)
        for name in ("duration_s_lo", "duration_s_hi", "p_empty"):
            data[f"{who}_{name}"] = out[name].astype(np.float64)
    return pl.DataFrame(data)


def holdout_differences(frame: pl.DataFrame) -> list[PairedDifference]:
    users = frame["user"].to_list()
    empty = (frame["result_count"] == 0).cast(pl.Float64).to_numpy()
    diffs = []
    for target in ("result_count", "duration_s"):
        truth = frame[target].to_numpy()
        diffs.append(
            paired_difference(
                f"{target} MAE",
                users,
                np.abs(frame[f"champion_{target}"].to_numpy() - truth),
                np.abs(frame[f"challenger_{target}"].to_numpy() - truth),
            )
        )
    diffs.append(
        paired_difference(
            "p_empty Brier",
            users,
            (frame["champion_p_empty"].to_numpy() - empty) ** 2,
            (frame["challenger_p_empty"].to_numpy() - empty) ** 2,
        )
    )
    return diffs


def covered_rows(frame: pl.DataFrame, who: str, target: str) -> npt.NDArray[np.float64]:
    """1.0 where the holdout outcome of `target` lies inside `who`'s 90% interval, else 0.0."""
    return (
        frame.select(
            (pl.col(target) >= pl.col(f"{who}_{target}_lo"))
            & (pl.col(target) <= pl.col(f"{who}_{target}_hi"))
        )
        .to_series()
        .cast(pl.Float64)
        .to_numpy()
    )


def holdout_coverage(frame: pl.DataFrame, who: str) -> dict[str, float]:
    """`<target>_coverage_90` (the share of holdout outcomes inside `who`'s 90% interval)
    with `_lower` and `_upper`, its 95% interval over users (train.compare's
    coverage_interval), for each target."""
    users = frame["user"].to_list()
    checks = {}
    for target in ("result_count", "duration_s"):
        share, lower, upper = coverage_interval(users, covered_rows(frame, who, target))
        name = f"{target}_coverage_90"
        checks.update({name: share, f"{name}_lower": lower, f"{name}_upper": upper})
    return checks


class RecentOutcomes(msgspec.Struct, frozen=True, kw_only=True):
    """The store's labelled outcomes, split by user and time into the part a challenger
    learns from (`train`: other users, before `cutoff`) and the holdout both models are
    scored on (held-out users, from `cutoff` on)."""

    source: str  # the store, without credentials
    train: list[ScanRecord]
    train_users: list[str]
    train_created_us: npt.NDArray[np.int64]
    holdout: list[ScanRecord]
    holdout_users: list[str]
    cutoff: datetime
    holdout_days: int
    unused_holdout_users_before: int
    unused_train_users_after: int

    def split_line(self) -> str:
        """The split in one line, for the rule's output."""
        return (
            f"holdout: {len(self.holdout)} outcomes of {len(set(self.holdout_users))} "
            f"unseen users from {_iso_dt(self.cutoff)} (the latest {self.holdout_days} "
            f"date(s)); trained on {len(self.train)} outcomes before it; unused: "
            f"{self.unused_holdout_users_before} of holdout users before it, "
            f"{self.unused_train_users_after} of the other users from it on"
        )

    def window(self, *, base_rows: int, recent_weight: float) -> DataWindow:
        """The manifest's record of these outcomes."""
        return DataWindow(
            source=self.source,
            rows=len(self.train),
            users=len(set(self.train_users)),
            first_at=_iso(int(self.train_created_us.min())),
            last_at=_iso(int(self.train_created_us.max())),
            sha256=records_digest(self.train),
            base_rows=base_rows,
            recent_weight=recent_weight,
            holdout_rows=len(self.holdout),
            holdout_users=len(set(self.holdout_users)),
            holdout_from=_iso_dt(self.cutoff),
            holdout_days=self.holdout_days,
            unused_holdout_users_before=self.unused_holdout_users_before,
            unused_train_users_after=self.unused_train_users_after,
        )


def recent_outcomes(
    store: str, min_outcomes: int, holdout_share: float, seed: int, holdout_days: int = 1
) -> RecentOutcomes:
    """The labelled outcomes, split by user and time (module docstring, step 2);
    RetrainError when there are too few of them (the message says how many are needed),
    of dates or of holdout users, OutcomeError when the store cannot be read."""
    frame = read_outcomes(store)
    where = f"store {shown_dsn(store)}"
    if frame.height == 0:
        raise RetrainError(
            f"{where}: no labelled outcomes (scan_completed events joined to logged "
            f"predictions): expected at least {min_outcomes}"
        )
    if frame.height < min_outcomes:
        raise RetrainError(
            f"{where}: {frame.height} labelled outcomes: expected at least {min_outcomes} "
            f"({min_outcomes - frame.height} more)"
        )
    records = outcome_records(frame)
    cutoff = time_cutoff(records, holdout_days)
    if cutoff is None:
        dates = len({r.timestamp.astimezone(UTC).date() for r in records})
        raise RetrainError(
            f"{where}: outcomes on {dates} date(s): expected more than --holdout-days "
            f"({holdout_days}), so the holdout can be later than every outcome trained on"
        )
    users = frame["user_id"].to_list()
    held = split_users(users, holdout_share, seed)
    later = np.array([r.timestamp >= cutoff for r in records], dtype=bool)
    in_holdout, in_train = held & later, ~held & ~later
    holdout_users = len({u for u, h in zip(users, in_holdout, strict=True) if h})
    if holdout_users < MIN_HOLDOUT_USERS or not in_train.any():
        raise RetrainError(
            f"{where}: {len(set(users))} users with outcomes, {holdout_users} held out with "
            f"outcomes from {_iso_dt(cutoff)} on, {int(in_train.sum())} outcomes of the others "
            f"before it: expected at least {MIN_HOLDOUT_USERS} holdout users and some to "
            "train on"
        )
    return RecentOutcomes(
        source=shown_dsn(store),
        train=[r for r, t in zip(records, in_train, strict=True) if t],
        train_users=[u for u, t in zip(users, in_train, strict=True) if t],
        train_created_us=frame["created_us"].to_numpy()[in_train],
        holdout=[r for r, h in zip(records, in_holdout, strict=True) if h],
        holdout_users=[u for u, h in zip(users, in_holdout, strict=True) if h],
        cutoff=cutoff,
        holdout_days=holdout_days,
        unused_holdout_users_before=int((held & ~later).sum()),
        unused_train_users_after=int((~held & later).sum()),
    )


def retrain(
    store: str,
    history: Path,
    artifacts: Path,
    out: Path,
    *,
    recent_weight: float = 4.0,
    holdout_share: float = 0.3,
    holdout_days: int = 1,
    min_outcomes: int = MIN_OUTCOMES,
    seed: int = 0,
    quick: bool = False,
    promote_winner: bool = True,
    settings: FitSettings | None = None,
    console: Console | None = None,
) -> RetrainResult:
    """The whole loop (see the module docstring); RetrainError on bad input.

    `settings` replaces the FitSettings `quick` picks (tests train a deliberately weak
    challenger with it)."""
    console = console or Console(stderr=True)
    if recent_weight < 1:
        raise RetrainError(f"recent_weight={recent_weight}: expected at least 1")
    if not 0 < holdout_share < 1:
        raise RetrainError(f"holdout_share={holdout_share}: expected between 0 and 1")
    if holdout_days < 1:
        raise RetrainError(f"holdout_days={holdout_days}: expected at least 1")
    try:
        champion = read_current(artifacts)
    except ArtifactError as exc:
        raise RetrainError(str(exc)) from None
    if champion is None:
        raise RetrainError(f"{artifacts / 'current'}: no such file: no champion to compare with")
    recent = recent_outcomes(store, min_outcomes, holdout_share, seed, holdout_days)
    console.print(recent.split_line(), highlight=False)
    holdout, holdout_user_ids = recent.holdout, recent.holdout_users
    try:
        base = load_history(history, on_bad_line="skip").records
    except HistoryError as exc:
        raise RetrainError(str(exc)) from None
    rng = np.random.default_rng(seed)
    base_kept = [
        r for r, keep in zip(base, rng.random(len(base)) < 1 / recent_weight, strict=True) if keep
    ]
    mix = base_kept + recent.train
    window = recent.window(base_rows=len(base_kept), recent_weight=recent_weight)
    if settings is None:
        settings = FitSettings.quick(seed) if quick else FitSettings(seed=seed)
    training_data = TrainingData(
        path=f"{history} (1 in {recent_weight:g} kept) + {recent.source} outcomes",
        sha256=records_digest(mix),
        rows=len(mix),
    )
    with console.status("training the challenger (the code `just train` runs)"):
        try:
            result = train_models(dataset_from_records(mix), training_data, settings)
        except TrainError as exc:
            raise RetrainError(str(exc)) from None

    features = encode_scans(holdout)
    champion_folder = version_dir(artifacts, champion)
    try:
        champion_model = champion_folder / read_manifest(champion_folder / MANIFEST_FILE).model_file
        champion_session = open_session(champion_model)
        champion_out = run_graph(champion_session, features)
    except (GraphError, ManifestError) as exc:
        raise RetrainError(f"champion {champion}: {exc}") from None
    # The challenger's graph is checked against these very scikit-learn outputs at export.
    challenger_out = predict_outputs(result.models, features)
    scored = evaluate_holdout(holdout, holdout_user_ids, champion_out, challenger_out)
    try:
        differences = holdout_differences(scored)
    except CompareError as exc:
        raise RetrainError(str(exc)) from None
    checks = holdout_coverage(scored, "challenger")
    # The graph export will write (build_graph is deterministic), timed before it is written,
    # so the comparison goes into the manifest with it and the version is never rewritten.
    challenger_graph = build_graph(result.models).SerializeToString()
    checks.update(one_row_costs(champion_model, challenger_graph, features))
    checks.update({f"champion_{k}": v for k, v in holdout_coverage(scored, "champion").items()})
    comparison = decide(champion, differences, checks)
    try:
        exported = export_version(
            result,
            artifacts,
            min_parity_rows=0 if quick else MIN_PARITY_ROWS,
            point=False,
            data_window=window,
            comparison=comparison,
        )
    except (ParityError, GraphError, ArtifactError) as exc:
        raise RetrainError(f"challenger export failed: {exc}") from None
    report = write_report(
        out / exported.manifest.version, exported.manifest.version, comparison, window, scored
    )
    promoted = False
    if comparison.promote and promote_winner:
        try:
            # The targets are bars on the generated default data; the rule above is the bar here.
            promote(artifacts, exported.manifest.version, targets=False)
        except LifecycleError as exc:
            raise RetrainError(str(exc)) from None
        promoted = True
    return RetrainResult(
        challenger=exported.manifest.version,
        folder=exported.folder,
        comparison=comparison,
        promoted=promoted,
        report=report,
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m train.retrain", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=os.environ.get("SCANOPT_STORE_DSN", _DEFAULT_STORE))
    parser.add_argument("--history", type=Path, default=Path("data/scan_history.jsonl"))
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("var/retrain"))
    parser.add_argument("--recent-weight", type=float, default=4.0)
    parser.add_argument("--holdout-share", type=float, default=0.3)
    parser.add_argument(
        "--holdout-days",
        type=int,
        default=1,
        help="the holdout is the held-out users' scans on the latest this many dates (UTC) "
        "with outcomes; the challenger trains on the other users' scans before them",
    )
    parser.add_argument("--min-outcomes", type=int, default=MIN_OUTCOMES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny models (tests, smoke runs)")
    parser.add_argument("--no-promote", action="store_true", help="compare and report only")
    parser.add_argument(
        "--recalibrate-only",
        action="store_true",
        help="keep the champion's point models; refit only the interval widenings and the "
        "p_empty calibration on the outcomes (--history, --recent-weight, --quick unused)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        if args.recalibrate_only:
            from train.recalibrate import recalibrate  # it builds on this module

            done = recalibrate(
                args.store,
                args.artifacts,
                args.out,
                holdout_share=args.holdout_share,
                holdout_days=args.holdout_days,
                min_outcomes=args.min_outcomes,
                seed=args.seed,
                promote_winner=not args.no_promote,
                console=console,
            )
        else:
            done = retrain(
                args.store,
                args.history,
                args.artifacts,
                args.out,
                recent_weight=args.recent_weight,
                holdout_share=args.holdout_share,
                holdout_days=args.holdout_days,
                min_outcomes=args.min_outcomes,
                seed=args.seed,
                quick=args.quick,
                promote_winner=not args.no_promote,
                console=console,
            )
    except (RetrainError, OutcomeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    c = done.comparison
    console.print(f"rule: {c.rule}", highlight=False)
    for reason in c.reasons:
        console.print(f"  {reason}", highlight=False)
    for name, value in c.checks.items():
        console.print(f"  {name}: {value:.4g}", highlight=False)
    state = "promoted: current -> " if done.promoted else "not promoted; written as "
    console.print(f"challenger {state}{done.challenger}; report {done.report}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
