"""A reference run on SB3's stock A2C stack: to tell our pipeline's behaviour from A2C's own.

Everything here is SB3's: ``make_atari_env`` (``AtariWrapper``: no-ops, frame skip and max-pool,
episodic life, FIRE on reset, 84×84 grayscale, reward clipping) + ``SubprocVecEnv`` +
``VecFrameStack``, ``A2C("CnnPolicy")`` (SB3's ``NatureCNN``, its own rollout and update loop),
with the OpenAI-baselines settings ``train`` uses (16 envs × 5 steps, TF-style RMSprop). Only the
raw ROM comes from this project (``make_ale_env``: ``NoFrameskip``, sticky actions off, minimal
action set), so both stacks play the same game. Every finished game's raw score is written to
``episodes.csv`` in the columns ``train`` writes; ``length`` there is the game's emulator frames
divided by the frame skip (SB3's ``Monitor`` counts frames). Usage::

    python scripts/stock_sb3_a2c.py --game Breakout --timesteps 500k --out /tmp/stock-breakout
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

from rl_coordconv.steps import parse_steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--timesteps", type=parse_steps, default=500_000, help="agent steps, e.g. 500k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--learning-rate",
        choices=("lin", "constant"),
        default="lin",
        help="7e-4 annealed linearly to 0 over the run (train's default) or held (SB3's default)",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for episodes.csv and config.json")
    args = parser.parse_args(argv)
    if (args.out / "episodes.csv").exists():
        print(f"error: {args.out / 'episodes.csv'} exists; pick another --out", file=sys.stderr)
        return 2

    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack

    from rl_coordconv.envs import ATARI_PROTOCOL, canonical_game, make_ale_env
    from rl_coordconv.runs import environment_report

    game = canonical_game(args.game)
    skip = ATARI_PROTOCOL.frame_skip
    args.out.mkdir(parents=True, exist_ok=True)
    env = VecFrameStack(
        make_atari_env(functools.partial(make_ale_env, game), n_envs=16, seed=args.seed, vec_env_cls=SubprocVecEnv),
        n_stack=ATARI_PROTOCOL.frame_stack,
    )
    rate: Any = (lambda remaining: 7e-4 * remaining) if args.learning_rate == "lin" else 7e-4
    model = A2C(
        "CnnPolicy",
        env,
        learning_rate=rate,
        n_steps=5,
        gamma=0.99,
        gae_lambda=1.0,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0)),
        seed=args.seed,
        device="cpu",
    )
    config = {
        **{k: str(v) for k, v in vars(args).items()},
        "game": game,
        "command": " ".join(sys.argv),
        **environment_report(),
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    start = time.perf_counter()
    with open(args.out / "episodes.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["agent_step", "frames", "wall_time", "return", "length"])

        class WriteGames(BaseCallback):
            def _on_step(self) -> bool:
                for info in self.locals["infos"]:
                    if "episode" in info:
                        game_info = info["episode"]
                        step = self.num_timesteps
                        elapsed = round(time.perf_counter() - start, 3)
                        writer.writerow([step, step * skip, elapsed, game_info["r"], game_info["l"] // skip])
                return True

        model.learn(args.timesteps, callback=WriteGames(), progress_bar=sys.stderr.isatty())
    env.close()
    print(f"{model.num_timesteps:,} agent steps in {time.perf_counter() - start:.0f} s → {args.out / 'episodes.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
