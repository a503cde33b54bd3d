"""Learning curves as a table: mean raw return of the games that end in each bin of a run's frames.

Reads two kinds of file, told apart by their columns:

- our runs' ``episodes.csv`` or exported ``episodes.csv.gz`` (``frames``, ``return``): each file is
  one run and gets a row of its own, labelled ``Game/arm/seedN`` from its directory;
- SB3 ``Monitor`` files (``r``, ``l``), e.g. rl-zoo3's trained agents
  (github.com/DLR-RM/rl-trained-agents, ``a2c/PongNoFrameskip-v4_1/*.monitor.csv``: one file per
  env of a 16-env A2C run). ``make_atari_env`` puts ``Monitor`` around the raw ``NoFrameskip``
  game, so a row's ``l`` is the game's emulator frames and ``r`` its whole-game raw score. Envs of
  a synchronous ``VecEnv`` advance together, so when one env has played ``F`` frames the run has
  played ``F × n_envs``: one file is enough for the x-axis, more files add games to each bin. All
  Monitor files given are one run, one row.

Usage::

    python scripts/return_curve.py results/atari/runs_10M/a2c/Pong/*/seed0/episodes.csv --bin 2M
    python scripts/return_curve.py 0.monitor.csv --n-envs 16 --bin 2M
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from rl_coordconv.logs import EPISODE_COLUMNS, open_episodes, read_episodes
from rl_coordconv.steps import parse_steps


def read_games(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, returns, frames) of the games in one file, in the order they ended.

    kind ``"episodes"``: frames are the run's frames when the game ended (read as the package
    reads them, a torn last line skipped); kind ``"monitor"``: frames are each game's own
    emulator frames (one env's)."""
    with open_episodes(path) as handle:  # an SB3 Monitor file opens the same way
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        rows = list(reader)
    columns = set(reader.fieldnames or ())
    if set(EPISODE_COLUMNS) <= columns:
        episodes = list(read_episodes(path))
        return (
            "episodes",
            np.array([float(r["return"]) for r in episodes]),
            np.array([float(r["frames"]) for r in episodes]),
        )
    if {"r", "l"} <= columns:
        return "monitor", np.array([float(r["r"]) for r in rows]), np.array([float(r["l"]) for r in rows])
    raise ValueError(
        f"{path} is neither a run's episodes.csv ({', '.join(EPISODE_COLUMNS)}) nor an SB3 Monitor file (r, l)"
    )


def binned(ends: np.ndarray, returns: np.ndarray, bin_frames: int) -> list[tuple[int, float, int]]:
    """Per bin (lo, hi] of run frames: (hi, mean return of the games ending in it, games)."""
    if not len(ends):
        return []
    index = ((ends - 1) // bin_frames).astype(int)  # bins (lo, hi]: a game ending at 2M frames is in 0–2M
    return [
        ((b + 1) * bin_frames, float(returns[index == b].mean()), int((index == b).sum()))
        for b in range(int(index.max()) + 1)
        if (index == b).any()
    ]


def monitor_run(games: list[tuple[np.ndarray, np.ndarray]], n_envs: int) -> tuple[np.ndarray, np.ndarray]:
    """(run frames at each game's end, returns) of one run's Monitor files, given as each file's
    (returns, game frames), pooled."""
    ends = [np.cumsum(frames) * n_envs for _, frames in games]
    return np.concatenate(ends), np.concatenate([returns for returns, _ in games])


def _label(path: Path) -> str:
    return "/".join(path.parts[-4:-1]) if len(path.parts) >= 4 else str(path)


def _frames(n: int) -> str:
    return f"{n / 1e6:g}M"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help="runs' episodes.csv files and/or one run's Monitor files")
    parser.add_argument(
        "--n-envs", type=int, default=None, help="envs in the Monitor files' run (default: the Monitor files given)"
    )
    parser.add_argument("--bin", default="1M", help="frames per bin, e.g. 2M or 400k (default: 1M)")
    args = parser.parse_args(argv)
    rows: list[tuple[str, list[tuple[int, float, int]]]] = []
    try:
        bin_frames = parse_steps(args.bin)
        kinds = {path: read_games(path) for path in args.files}
        monitors = [(returns, frames) for kind, returns, frames in kinds.values() if kind == "monitor"]
        n_envs = args.n_envs if args.n_envs is not None else len(monitors)
        if monitors and n_envs < len(monitors):
            raise ValueError(f"--n-envs {n_envs} must be at least the {len(monitors)} Monitor files given")
        for path, (kind, returns, ends) in kinds.items():
            if kind == "episodes":
                rows.append((_label(path), binned(ends, returns, bin_frames)))
        if monitors:
            ends, returns = monitor_run(monitors, n_envs)
            rows.append((f"SB3 Monitor ({len(monitors)} of {n_envs} envs)", binned(ends, returns, bin_frames)))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    edges = sorted({end for _, table in rows for end, _, _ in table})
    print(f"mean raw return of the games ending in each {_frames(bin_frames)}-frame bin of the run (games)\n")
    print("| run | " + " | ".join(f"{_frames(end - bin_frames)}–{_frames(end)}" for end in edges) + " |")
    print("|---|" + "---:|" * len(edges))
    for label, table in rows:
        cells = {end: f"{mean:.2f} ({games})" for end, mean, games in table}
        print(f"| {label} | " + " | ".join(cells.get(end, "–") for end in edges) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
