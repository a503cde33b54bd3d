"""The report on a directory of runs: ``report.md`` beside ``curves.png`` and ``aggregate.png``.

``report.md`` holds the final-score table per game × arm (the mean of each run's last K games,
then the mean over seeds with its 95% CI and n) with the per-game comparison of the two arms,
each run's final score, the human-normalised aggregate, the settings, and every planned run that
is missing or unfinished. Runs whose budgets or settings differ are not averaged together unless
asked; unfinished runs are left out and listed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl_coordconv.envs.catch import CATCH
from rl_coordconv.figures import budget_label, plot_aggregate, plot_curves
from rl_coordconv.results import Run, check_consistent, load_runs
from rl_coordconv.runs import RunStateError
from rl_coordconv.stats import (
    MIN_SEEDS_FOR_VERDICT,
    Scores,
    aggregate,
    bootstrap_ci,
    compare,
    final_scores,
    permutation_p,
)

__all__ = ["make_report"]

# How titles spell an algorithm whose name is not just its registry key in capitals (a2c → A2C).
_ALGO_NAMES = {"apex": "Ape-X", "qrdqn": "QR-DQN"}


@dataclass(frozen=True)
class _Grid:
    """The finished runs a report averages, and the games × arms × seeds they were planned to fill."""

    runs: list[Run]
    unfinished: list[Run]
    games: list[str]  # planned or found, in alphabetical order
    arms: list[str]  # conv first: the baseline of every comparison (then the pooled head's arms, conv_pool first)
    seeds: list[int]
    missing: list[tuple[str, str, int]]  # (game, arm, seed) with no run directory at all


def _grid(
    root: Path, algo: str | None, allow_mixed: bool, expect_games: list[str] | None, expect_seeds: list[int] | None
) -> _Grid:
    """Load one algorithm's runs under ``root`` and lay them out on the planned grid.

    :raises RunStateError: when there is no run, no run of ``algo``, or no finished run
    :raises ValueError: when runs of several algorithms, or (unless ``allow_mixed``) of different
        settings, are found
    """
    all_runs = load_runs(root)
    if algo is not None:
        all_runs = [r for r in all_runs if r.algo == algo]
        if not all_runs:
            raise RunStateError(f"no {algo} runs under {root}")
    if expect_games is not None or expect_seeds is not None:  # the planned grid only: other runs may differ
        all_runs = [r for r in all_runs if _planned(r.game, expect_games) and _planned(r.seed, expect_seeds)]
        if not all_runs:
            raise RunStateError(f"no runs of the planned games and seeds under {root}")
    algos = sorted({r.algo for r in all_runs})
    if len(algos) > 1:
        raise ValueError(f"runs of several algorithms under {root} ({', '.join(algos)}); pick one with --algo")
    unfinished = [r for r in all_runs if not r.finished]
    runs = [r for r in all_runs if r.finished]
    if not runs:
        raise RunStateError(f"no finished run under {root} ({len(unfinished)} unfinished)")
    if not allow_mixed:
        check_consistent(runs)
    games = sorted({r.game for r in runs} | set(expect_games or ()), key=lambda g: g.lower())
    # flatten-head arms, then pooled ones; within each, the conv arm first (the baseline)
    arms = sorted({r.arm for r in runs}, key=lambda a: (a.endswith("_pool"), a.removesuffix("_pool") != "conv", a))
    seeds = sorted({r.seed for r in all_runs} | set(expect_seeds or ()))
    present = {(r.game, r.arm, r.seed) for r in all_runs}
    missing = [(g, a, s) for g in games for a in arms for s in seeds if (g, a, s) not in present]
    return _Grid(runs, unfinished, games, arms, seeds, missing)


def _planned(value: object, planned: Collection[object] | None) -> bool:
    """Whether a run's game or seed is in the plan (no plan: every one is)."""
    return planned is None or value in planned


def _make_writable(out: Path) -> None:
    """Create ``out``, so that a bad ``--out`` fails with one line before any figure is drawn."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file of that name, no permission
        raise ValueError(f"cannot write to {out}: {error.strerror or error}") from error
    if not os.access(out, os.W_OK):
        raise ValueError(f"cannot write to {out}: permission denied")


def _fmt(ci: tuple[float, ...], digits: int = 1) -> str:
    """``point [low, high]``, or the point alone when there is no interval."""
    point, low, high = ci
    if np.isnan(low):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _header(title: str, budget: int, command: str, grid: _Grid, root: Path, curves: Path) -> list[str]:
    return [
        f"# {title}: conv vs CoordConv, {budget_label(budget)} per run",
        "",
        f"Made by `{command}` from {len(grid.runs)} finished runs under `{root}`.",
        "",
        f"![learning curves]({curves.name})",
        "",
    ]


def _comparison(scores: Scores, game: str, arms: list[str], digits: int = 1) -> list[str]:
    """The cells comparing two arms on one game: difference [95% CI], permutation p, verdict."""
    if not all((game, a) in scores for a in arms):
        return ["–", "–", "missing runs"]
    verdict, diff = compare(scores, game, arms)
    p = permutation_p(scores[(game, arms[1])], scores[(game, arms[0])])
    return [_fmt(diff, digits), "–" if np.isnan(p) else f"{p:.2f}", verdict]


def _digits(scores: Scores) -> int:
    """Decimals for scores: 1 for Atari's, 2 when every score lies within ±1 (Catch)."""
    return 2 if scores and all(np.all(np.abs(values) <= 1) for values in scores.values()) else 1


def _final_score_table(scores: Scores, grid: _Grid, last_k: int) -> list[str]:
    """Seed means with their CIs per game × arm and, for two arms, the per-game comparison."""
    arms, digits = grid.arms, _digits(scores)
    lines = [
        f"Final score: the mean raw return of each run's last {last_k} games, then the mean over seeds"
        " with its 95% percentile-bootstrap CI over seeds and the number of seeds n. Verdict: the"
        " 95% bootstrap CI of the difference of seed means excludes 0 (better / worse) or not, given"
        f" at least {MIN_SEEDS_FOR_VERDICT} seeds per arm. With a handful of seeds a percentile bootstrap is"
        " narrower than a true 95% interval, so p is also given: an exact two-sided permutation test"
        " of equal means over all splits of the pooled seeds. With 3 seeds per arm p cannot go below"
        " 0.1, so a 3-seed 'better' or 'worse' is a lead for more seeds, not a finding.",
        "",
    ]
    header = "| game | " + " | ".join(f"{arm} [95% CI] (n)" for arm in arms)
    if len(arms) == 2:
        header += f" | {arms[1]} − {arms[0]} [95% CI] | p | verdict"
    lines += [header + " |", "|---" * (len(arms) + 1 + 3 * (len(arms) == 2)) + "|"]
    for game in grid.games:
        row = [game]
        for arm in arms:
            values = scores.get((game, arm))
            row.append("–" if values is None else f"{_fmt(bootstrap_ci([values], np.mean), digits)} ({len(values)})")
        if len(arms) == 2:
            row += _comparison(scores, game, arms, digits)
        lines.append("| " + " | ".join(row) + " |")
    if len(arms) > 2 and (pairs := _pairs(arms)):
        lines += ["", "Each CoordConv arm against the conv arm with the same head:", ""]
        lines += ["| game | comparison | difference [95% CI] | p | verdict |", "|---|---|---|---|---|"]
        for game in grid.games:
            for pair in pairs:
                lines.append(
                    f"| {game} | {pair[1]} − {pair[0]} | " + " | ".join(_comparison(scores, game, pair, digits)) + " |"
                )
    return lines


def _pairs(arms: list[str]) -> list[list[str]]:
    """[baseline, arm] for each CoordConv arm whose conv arm with the same head is among ``arms``."""
    pairs = []
    for arm in arms:
        baseline = "conv_pool" if arm.endswith("_pool") else "conv"
        if arm.startswith("coordconv") and baseline in arms:
            pairs.append([baseline, arm])
    return pairs


def _per_seed_table(grid: _Grid, last_k: int, digits: int = 1) -> list[str]:
    """Each run's final score by seed, so that a reader sees what the means are made of."""
    per_seed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run in sorted(grid.runs, key=lambda r: r.seed):
        if len(run.returns):
            per_seed[(run.game, run.arm)].append(f"{run.seed}: {run.returns[-last_k:].mean():.{digits}f}")
    lines = ["", "Each run's final score (seed: score):", "", "| game | " + " | ".join(grid.arms) + " |"]
    lines += ["|---" * (len(grid.arms) + 1) + "|"]
    for game in grid.games:
        cells = (", ".join(per_seed[(game, arm)]) or "–" for arm in grid.arms)
        lines.append(f"| {game} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _aggregate_section(agg: dict[str, Any], scores: Scores, arms: list[str], figure: Path | None) -> list[str]:
    """Human-normalised IQM, mean and P(improvement); nothing when no game has reference scores."""
    if not agg.get("games"):
        return []
    games = agg["games"]
    lines = [
        f"## Aggregate over {len(games)} game{'s' if len(games) != 1 else ''} (human-normalised)",
        "",
        "Human-normalised score = (score − random) / (human − random), with the random and human"
        " scores of the standard Atari-57 table (Mnih et al. 2015, as in Wang et al. 2016 and"
        " DeepMind's DQN Zoo). IQM = mean of the middle 50% of all run × game scores. CIs: 95%"
        " stratified bootstrap (seeds resampled within each game), scipy.stats.bootstrap.",
        "",
        "| arm | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|",
    ]
    lines += [f"| {arm} | {_fmt(agg[arm]['iqm'], 3)} | {_fmt(agg[arm]['mean'], 3)} |" for arm in arms]
    if "p_improvement" in agg:
        lines += ["", f"P({arms[1]} > {arms[0]}) = {_fmt(agg['p_improvement'], 2)}"]
    if any(len(scores[(g, a)]) < 2 for g in games for a in arms):
        lines += [
            "",
            "Some games have a single seed: no interval is shown where one cannot be computed, and"
            " with one seed per game the aggregate and P(improvement) are point estimates that say"
            " nothing about seed-to-seed variability.",
        ]
    if figure is not None:
        lines += ["", f"![aggregate]({figure.name})"]
    if agg["skipped"]:
        lines += ["", f"Not in the aggregate (no reference scores or a missing arm): {', '.join(agg['skipped'])}."]
    lines.append("")
    return lines


def _settings_section(grid: _Grid) -> list[str]:
    """The settings every averaged run shares (the first run's, when mixing was allowed) and the seeds."""
    lines = ["## Settings", ""]
    lines += [f"- {key}: `{value}`" for key, value in grid.runs[0].settings().items()]
    lines += [f"- seeds: {', '.join(map(str, grid.seeds))}", ""]
    return lines


def _missing_section(grid: _Grid) -> list[str]:
    """Planned runs not made and unfinished runs left out; nothing when the grid is complete."""
    if not (grid.missing or grid.unfinished):
        return []
    lines = ["## Missing and unfinished runs", ""]
    lines += [f"- missing: {g}/{a}/seed{s}" for g, a, s in grid.missing]
    lines += [f"- unfinished ({r.agent_steps:,} steps), left out: {r.path}" for r in grid.unfinished]
    lines.append("")
    return lines


def make_report(
    root: Path,
    out: Path,
    last_k: int = 100,
    bins: int = 50,
    smooth: int = 1,
    allow_mixed: bool = False,
    algo: str | None = None,
    command: str | None = None,
    expect_games: list[str] | None = None,
    expect_seeds: list[int] | None = None,
) -> Path:
    """Figures and ``report.md`` for the runs under ``root``, written to ``out``.

    :param last_k: games at the end of a run that make its final score
    :param bins: frame bins of the learning curves
    :param smooth: moving average over this many bins (1: none)
    :param allow_mixed: average runs with different settings anyway
    :param algo: only this algorithm's runs (required when ``root`` holds several)
    :param command: the command line the report says it was made by
    :param expect_games: the planned games: only their runs are reported, and runs not (yet) made
        are listed as missing; by default every game found
    :param expect_seeds: the planned seeds, likewise; by default every seed found
    :return: the path of ``report.md``
    :raises RunStateError: when there are no (finished) runs to report on
    :raises ValueError: on a non-positive count, runs that may not be averaged, or an unwritable ``out``
    """
    if last_k < 1 or bins < 1 or smooth < 1:
        raise ValueError(f"--last-k, --bins and --smooth must be positive, got {last_k}, {bins}, {smooth}")
    grid = _grid(root, algo, allow_mixed, expect_games, expect_seeds)
    _make_writable(out)

    algo_key = grid.runs[0].algo
    found = {r.game for r in grid.runs}
    title = f"{_ALGO_NAMES.get(algo_key, algo_key.upper())} on {'Catch' if found == {CATCH} else 'Atari'}"
    budget = max(r.budget_frames for r in grid.runs)
    curves = plot_curves(grid.runs, [g for g in grid.games if g in found], grid.arms, out, bins, smooth, title)
    scores = final_scores(grid.runs, last_k)
    agg = aggregate(scores, grid.arms, grid.games)
    agg_figure = plot_aggregate(agg, scores, grid.arms, out, title, budget)
    lines = [
        *_header(title, budget, command or "python -m rl_coordconv.plot", grid, root, curves),
        *_final_score_table(scores, grid, last_k),
        *_per_seed_table(grid, last_k, _digits(scores)),
        *_aggregate_section(agg, scores, grid.arms, agg_figure),
        *_settings_section(grid),
        *_missing_section(grid),
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
