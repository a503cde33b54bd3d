"""How a Catch policy catches: its greedy catch rate by the ball's horizontal distance from the
paddle at the start of a game, and by the ball's column.

On the default 7 × 7 grid ball and paddle first share one 36 × 36-pixel window of ``AtariCNN``'s
last convolution when the ball is 2 rows above the paddle, with 2 moves left; a policy that sees
them only then catches a ball that started at most 2 columns away (29 of the 49 start pairs, a
score of 9/49 ≈ 0.18) and misses the rest. A policy that relates the two from the first step
catches at every distance. By column: a trunk whose features are averaged over the screen can
still tell a ball in an edge column from one inside (its unpadded convolutions see edge cells
through fewer windows), so a pooled conv policy that catches more at the edges is reading the
border. Plays ``--games`` games with each run's final model (greedy), on new games (``--seed``).
Usage::

    python scripts/catch_by_distance.py runs/a2c/Catch/*/seed* --games 2000
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from rl_coordconv.agents import load_run_model
from rl_coordconv.envs import CatchVecEnv
from rl_coordconv.runs import RunStateError


def play(run_dir: Path, games: int, seed: int, n_envs: int = 100) -> np.ndarray:
    """``(games, 3)``: each game's starting ball column, paddle column, and 1 if caught else 0."""
    config, model = load_run_model(run_dir, device="cpu")
    if config["game"] != "Catch":
        raise ValueError(f"{run_dir} is a run on {config['game']}, not Catch")
    env = CatchVecEnv(n_envs, seed=seed)
    obs = np.asarray(env.reset())
    start = env.positions()
    ball, paddle = start["ball_col"], start["paddle"]
    records: list[tuple[int, int, int]] = []
    while len(records) < games:
        actions, _ = model.predict(obs, deterministic=True)
        next_obs, rewards, dones, _ = env.step(actions)
        obs = np.asarray(next_obs)
        records += [(int(ball[i]), int(paddle[i]), int(rewards[i] > 0)) for i in np.flatnonzero(dones)]
        now = env.positions()  # the new games' starting columns
        ball, paddle = np.where(dones, now["ball_col"], ball), np.where(dones, now["paddle"], paddle)
    return np.array(records[:games])


def _rates(keys: np.ndarray, caught: np.ndarray, n: int) -> np.ndarray:
    played = np.bincount(keys, minlength=n)
    return np.bincount(keys, weights=caught, minlength=n) / np.maximum(played, 1)


def _table(title: str, label: str, rows: dict[str, list[np.ndarray]], n: int) -> None:
    print(f"\n{title}\n\n| run | " + " | ".join(f"{label} {k}" for k in range(n)) + " | greedy score |")
    print("|---" + "|---:" * (n + 1) + "|")
    for name, values in rows.items():
        mean = np.mean(values, axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in mean) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="finished Catch runs (e.g. runs/a2c/Catch/*/seed*)")
    parser.add_argument("--games", type=int, default=2000, help="games per run (default 2000)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the games played (default 12345)")
    args = parser.parse_args(argv)
    columns = CatchVecEnv(1).protocol.columns
    # per run, then each arm's mean over its runs; by distance, then by the ball's column
    tables: list[tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]]] = [
        (defaultdict(list), defaultdict(list)) for _ in range(2)
    ]
    try:
        for run_dir in sorted(args.run_dirs):
            ball, paddle, caught = play(run_dir, args.games, args.seed).T
            score = 2 * caught.mean() - 1
            for (runs, arms), keys in zip(tables, (np.abs(ball - paddle), ball), strict=True):
                rate = np.append(_rates(keys, caught, columns), score)
                runs[f"{run_dir.parent.name}/{run_dir.name}"].append(rate)
                arms[run_dir.parent.name].append(rate)
    except (RunStateError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"python {' '.join(sys.argv)}")
    kinds = (("the starting |ball column − paddle column|", "distance"), ("the ball's column", "column"))
    for (runs, arms), (what, label) in zip(tables, kinds, strict=True):
        means = {f"{arm} (mean of {len(rates)})": rates for arm, rates in arms.items()}
        _table(f"Catch rate by {what}, per run:", label, runs, columns)
        _table(f"Catch rate by {what}, per arm:", label, means, columns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
