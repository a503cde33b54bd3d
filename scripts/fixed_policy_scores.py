"""Whole-game scores of a fixed action, per env backend: does every backend play the same game?

A policy that always plays one action takes learning out of the comparison, so any difference
between backends is the env stack's. With the training protocol (life loss ends an episode,
reset actions replayed), each backend plays ``--steps`` vector steps of ``--n-envs`` games and
reports the mean raw score of the games that ended, with its standard error. Usage::

    python scripts/fixed_policy_scores.py --game Breakout --action 0 --steps 6000
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rl_coordconv.envs import canonical_game
from rl_coordconv.envs.atari import action_meanings
from rl_coordconv.envs.vector import BACKENDS, make_atari_vec_env


def scores(game: str, action: int, backend: str, n_envs: int, steps: int, seed: int) -> np.ndarray:
    """Raw scores of the games one backend finishes in ``steps`` vector steps of a fixed action."""
    env = make_atari_vec_env(game, n_envs, seed=seed, backend=backend, training=True)
    try:
        env.reset()
        actions = np.full(n_envs, action, dtype=np.int64)
        games = []
        for _ in range(steps):
            infos = env.step(actions)[3]
            games += [info["episode"]["r"] for info in infos if "episode" in info]
    finally:
        env.close()
    return np.array(games)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--action", type=int, default=0, help="index in the game's minimal action set")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), help=f"from {', '.join(BACKENDS)}")
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6000, help="vector steps per backend")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        game = canonical_game(args.game)
        meanings = action_meanings(game)
        if not 0 <= args.action < len(meanings):
            raise ValueError(f"--action {args.action} is not in {game}'s actions 0–{len(meanings) - 1}: {meanings}")
        for backend in args.backends:
            if backend not in BACKENDS:
                raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{game}, always {meanings[args.action]}, {args.n_envs} envs × {args.steps} steps, seed {args.seed}")
    for backend in args.backends:
        s = scores(game, args.action, backend, args.n_envs, args.steps, args.seed)
        if len(s) == 0:
            print(f"{backend:8s} no game ended")
            continue
        se = s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else float("nan")
        print(f"{backend:8s} {s.mean():7.2f} ± {se:.2f} (s.e.) over {len(s)} games")
    return 0


if __name__ == "__main__":
    sys.exit(main())
