"""An Ape-X run against the clock: return, frames and learner work at each hour of wall time, and a figure.

For each run (a live run directory or a committed copy: ``config.yaml``, ``episodes.csv[.gz]``,
``scalars.csv`` or event files), a table row at every ``--every`` of wall time and at the run's
last game: frames played, the mean raw return of the last 100 games ended by then (all actors, the
run's final score, and each actor's own, at its ε, where ``episodes.csv`` names the actor), learner
steps, target-network copies and samples per insert. ``--figure`` draws return against frames and
against wall time (all actors' games, solid, and each actor's, dashed, in the run's colour), learner
steps against wall time and samples per insert against frames.

Learner steps are the logged ``charts/learner_steps``; a run made before that scalar (2026-12-06)
has them rebuilt from the logged cumulative samples per insert,
``samples_per_insert × (agent steps − learning_starts) / batch_size`` (the limiter counts inserts
from ``learning_starts`` on; not for a run resumed without its replay, whose count started again),
and a run with neither shows "–". Target copies are ``learner steps // target_update_interval``.
``--export DIR`` copies each run's small artefacts (those ``plot --export`` copies of a finished
run) to ``DIR/apex/<Game>/<arm>/seed<N>``, finished or not: an Ape-X run judged at a wall-time
budget is stopped there, short of its step budget. Usage::

    python scripts/apex_progress.py runs/apex/Pong/*/seed0 --every 0.5 --figure progress.png
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rl_coordconv.agents.apex.config import actor_epsilon
from rl_coordconv.logs import ACTOR_COLUMN, read_episodes, read_scalars
from rl_coordconv.results import export_run
from rl_coordconv.runs import RunDir, RunStateError

LAST_GAMES = 100  # the final score's games (rl_coordconv.plot --last-k)
SPI_TAG = "charts/samples_per_insert"
LEARNER_TAG = "charts/learner_steps"
ACTOR_DASHES = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]  # each actor's curve, in its run's colour


@dataclass
class ApexRun:
    """One Ape-X run's games and its logged samples per insert."""

    path: Path
    label: str
    target: Path  # where --export puts it, under the export directory: apex/<Game>/<arm>/seed<N>
    batch_size: int
    learning_starts: int
    target_update_interval: int
    frame_skip: int
    steps: np.ndarray  # agent step at each game's end
    frames: np.ndarray
    hours: np.ndarray  # wall time at each game's end
    returns: np.ndarray
    actors: np.ndarray | None  # the actor of each game (−1: not named), where episodes.csv has the column
    epsilons: list[float]  # each actor's ε
    spi: list[tuple[int, float]]  # (agent step, cumulative samples per insert)
    learner: list[tuple[int, float]]  # (agent step, learner steps), where the run logged them

    def learner_steps(self, step: float) -> int | None:
        """Learner steps taken by agent step ``step``: the last count logged by then, or rebuilt from the
        last samples per insert logged by then; None when the run logged neither."""
        logged = [value for at, value in self.learner if at <= step]
        if logged:
            return round(logged[-1])
        ratios = [value for at, value in self.spi if at <= step]  # e.g. a run resumed by a later version
        if ratios:
            return round(ratios[-1] * max(0.0, step - self.learning_starts) / self.batch_size)
        return 0 if self.learner or self.spi else None

    def score(self, hours: float, actor: int | None = None) -> str:
        """Mean return of the last 100 games (of ``actor``, or of all) ended by ``hours``, and how many."""
        chosen = self.hours <= hours
        if actor is not None and self.actors is not None:
            chosen &= self.actors == actor
        ended = self.returns[chosen][-LAST_GAMES:]
        return f"{ended.mean():.2f} ({len(ended)})" if len(ended) else "–"


def load(path: Path) -> ApexRun:
    """Read one Ape-X run directory; a run of another algorithm, or one with no games yet, is a ValueError."""
    run = RunDir(path)
    config = run.read_config()
    if config.get("algo") != "apex":
        raise ValueError(f"{path} is not an Ape-X run (algo: {config.get('algo')!r})")
    episodes = run.episodes_path
    if not episodes.exists():
        episodes = episodes.with_name(episodes.name + ".gz")
    rows = list(read_episodes(episodes)) if episodes.exists() else []
    if not rows:
        raise ValueError(f"{path} has no finished games yet")
    scalars = read_scalars(path)
    hyper = config["hyperparams"]
    named = any(row.get(ACTOR_COLUMN) not in (None, "") for row in rows)
    actors = int(hyper["actors"])
    return ApexRun(
        path=path,
        label="/".join(path.parts[-3:]),
        target=Path("apex", config["game"], config["arm"], f"seed{config['seed']}"),
        frame_skip=int(config.get("protocol", {}).get("frame_skip", 4)),
        batch_size=int(hyper["batch_size"]),
        learning_starts=int(hyper["learning_starts"]),
        target_update_interval=int(hyper["target_update_interval"]),
        steps=np.array([float(r["agent_step"]) for r in rows]),
        frames=np.array([float(r["frames"]) for r in rows]),
        hours=np.array([float(r["wall_time"]) for r in rows]) / 3600,
        returns=np.array([float(r["return"]) for r in rows]),
        actors=np.array([int(r.get(ACTOR_COLUMN) or -1) for r in rows]) if named else None,
        epsilons=[actor_epsilon(i, actors, hyper["epsilon_base"], hyper["epsilon_alpha"]) for i in range(actors)],
        spi=scalars.get(SPI_TAG, []),
        learner=scalars.get(LEARNER_TAG, []),
    )


def table(runs: list[ApexRun], every_hours: float) -> list[str]:
    """Markdown rows: each run at every ``every_hours`` of wall time and at its last game."""
    most = max((len(run.epsilons) for run in runs if run.actors is not None), default=0)  # actor columns
    lines = [
        f"| run | wall time | frames | last {LAST_GAMES} games (games) | "
        + "".join(f"actor {i}'s | " for i in range(most))
        + "learner steps | target copies | samples per insert |",
        "|---|" + "---:|" * (6 + most),
    ]
    for run in runs:
        end = float(run.hours[-1])
        marks = [*np.arange(every_hours, end, every_hours), end]
        for hours in marks:
            index = int(np.searchsorted(run.hours, hours, side="right")) - 1
            if index < 0:
                continue  # before the first game ended
            step = run.steps[index]
            learner = run.learner_steps(step)
            work = "– | –" if learner is None else f"{learner:,} | {learner // run.target_update_interval:,}"
            spi = [value for at, value in run.spi if at <= step]
            actors = [
                f"{run.score(hours, actor)} ε {run.epsilons[actor]:.2g}"
                if run.actors is not None and actor < len(run.epsilons)
                else "–"
                for actor in range(most)
            ]
            lines.append(
                f"| {run.label} | {hours:.2f} h | {run.frames[index] / 1e6:.2f}M | {run.score(hours)} | "
                + "".join(f"{cell} | " for cell in actors)
                + f"{work} | {f'{spi[-1]:.2f}' if spi else '–'} |"
            )
    return lines


def _rolling(returns: np.ndarray) -> np.ndarray:
    """Mean of the last (up to) 100 games at each game."""
    sums = np.cumsum(np.concatenate([[0.0], returns]))
    ends = np.arange(1, len(returns) + 1)
    starts = np.maximum(0, ends - LAST_GAMES)
    return (sums[ends] - sums[starts]) / (ends - starts)


def return_curves(run: ApexRun) -> list[tuple[str, np.ndarray, bool]]:
    """The figure's return curves of one run: (label, its games, whether they are all the run's games).
    All actors' games, the run's final score, come first; then each actor's, where the run names them."""
    curves = [(f"{run.label}, all actors", np.ones(len(run.returns), dtype=bool), True)]
    if run.actors is not None:
        curves += [
            (f"{run.label}, actor {actor} (ε {eps:.2g})", run.actors == actor, False)
            for actor, eps in enumerate(run.epsilons)
        ]
    return curves


def figure(runs: list[ApexRun], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, run in enumerate(runs):
        colour = colours[index % len(colours)]
        for number, (label, chosen, everyone) in enumerate(return_curves(run)):
            rolling = _rolling(run.returns[chosen])
            dashes = ACTOR_DASHES[(number - 1) % len(ACTOR_DASHES)]
            style = {"linewidth": 2.0} if everyone else {"linewidth": 1.0, "alpha": 0.8, "linestyle": dashes}
            axes[0, 0].plot(run.frames[chosen] / 1e6, rolling, color=colour, label=label, **style)
            axes[0, 1].plot(run.hours[chosen], rolling, color=colour, label=label, **style)
        if run.learner_steps(run.steps[-1]) is not None:
            work = [run.learner_steps(step) or 0 for step in run.steps]
            axes[1, 0].plot(run.hours, np.array(work) / 1e3, color=colour, label=run.label)
        if run.spi:
            at, value = zip(*run.spi, strict=True)
            axes[1, 1].plot(np.array(at) * run.frame_skip / 1e6, value, color=colour, label=run.label)
    labels = [
        ("frames (M)", f"mean return, last {LAST_GAMES} games"),
        ("wall time (h)", f"mean return, last {LAST_GAMES} games"),
        ("wall time (h)", "learner steps (thousands)"),
        ("frames (M)", "samples per insert (cumulative)"),
    ]
    for ax, (x, y) in zip(axes.flat, labels, strict=True):
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Ape-X: return against frames and wall time, and the learner's work")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Ape-X run directories (live or committed copies)")
    parser.add_argument("--every", type=float, default=1.0, help="hours of wall time between rows (default: 1)")
    parser.add_argument("--figure", type=Path, default=None, help="also draw the four panels to this PNG")
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        help="also copy each run's small artefacts, finished or not, to EXPORT/apex/<Game>/<arm>/seed<N>",
    )
    args = parser.parse_args(argv)
    try:
        if not args.every > 0:
            raise ValueError(f"--every must be a number of hours > 0, got {args.every}")
        runs = [load(path) for path in args.runs]
    except (OSError, ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(table(runs, args.every)))
    if args.figure is not None:
        figure(runs, args.figure)
        print(f"\nwrote {args.figure}")
    if args.export is not None:
        for run in runs:
            target = args.export / run.target
            try:
                export_run(run.path, target)
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"copied {run.path}'s small artefacts to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
