"""A learning curve from SB3 ``Monitor`` files: mean raw return per bin of the run's frames.

For comparing our runs with someone else's published SB3 training logs, e.g. rl-zoo3's trained
agents (github.com/DLR-RM/rl-trained-agents, ``a2c/PongNoFrameskip-v4_1/*.monitor.csv``: one
file per env of a 16-env A2C run). ``make_atari_env`` puts ``Monitor`` around the raw
``NoFrameskip`` game, so a row's ``l`` is the game's emulator frames and ``r`` its whole-game raw
score. Envs of a synchronous ``VecEnv`` advance together, so when one env has played ``F`` frames
the run has played ``F × n_envs``: one file is enough for the x-axis, more files add games to each
bin. Usage::

    python scripts/monitor_curve.py 0.monitor.csv --n-envs 16 --bin 2M
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from rl_coordconv.train import parse_steps


def read_monitor(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of the games in one Monitor file, in the order they ended."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    if not rows or not {"r", "l"} <= set(rows[0]):
        raise ValueError(f"{path} is not an SB3 Monitor file (needs columns r and l)")
    return np.array([float(row["r"]) for row in rows]), np.array([float(row["l"]) for row in rows])


def binned(paths: list[Path], n_envs: int, bin_frames: int) -> list[tuple[float, float, int]]:
    """Per bin of run frames: (bin end in frames, mean return of the games ending in it, games)."""
    ends, returns = [], []
    for path in paths:
        game_returns, game_frames = read_monitor(path)
        ends.append(np.cumsum(game_frames) * n_envs)
        returns.append(game_returns)
    end, ret = np.concatenate(ends), np.concatenate(returns)
    index = (end // bin_frames).astype(int)
    return [
        ((b + 1) * bin_frames, float(ret[index == b].mean()), int((index == b).sum()))
        for b in range(int(index.max()) + 1)
        if (index == b).any()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help="Monitor CSV files of one run (one per env)")
    parser.add_argument("--n-envs", type=int, default=None, help="envs in the run (default: the files given)")
    parser.add_argument("--bin", type=parse_steps, default=1_000_000, help="frames per bin, e.g. 2M (default: 1M)")
    args = parser.parse_args(argv)
    n_envs = args.n_envs if args.n_envs is not None else len(args.files)
    try:
        if n_envs < len(args.files) or args.bin < 1:
            raise ValueError(f"--n-envs {n_envs} must be at least the {len(args.files)} files and --bin positive")
        table = binned(args.files, n_envs, args.bin)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(args.files)} of {n_envs} envs' Monitor files; frames = an env's frames × {n_envs}")
    print("| frames up to | mean return | games |\n|---:|---:|---:|")
    for end, mean, games in table:
        print(f"| {end / 1e6:g}M | {mean:.2f} | {games} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
