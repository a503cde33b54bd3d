"""Seed-averaged learning curves, final-score tables and aggregate scores: ``python -m rl_coordconv.plot``.

    python -m rl_coordconv.plot runs --out results/atari

Reads every run's ``config.yaml`` and ``episodes.csv`` under a runs directory (only those of the
games and seeds given with ``--games`` and ``--seeds``, if given) and writes

- ``curves.png``: per game, raw return vs frames for each arm: the mean over seeds with a 95%
  percentile-bootstrap confidence band over seeds, seed counts in the legend, budget in the title;
- ``aggregate.png``: human-normalised IQM and mean per arm, and the probability of improvement,
  with 95% stratified-bootstrap confidence intervals;
- ``report.md``: the final-score table per game × arm (mean of each run's last K games, then the
  mean over seeds with its 95% CI and n), the per-game comparison, the aggregate, the settings,
  and every expected run that is missing or unfinished.

Curves are not smoothed unless ``--smooth`` says so; they are always binned (each run's mean
return of the games that end in each frame bin), which the figure states. Runs whose budgets or
settings differ are not averaged together (``--allow-mixed`` overrides); unfinished runs are
left out and listed. The work is done by :mod:`rl_coordconv.report` (the report),
:mod:`rl_coordconv.figures`, :mod:`rl_coordconv.stats` and :mod:`rl_coordconv.results`
(loading and exporting runs); this module only parses the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rl_coordconv.cli import HelpFormatter
from rl_coordconv.report import make_report
from rl_coordconv.results import export_runs
from rl_coordconv.runs import RunStateError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rl_coordconv.plot",
        description="Seed-averaged curves (95% bootstrap CIs), final-score tables and human-normalised aggregates.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("runs_dir", type=Path, help="a runs directory, e.g. runs/ or results/atari/runs/")
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures and report.md")
    parser.add_argument("--algo", default=None, help="only this algorithm's runs")
    parser.add_argument("--last-k", type=int, default=100, help="games at the end of a run that make its final score")
    parser.add_argument("--bins", type=int, default=50, help="frame bins of the learning curves")
    parser.add_argument("--smooth", type=int, default=1, help="moving average over this many bins (1: none)")
    parser.add_argument("--allow-mixed", action="store_true", help="average runs with different settings anyway")
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        help="also copy the finished runs' small artefacts here (only those --algo, --games and --seeds select)",
    )
    parser.add_argument(
        "--games", nargs="+", default=None, help="report only these games (or atari9); list their missing runs"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="report only these seeds; list missing runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write the report; return 0, or 2 after a one-line error on stderr."""
    args = build_parser().parse_args(argv)
    command = "python -m rl_coordconv.plot " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        expect_games = None
        if args.games is not None:
            from rl_coordconv.envs import resolve_games  # imports ALE: only when asked

            expect_games = resolve_games(args.games)
        report = make_report(
            args.runs_dir,
            args.out,
            args.last_k,
            args.bins,
            args.smooth,
            args.allow_mixed,
            args.algo,
            command,
            expect_games=expect_games,
            expect_seeds=args.seeds,
        )
        if args.export is not None:
            copied = export_runs(args.runs_dir, args.export, args.algo, expect_games, args.seeds)
            print(f"copied {copied} finished runs' small artefacts to {args.export}")
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report} and figures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
