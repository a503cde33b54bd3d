"""Seed-averaged learning curves, final-score tables and aggregate scores: ``python -m rl_coordconv.plot``.

    python -m rl_coordconv.plot runs --out results/atari

Reads every run's ``config.yaml`` and ``episodes.csv`` under a runs directory and writes

- ``curves.png``: per game, raw return vs frames for each arm: the mean over seeds with a 95%
  percentile-bootstrap confidence band over seeds, seed counts in the legend, budget in the title;
- ``aggregate.png``: human-normalised IQM and mean per arm, and the probability of improvement,
  with 95% stratified-bootstrap confidence intervals;
- ``report.md``: the final-score table per game × arm (mean of each run's last K games, then the
  mean over seeds with its 95% CI and n), the per-game comparison, the aggregate, the settings,
  and every expected run that is missing or unfinished.

Statistics come from ``scipy.stats`` (``bootstrap``, ``trim_mean``); rliable does not import with
this project's pandas/arch versions. Curves are not smoothed unless ``--smooth`` says so; they
are always binned (each run's mean return of the games that end in each frame bin), which the
figure states. Runs whose budgets or settings differ are not averaged together (``--allow-mixed``
overrides); unfinished runs are left out and listed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rl_coordconv.cli import HelpFormatter
from rl_coordconv.runs import SCALARS_FILE, RunDir, RunStateError, read_episodes, write_scalars

__all__ = [
    "HUMAN_SCORES",
    "Run",
    "aggregate",
    "bootstrap_ci",
    "export_runs",
    "final_scores",
    "load_runs",
    "main",
    "make_report",
    "permutation_p",
]

# How titles spell an algorithm whose name is not just its registry key in capitals (a2c → A2C).
_ALGO_NAMES = {"apex": "Ape-X", "qrdqn": "QR-DQN"}

# (random, human) scores, the standard Atari-57 table (Mnih et al. 2015, as used by Wang et al. 2016
# and DeepMind's DQN Zoo, atari_data.py); only the games this project has reference scores for.
HUMAN_SCORES: dict[str, tuple[float, float]] = {
    "Asteroids": (719.1, 47388.7),
    "BankHeist": (14.2, 753.1),
    "BeamRider": (363.9, 16926.5),
    "Breakout": (1.7, 30.5),
    "MsPacman": (307.3, 6951.6),
    "Pong": (-20.7, 14.6),
    "Qbert": (163.9, 13455.0),
    "Seaquest": (68.4, 42054.7),
    "SpaceInvaders": (148.0, 1668.7),
}

_SETTINGS = ("algo", "timesteps", "n_envs", "hyperparams", "env_backend", "protocol")


@dataclass
class Run:
    """One run's identity, settings and finished games."""

    path: Path
    algo: str
    game: str
    arm: str
    seed: int
    config: dict[str, Any]
    finished: bool
    agent_steps: int
    frames: np.ndarray = field(repr=False)
    returns: np.ndarray = field(repr=False)

    def settings(self) -> dict[str, Any]:
        return {key: self.config.get(key) for key in _SETTINGS}

    @property
    def budget_frames(self) -> int:
        return int(self.config["timesteps"]) * int(self.config.get("protocol", {}).get("frame_skip", 4))


def load_runs(root: Path) -> list[Run]:
    """Every run directory (holding ``config.yaml``) under ``root``.

    :raises RunStateError: when there is none
    """
    if not root.is_dir():
        raise RunStateError(f"runs directory {root} does not exist")
    runs = []
    for config_path in sorted(root.rglob("config.yaml")):
        run_dir = RunDir(config_path.parent)
        config = run_dir.read_config()
        if not {"algo", "game", "seed", "timesteps"} <= set(config):
            continue
        rows = list(read_episodes(run_dir.episodes_path)) if run_dir.episodes_path.exists() else []
        state = run_dir.read_state()
        runs.append(
            Run(
                path=run_dir.path,
                algo=str(config["algo"]),
                game=str(config["game"]),
                arm=str(config.get("arm", "coordconv" if config.get("coordconv") else "conv")),
                seed=int(config["seed"]),
                config=config,
                finished=state.get("status") == "finished",
                agent_steps=int(state.get("agent_steps", 0)),
                frames=np.array([float(r["frames"]) for r in rows]),
                returns=np.array([float(r["return"]) for r in rows]),
            )
        )
    if not runs:
        raise RunStateError(f"no runs (directories with config.yaml) under {root}")
    return runs


def bootstrap_ci(
    samples: Sequence[np.ndarray], statistic: Callable[..., Any], seed: int = 0, resamples: int = 5000
) -> tuple[float, float, float]:
    """Point estimate and 95% percentile-bootstrap interval of ``statistic(*samples)``.

    Each sample is resampled on its own (a stratified bootstrap when there are several).
    ``statistic`` takes the samples and an ``axis`` keyword (scipy's vectorised form).
    With fewer than two values in some sample there is no interval: (x, nan, nan).
    """
    point = float(statistic(*samples, axis=-1))
    if min(len(s) for s in samples) < 2:
        return point, float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (all-equal) resamples are fine here
        result = stats.bootstrap(
            tuple(np.asarray(s, dtype=float) for s in samples),
            statistic,
            n_resamples=resamples,
            confidence_level=0.95,
            method="percentile",
            vectorized=True,
            paired=False,
            rng=np.random.default_rng(seed),
        )
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def final_scores(runs: list[Run], last_k: int) -> dict[tuple[str, str], np.ndarray]:
    """(game, arm) → per-seed final score: the mean raw return of each run's last ``last_k`` games."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.seed):
        if len(run.returns):
            scores[(run.game, run.arm)].append(float(run.returns[-last_k:].mean()))
    return {key: np.array(values) for key, values in scores.items()}


def human_normalised(game: str, score: np.ndarray) -> np.ndarray:
    random, human = HUMAN_SCORES[game]
    return (score - random) / (human - random)


def _iqm(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)


def _mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate(samples, axis=axis), axis=axis)


def _probability_of_improvement(*pairs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over games of P(X > Y) (ties count a half); ``pairs`` alternates X_g, Y_g."""
    values = []
    for x, y in zip(pairs[0::2], pairs[1::2], strict=True):
        x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
        values.append((x > y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1)))
    return np.mean(values, axis=0)


def aggregate(scores: dict[tuple[str, str], np.ndarray], arms: list[str], games: list[str]) -> dict[str, Any]:
    """Human-normalised IQM and mean per arm, and P(arms[1] > arms[0]), with 95% stratified-bootstrap CIs."""
    usable = [g for g in games if g in HUMAN_SCORES and all((g, a) in scores for a in arms)]
    result: dict[str, Any] = {"games": usable, "skipped": [g for g in games if g not in usable]}
    if not usable:
        return result
    for arm in arms:
        per_game = [human_normalised(g, scores[(g, arm)]) for g in usable]
        result[arm] = {"iqm": bootstrap_ci(per_game, _iqm), "mean": bootstrap_ci(per_game, _mean)}
    if len(arms) == 2:
        pairs = []
        for g in usable:
            pairs += [scores[(g, arms[1])], scores[(g, arms[0])]]
        result["p_improvement"] = bootstrap_ci(pairs, _probability_of_improvement)
    return result


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


MIN_SEEDS_FOR_VERDICT = 3


def permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of an exact permutation test of equal means (every split of the pooled seeds).

    With 3 seeds per arm there are 20 splits, so p ≥ 0.1: a per-game difference cannot reach
    p < 0.05 with 3 seeds however the runs fall, which the bootstrap interval alone hides.
    """
    if min(len(a), len(b)) < 2:
        return float("nan")
    result = stats.permutation_test(
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float)),
        _difference,
        permutation_type="independent",
        alternative="two-sided",
        vectorized=True,
        n_resamples=100_000,  # more than the splits of any grid here: the test is exact
    )
    return float(result.pvalue)


def compare(scores: dict[tuple[str, str], np.ndarray], game: str, arms: list[str]) -> tuple[str, tuple[float, ...]]:
    """Verdict for arms[1] vs arms[0] on one game from the 95% CI of the difference of seed means.

    Below ``MIN_SEEDS_FOR_VERDICT`` seeds in an arm there is no verdict: with 2 seeds each the
    percentile bootstrap excludes 0 whenever one arm's two runs both beat the other's, which
    happens by chance one time in three.
    """
    a, b = scores[(game, arms[1])], scores[(game, arms[0])]
    diff = bootstrap_ci([a, b], _difference)
    if min(len(a), len(b)) < MIN_SEEDS_FOR_VERDICT:
        return f"cannot tell (fewer than {MIN_SEEDS_FOR_VERDICT} seeds)", diff
    if diff[1] > 0:
        return "better", diff
    if diff[2] < 0:
        return "worse", diff
    return "similar (CI includes 0)", diff


def binned_curve(run: Run, edges: np.ndarray) -> np.ndarray:
    """Mean return of the games ending in each frame bin, the last value carried over empty bins."""
    index = np.digitize(run.frames, edges[1:-1], right=True)
    curve = np.full(len(edges) - 1, np.nan)
    for b in range(len(curve)):
        mask = index == b
        if mask.any():
            curve[b] = run.returns[mask].mean()
        elif b > 0:
            curve[b] = curve[b - 1]
    return curve


def _smooth(curve: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return curve
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, curve[0]), curve])
    return np.convolve(padded, kernel, mode="valid")


def _fmt(ci: tuple[float, ...], digits: int = 1) -> str:
    point, low, high = ci
    if np.isnan(low):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _budget_label(frames: int) -> str:
    return f"{frames / 1e6:g}M frames" if frames >= 1e6 else f"{frames / 1e3:g}k frames"


def plot_curves(
    runs: list[Run], games: list[str], arms: list[str], out: Path, bins: int, smooth: int, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = int(np.ceil(np.sqrt(len(games))))
    rows = int(np.ceil(len(games) / cols))
    # at least two panels wide, so that the two-line title fits above a single game
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.2 * cols, 8.4), 3.2 * rows), squeeze=False)
    budget = max(run.budget_frames for run in runs)
    edges = np.linspace(0, budget, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = {arm: f"C{i}" for i, arm in enumerate(arms)}
    for ax, game in zip(axes.flat, games, strict=False):
        for arm in arms:
            members = [r for r in runs if r.game == game and r.arm == arm and len(r.returns)]
            if not members:
                continue
            curves = np.array([_smooth(binned_curve(r, edges), smooth) for r in members])
            seen = (~np.isnan(curves)).any(axis=0)  # bins before any run's first game stay blank
            mean = np.full(curves.shape[1], np.nan)
            mean[seen] = np.nanmean(curves[:, seen], axis=0)
            ax.plot(centres / 1e6, mean, color=colours[arm], label=f"{arm} (n={len(members)})")
            if len(members) >= 2:
                low, high = np.full_like(mean, np.nan), np.full_like(mean, np.nan)
                for b in range(len(mean)):
                    column = curves[:, b][~np.isnan(curves[:, b])]
                    if len(column) >= 2:
                        _, low[b], high[b] = bootstrap_ci([column], np.mean, seed=b, resamples=1000)
                ax.fill_between(centres / 1e6, low, high, color=colours[arm], alpha=0.2, linewidth=0)
        ax.set_title(game)
        ax.set_xlabel("frames (millions)")
        ax.set_ylabel("raw return")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(games) :]:
        ax.axis("off")
    smoothing = f", moving average over {smooth} bins" if smooth > 1 else ", no smoothing"
    fig.suptitle(
        f"{title}: {_budget_label(budget)} per run; mean over seeds, 95% bootstrap CI over seeds;\n"
        f"each run binned into {bins} bins of {budget / bins / 1e3:g}k frames{smoothing}",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_aggregate(result: dict[str, Any], arms: list[str], out: Path, title: str) -> Path | None:
    if not result.get("games"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("iqm", "IQM"), ("mean", "mean")] + ([("p", "P(improvement)")] if "p_improvement" in result else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        if key == "p":
            point, low, high = result["p_improvement"]
            ax.errorbar([point], [0], xerr=[[point - low], [high - point]], fmt="o", capsize=4)
            ax.axvline(0.5, color="grey", linestyle=":")
            ax.set_yticks([0], [f"{arms[1]} > {arms[0]}"])
            ax.set_xlim(0, 1)
        else:
            for i, arm in enumerate(arms):
                point, low, high = result[arm][key]
                ax.errorbar([point], [i], xerr=[[point - low], [high - point]], fmt="o", color=f"C{i}", capsize=4)
            ax.set_yticks(range(len(arms)), arms)
            ax.set_ylim(-0.7, len(arms) - 0.3)
        ax.set_title(f"{label} (95% CI)", fontsize=9)
        ax.set_xlabel("human-normalised score" if key != "p" else "probability")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = out / "aggregate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _aggregate_title(
    title: str, result: dict[str, Any], scores: dict[tuple[str, str], np.ndarray], arms: list[str], budget: int
) -> str:
    games = result.get("games", [])
    counts = sorted({len(scores[(g, a)]) for g in games for a in arms}) or [0]
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return (
        f"{title}, {_budget_label(budget)} per run: {len(games)} game{'s' if len(games) != 1 else ''} × "
        f"{seeds} seed{'s' if counts[-1] != 1 else ''} per arm; 95% stratified bootstrap over seeds"
    )


def check_consistent(runs: list[Run]) -> None:
    """Refuse to average runs made with different budgets or settings."""
    reference = runs[0]
    for run in runs[1:]:
        mine, theirs = reference.settings(), run.settings()
        for key in _SETTINGS:
            if mine[key] != theirs[key]:
                raise ValueError(
                    f"runs differ in {key}: {reference.path} has {mine[key]!r}, {run.path} has {theirs[key]!r}; "
                    "plot them separately or pass --allow-mixed"
                )


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
    """Figures and ``report.md`` for the runs under ``root``; return the report's path.

    ``expect_games`` / ``expect_seeds`` declare the planned grid, so that runs not (yet) made are
    listed as missing; by default the grid is the games and seeds found.
    """
    if last_k < 1 or bins < 1 or smooth < 1:
        raise ValueError(f"--last-k, --bins and --smooth must be positive, got {last_k}, {bins}, {smooth}")
    all_runs = load_runs(root)
    if algo is not None:
        all_runs = [r for r in all_runs if r.algo == algo]
        if not all_runs:
            raise RunStateError(f"no {algo} runs under {root}")
    algos = sorted({r.algo for r in all_runs})
    if len(algos) > 1:
        raise ValueError(f"runs of several algorithms under {root} ({', '.join(algos)}); pick one with --algo")
    unfinished = [r for r in all_runs if not r.finished]
    runs = [r for r in all_runs if r.finished]
    if not runs:
        raise RunStateError(f"no finished run under {root} ({len(unfinished)} unfinished)")
    if not allow_mixed:
        check_consistent(runs)
    found = {r.game for r in runs}
    games = sorted(found | set(expect_games or ()), key=lambda g: g.lower())
    arms = sorted({r.arm for r in runs}, key=lambda a: (a != "conv", a))
    seeds = sorted({r.seed for r in all_runs} | set(expect_seeds or ()))
    present = {(r.game, r.arm, r.seed) for r in all_runs}
    missing = [(g, a, s) for g in games for a in arms for s in seeds if (g, a, s) not in present]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file of that name, no permission
        raise ValueError(f"cannot write to {out}: {error.strerror or error}") from error
    if not os.access(out, os.W_OK):
        raise ValueError(f"cannot write to {out}: permission denied")

    scores = final_scores(runs, last_k)
    title = f"{_ALGO_NAMES.get(algos[0], algos[0].upper())} on Atari"
    curves = plot_curves(runs, [g for g in games if g in found], arms, out, bins, smooth, title)
    agg = aggregate(scores, arms, games)
    budget = max(r.budget_frames for r in runs)
    agg_path = plot_aggregate(agg, arms, out, _aggregate_title(title, agg, scores, arms, budget))

    lines = [
        f"# {title}: conv vs CoordConv, {_budget_label(budget)} per run",
        "",
        f"Made by `{command or 'python -m rl_coordconv.plot'}` from {len(runs)} finished runs under `{root}`.",
        "",
        f"![learning curves]({curves.name})",
        "",
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
    for game in games:
        row = [game]
        for arm in arms:
            values = scores.get((game, arm))
            row.append("–" if values is None else f"{_fmt(bootstrap_ci([values], np.mean))} ({len(values)})")
        if len(arms) == 2 and all((game, a) in scores for a in arms):
            verdict, diff = compare(scores, game, arms)
            p = permutation_p(scores[(game, arms[1])], scores[(game, arms[0])])
            row += [_fmt(diff), "–" if np.isnan(p) else f"{p:.2f}", verdict]
        elif len(arms) == 2:
            row += ["–", "–", "missing runs"]
        lines.append("| " + " | ".join(row) + " |")
    per_seed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.seed):
        if len(run.returns):
            per_seed[(run.game, run.arm)].append(f"{run.seed}: {run.returns[-last_k:].mean():.1f}")
    lines += ["", "Each run's final score (seed: score):", "", "| game | " + " | ".join(arms) + " |"]
    lines += ["|---" * (len(arms) + 1) + "|"]
    for game in games:
        lines.append(f"| {game} | " + " | ".join(", ".join(per_seed[(game, arm)]) or "–" for arm in arms) + " |")
    lines.append("")
    if agg.get("games"):
        lines += [
            f"## Aggregate over {len(agg['games'])} game{'s' if len(agg['games']) != 1 else ''} (human-normalised)",
            "",
            "Human-normalised score = (score − random) / (human − random), with the random and human"
            " scores of the standard Atari-57 table (Mnih et al. 2015, as in Wang et al. 2016 and"
            " DeepMind's DQN Zoo). IQM = mean of the middle 50% of all run × game scores. CIs: 95%"
            " stratified bootstrap (seeds resampled within each game), scipy.stats.bootstrap.",
            "",
            "| arm | IQM [95% CI] | mean [95% CI] |",
            "|---|---|---|",
        ]
        for arm in arms:
            lines.append(f"| {arm} | {_fmt(agg[arm]['iqm'], 3)} | {_fmt(agg[arm]['mean'], 3)} |")
        if "p_improvement" in agg:
            lines += ["", f"P({arms[1]} > {arms[0]}) = {_fmt(agg['p_improvement'], 2)}"]
        if any(len(scores[(g, a)]) < 2 for g in agg["games"] for a in arms):
            lines += [
                "",
                "Some games have a single seed: no interval is shown where one cannot be computed, and"
                " with one seed per game the aggregate and P(improvement) are point estimates that say"
                " nothing about seed-to-seed variability.",
            ]
        if agg_path is not None:
            lines += ["", f"![aggregate]({agg_path.name})"]
        if agg["skipped"]:
            lines += ["", f"Not in the aggregate (no reference scores or a missing arm): {', '.join(agg['skipped'])}."]
        lines.append("")
    settings = runs[0].settings()
    lines += ["## Settings", ""]
    lines += [f"- {key}: `{settings[key]}`" for key in _SETTINGS]
    lines += [f"- seeds: {', '.join(map(str, seeds))}", ""]
    if missing or unfinished:
        lines += ["## Missing and unfinished runs", ""]
        lines += [f"- missing: {g}/{a}/seed{s}" for g, a, s in missing]
        lines += [f"- unfinished ({r.agent_steps:,} steps), left out: {r.path}" for r in unfinished]
        lines.append("")
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report


SMALL_ARTEFACTS = ("config.yaml", "episodes.csv", "state.json", SCALARS_FILE)


def export_runs(root: Path, destination: Path) -> int:
    """Copy every *finished* run's small artefacts (config, episodes, state, scalars) to ``destination``.

    Keeps the ``<algo>/<Game>/<arm>/seed<N>`` layout and leaves out checkpoints, models and
    TensorBoard files, so the copy can be committed and plotted again; the event files' scalars
    (losses, entropy, …) go in as ``scalars.csv``. Returns the runs copied.
    """
    copied = 0
    for run in load_runs(root):
        if not run.finished:
            continue
        target = destination / run.path.relative_to(root)
        target.mkdir(parents=True, exist_ok=True)
        for name in SMALL_ARTEFACTS:
            if (run.path / name).exists():
                shutil.copyfile(run.path / name, target / name)
        write_scalars(run.path, target / SCALARS_FILE)
        copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--export", type=Path, default=None, help="also copy finished runs' small artefacts here")
    parser.add_argument("--games", nargs="+", default=None, help="the planned games (or atari9): list missing runs")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="the planned seeds: list missing runs")
    args = parser.parse_args(argv)
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
            print(f"copied {export_runs(args.runs_dir, args.export)} finished runs' small artefacts to {args.export}")
    except (ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report} and figures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
