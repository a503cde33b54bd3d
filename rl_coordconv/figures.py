"""The report's figures: seed-averaged learning curves and the human-normalised aggregate.

matplotlib is imported inside the functions that draw, so that loading runs and computing
statistics never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_coordconv.results import Run, binned_curve
from rl_coordconv.stats import Scores, bootstrap_ci

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["budget_label", "plot_aggregate", "plot_curves"]


def budget_label(frames: int) -> str:
    """A budget as titles state it: ``10M frames``, ``250k frames``."""
    return f"{frames / 1e6:g}M frames" if frames >= 1e6 else f"{frames / 1e3:g}k frames"


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only Agg backend: reports are made where there is no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` bins, the first value repeated before the start."""
    if window <= 1:
        return curve
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, curve[0]), curve])
    return np.convolve(padded, kernel, mode="valid")


def plot_curves(
    runs: list[Run], games: list[str], arms: list[str], out: Path, bins: int, smooth: int, title: str
) -> Path:
    """Per game, raw return vs frames for each arm: the mean over seeds with a 95% bootstrap band.

    Each run is binned with :func:`~rl_coordconv.results.binned_curve` over the largest budget
    among ``runs``; the title states the budget, the bins and the smoothing.

    :param smooth: moving average over this many bins (1: none)
    :return: the path of ``curves.png`` in ``out``
    """
    plt = _pyplot()
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
        f"{title}: {budget_label(budget)} per run; mean over seeds, 95% bootstrap CI over seeds;\n"
        f"each run binned into {bins} bins of {budget / bins / 1e3:g}k frames{smoothing}",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _aggregate_title(title: str, result: dict[str, Any], scores: Scores, arms: list[str], budget: int) -> str:
    """What the aggregate stands on: budget, games and seeds per arm (a range when they differ)."""
    games = result.get("games", [])
    counts = sorted({len(scores[(g, a)]) for g in games for a in arms}) or [0]
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return (
        f"{title}, {budget_label(budget)} per run: {len(games)} game{'s' if len(games) != 1 else ''} × "
        f"{seeds} seed{'s' if counts[-1] != 1 else ''} per arm; 95% stratified bootstrap over seeds"
    )


def plot_aggregate(
    result: dict[str, Any],
    scores: Scores,
    arms: list[str],
    out: Path,
    title: str,
    budget: int,
) -> Path | None:
    """Human-normalised IQM and mean per arm and, for two arms, P(improvement), with their 95% CIs.

    :param result: what :func:`~rl_coordconv.stats.aggregate` returned for ``scores``
    :param budget: frames per run, for the title
    :return: the path of ``aggregate.png`` in ``out``, or None when no game could be aggregated
    """
    if not result.get("games"):
        return None
    plt = _pyplot()
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
    fig.suptitle(_aggregate_title(title, result, scores, arms, budget), fontsize=9)
    fig.tight_layout()
    path = out / "aggregate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
