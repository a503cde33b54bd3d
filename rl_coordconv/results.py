"""Training runs as results: load every run under a directory, check they may be averaged, export them.

A run directory (see :mod:`rl_coordconv.runs`) becomes a :class:`Run`: its identity
(algorithm, game, arm, seed), its settings, whether it finished, and its finished games as
arrays of frames and raw returns.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl_coordconv.logs import SCALARS_FILE, read_episodes, write_scalars
from rl_coordconv.runs import RunDir, RunStateError

__all__ = [
    "EXPORT_GZIP_BYTES",
    "SMALL_ARTEFACTS",
    "Run",
    "binned_curve",
    "check_consistent",
    "export_run",
    "export_runs",
    "load_runs",
]

# The settings that must agree for runs to be averaged together, in the order reports list them.
_SETTINGS = ("algo", "timesteps", "n_envs", "hyperparams", "env_backend", "protocol")

# What a committed copy of a run keeps: enough to plot it again, none of the checkpoints or models.
SMALL_ARTEFACTS = ("config.yaml", "episodes.csv", "episodes.csv.gz", "state.json", SCALARS_FILE)


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
        """The settings that must agree between averaged runs, by name."""
        return {key: self.config.get(key) for key in _SETTINGS}

    @property
    def budget_frames(self) -> int:
        """The run's training budget in frames (agent steps × frame skip)."""
        return int(self.config["timesteps"]) * int(self.config.get("protocol", {}).get("frame_skip", 4))


def load_runs(root: Path) -> list[Run]:
    """Every run directory (holding ``config.yaml``) under ``root``, in path order.

    :raises RunStateError: when ``root`` does not exist or holds no run
    """
    if not root.is_dir():
        raise RunStateError(f"runs directory {root} does not exist")
    runs = []
    for config_path in sorted(root.rglob("config.yaml")):
        run_dir = RunDir(config_path.parent)
        config = run_dir.read_config()
        if not {"algo", "game", "seed", "timesteps"} <= set(config):
            continue
        episodes = next((p for p in (run_dir.episodes_path, _compressed(run_dir.episodes_path)) if p.exists()), None)
        rows = list(read_episodes(episodes)) if episodes else []
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


def check_consistent(runs: list[Run]) -> None:
    """Refuse to average runs made with different budgets or settings.

    :raises ValueError: naming the first setting that differs and two runs that differ in it
    """
    reference = runs[0]
    for run in runs[1:]:
        mine, theirs = reference.settings(), run.settings()
        for key in _SETTINGS:
            if mine[key] != theirs[key]:
                raise ValueError(
                    f"runs differ in {key}: {reference.path} has {mine[key]!r}, {run.path} has {theirs[key]!r}; "
                    "plot them separately or pass --allow-mixed"
                )


def binned_curve(run: Run, edges: np.ndarray) -> np.ndarray:
    """Mean return of the games ending in each frame bin, the last value carried over empty bins.

    A game ending on an edge counts in the bin it closes; bins before the first game are nan.
    """
    index = np.digitize(run.frames, edges[1:-1], right=True)
    curve = np.full(len(edges) - 1, np.nan)
    for b in range(len(curve)):
        mask = index == b
        if mask.any():
            curve[b] = run.returns[mask].mean()
        elif b > 0:
            curve[b] = curve[b - 1]
    return curve


# An episodes.csv over this size is exported gzipped (a Catch run of 300k steps plays ≈ 50k games:
# 1.3 MB, 60 kB gzipped); plot and scripts/return_curve.py read either.
EXPORT_GZIP_BYTES = 256 * 1024


def _compressed(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def export_runs(
    root: Path,
    destination: Path,
    algo: str | None = None,
    games: Collection[str] | None = None,
    seeds: Collection[int] | None = None,
) -> int:
    """Copy every *finished* run's small artefacts (config, episodes, state, scalars) to ``destination``.

    Keeps the ``<algo>/<Game>/<arm>/seed<N>`` layout and leaves out checkpoints, models and
    TensorBoard files, so the copy can be committed and plotted again; the event files' scalars
    (losses, entropy, …) go in as ``scalars.csv``, and an ``episodes.csv`` over 256 kB as
    ``episodes.csv.gz`` (the same bytes, gzipped reproducibly).

    :param algo: only this algorithm's runs (default: every one)
    :param games: only these games' runs (default: every one)
    :param seeds: only these seeds' runs (default: every one)
    :return: the number of runs copied
    """
    copied = 0
    for run in load_runs(root):
        selected = (
            (algo is None or run.algo == algo)
            and (games is None or run.game in games)
            and (seeds is None or run.seed in seeds)
        )
        if run.finished and selected:
            export_run(run.path, destination / run.path.relative_to(root))
            copied += 1
    return copied


def export_run(source: Path, target: Path) -> None:
    """Copy one run's small artefacts, as :func:`export_runs` does, from ``source`` into ``target``,
    whether it has finished or not (its ``state.json`` says how far it got).

    :raises ValueError: ``target`` is ``source`` (a copy onto itself would drop its ``episodes.csv``)
    """
    if target.resolve() == source.resolve():
        raise ValueError(f"cannot export {source} onto itself: give another directory")
    target.mkdir(parents=True, exist_ok=True)
    for name in SMALL_ARTEFACTS:
        path = source / name
        if name == "episodes.csv" and path.exists() and path.stat().st_size > EXPORT_GZIP_BYTES:
            with gzip.GzipFile(_compressed(target / name), "wb", mtime=0) as packed:
                packed.write(path.read_bytes())
            (target / name).unlink(missing_ok=True)  # a copy from an earlier export
        elif path.exists():
            shutil.copyfile(path, target / name)
            if name == "episodes.csv":
                _compressed(target / name).unlink(missing_ok=True)  # likewise
    write_scalars(source, target / SCALARS_FILE)
