"""How much of a fresh CoordConv layer's output comes from the coordinates, per game?

At initialisation the first layer's coordinate weights are drawn like its image weights, but the
coordinate channels span [-1, 1] everywhere while a dark Atari screen is near 0. This prints, for
frames of random play, each game's mean pixel (scaled to [0, 1]) and the coordinate channels'
share of the first layer's pre-activation variance, averaged over ``--inits`` initialisations of
the CoordConv ``AtariCNN``. Usage::

    python scripts/coord_input_share.py --games atari9
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from rl_coordconv.envs import make_atari_vec_env, resolve_games
from rl_coordconv.extractors import AtariCNN


def random_play_frames(game: str, frames: int, seed: int) -> tuple[torch.Tensor, spaces.Space]:
    """``frames`` observations of random play (every 20th vector step of 4 games), scaled to [0, 1]."""
    env = make_atari_vec_env(game, 4, seed=seed)
    assert isinstance(env.action_space, spaces.Discrete)
    n_actions, rng = int(env.action_space.n), np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    try:
        env.reset()
        while 4 * len(kept) < frames:
            for _ in range(20):
                obs = env.step(rng.integers(0, n_actions, 4))[0]
            kept.append(np.asarray(obs))
    finally:
        env.close()
    return torch.as_tensor(np.concatenate(kept)[:frames]).float() / 255, env.observation_space


def coordinate_share(x: torch.Tensor, observation_space: spaces.Space, init_seed: int) -> float:
    """Var(coordinate part) / (Var(image part) + Var(coordinate part)) of the first layer's pre-activations."""
    torch.manual_seed(init_seed)
    layer = AtariCNN(observation_space, coordconv=True).first_coord_layer()
    assert layer is not None and layer.bias is not None
    with torch.no_grad():
        image = F.conv2d(x, layer.image_weight, None, layer.stride)
        coords = layer(x) - layer.bias[None, :, None, None] - image
    return float(coords.var() / (image.var() + coords.var()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", nargs="+", default=["atari9"], help="game names and/or atari9")
    parser.add_argument("--frames", type=int, default=80, help="observations of random play per game")
    parser.add_argument("--inits", type=int, default=3, help="network initialisations to average over")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        games = resolve_games(args.games)
        if args.frames < 1 or args.inits < 1:
            raise ValueError(f"--frames and --inits must be positive, got {args.frames} and {args.inits}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("| game | mean pixel | coordinate share of first-layer variance |\n|---|---:|---:|")
    for game in games:
        x, space = random_play_frames(game, args.frames, args.seed)
        share = np.mean([coordinate_share(x, space, seed) for seed in range(args.inits)])
        print(f"| {game} | {float(x.mean()):.3f} | {share:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
