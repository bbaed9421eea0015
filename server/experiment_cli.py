"""`python -m server.experiment_cli` (`just experiment ...`): show and change experiments.

    just experiment show                          every experiment, with its bucket ranges
    just experiment show ml_scanning --json       one, as the API serves it
    just experiment set ml_scanning --coverage 0.1 --weights control=0.5,treatment=0.5
    just experiment kill ml_scanning              kill switch on: ML off within 2 s
    just experiment resume ml_scanning            kill switch off
    just experiment usage --days 7                usage analytics per arm

It talks to the store named by SCANOPT_STORE_DSN (or --dsn) directly, so it works with
the servers down too; running servers pick a change up within SCANOPT_EXPERIMENT_CACHE_S.
Changes follow the same rules as PUT /v1/admin/experiments/{name}. Exit status: 0 done,
1 the store or the experiment cannot be found, 2 a refused value.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from rich.console import Console
from rich.table import Table

from server.errors import InvalidInputError, ScanoptError, StoreUnavailableError
from server.experiments.assignment import BUCKETS, bucket_ranges
from server.experiments.config import DEFAULT_EXPERIMENT, ExperimentConfig, ExperimentUpdate
from server.settings import Settings
from server.store import open_store

__all__ = ["main", "parse_weights"]


def parse_weights(text: str) -> dict[str, float]:
    """`control=0.4,treatment=0.6` as a mapping; ValueError naming the bad part."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"{part!r}: expected arm=weight, e.g. control=0.5,treatment=0.5")
    if not weights:
        raise ValueError(f"{text!r}: expected arm=weight pairs, e.g. control=0.5,treatment=0.5")
    return weights


def _weights_argument(text: str) -> dict[str, float]:
    try:
        return parse_weights(text)
    except ValueError as exc:  # argparse shows only this type's message
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="experiment", description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", help="store DSN (default: SCANOPT_STORE_DSN)")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print experiment configs")
    show.add_argument("name", nargs="?", help="one experiment (default: all)")
    show.add_argument("--json", action="store_true", help="print JSON as the API does")
    change = commands.add_parser("set", help="change coverage, weights or the kill switch")
    change.add_argument("name")
    change.add_argument("--coverage", type=float, help="rollout share, 0 to 1")
    change.add_argument("--weights", type=_weights_argument, help="arm=weight,... summing to 1")
    change.add_argument("--kill-switch", choices=("on", "off"), help="ML off (on) or back")
    change.add_argument(
        "--force",
        action="store_true",
        help="allow lowering a running experiment's coverage (moves users out of their arms)",
    )
    for verb, text in (("kill", "kill switch on: ML off"), ("resume", "kill switch off")):
        sub = commands.add_parser(verb, help=text)
        sub.add_argument("name", nargs="?", default=DEFAULT_EXPERIMENT)
    usage = commands.add_parser("usage", help="usage analytics per arm")
    usage.add_argument("--days", type=float, default=7.0, help="window ending now (days)")
    return parser


def _table(configs: Sequence[ExperimentConfig]) -> Table:
    table = Table(
        "experiment", "arm", "weight", f"buckets of {BUCKETS}", "coverage", "kill", "version"
    )
    for config in configs:
        ranges = bucket_ranges([a.weight for a in config.arms], config.coverage)
        for i, (arm, (start, end)) in enumerate(zip(config.arms, ranges, strict=True)):
            first = i == 0
            table.add_row(
                config.name if first else "",
                arm.name,
                f"{arm.weight:g}",
                f"[{start}, {end})",
                f"{config.coverage:g}" if first else "",
                ("ON" if config.kill_switch else "off") if first else "",
                str(config.version) if first else "",
            )
    return table


async def _run(args: argparse.Namespace, console: Console) -> None:
    dsn = args.dsn or Settings.from_env().store_dsn
    store = await open_store(dsn, pool_size=1)
    try:
        now = datetime.now(UTC)
        if args.command == "show":
            configs = (
                [await store.get_experiment(args.name)]
                if args.name
                else await store.list_experiments()
            )
            if args.json:
                console.print_json(msgspec.json.encode(configs).decode())
            else:
                console.print(_table(configs))
            return
        if args.command == "usage":
            report = await store.usage(now - timedelta(days=args.days), now)
            console.print_json(msgspec.json.encode(report).decode())
            return
        if args.command in ("kill", "resume"):
            update = ExperimentUpdate(kill_switch=args.command == "kill")
        else:
            kill = None if args.kill_switch is None else args.kill_switch == "on"
            update = msgspec.convert(
                {
                    "coverage": args.coverage,
                    "weights": args.weights,
                    "kill_switch": kill,
                    "force": args.force,
                },
                ExperimentUpdate,
            )
        config = await store.update_experiment(args.name, update, now)
        console.print(_table([config]))
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status says how it went."""
    args = _parser().parse_args(argv)
    console, errors = Console(), Console(stderr=True, soft_wrap=True)
    try:
        asyncio.run(_run(args, console))
    except (InvalidInputError, msgspec.ValidationError) as exc:
        errors.print(f"experiment: refused: {exc}", markup=False)
        return 2
    except (StoreUnavailableError, ScanoptError) as exc:
        errors.print(f"experiment: {exc}", markup=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
