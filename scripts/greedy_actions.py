"""What a trained Q-network's greedy policy does: how often it picks each action, and how far apart
its Q values are, over one stretch of fresh games.

For a value-based run (``apex``, ``dqn``) that has not learnt: a greedy action that hardly depends
on the screen (one action most of the time, Q values close together) is a policy that has not
started to learn; compare the arms' numbers before suspecting either of them. Plays ``--steps``
steps of one game at the evaluation protocol, always the greedy action, from the run's final model
(or ``--checkpoint``). Usage::

    python scripts/greedy_actions.py runs_apex/apex/Pong/coordconv/seed0 --steps 3000
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import DQN

from rl_coordconv.agents import load_run_model
from rl_coordconv.envs import make_atari_vec_env
from rl_coordconv.envs.atari import action_meanings
from rl_coordconv.runs import RunDir, RunStateError
from rl_coordconv.steps import parse_steps

VALUE_BASED = ("apex", "dqn")


def greedy_actions(
    run_dir: Path, steps: int, checkpoint: Path | None = None, seed: int = 1
) -> tuple[Counter, np.ndarray]:
    """Greedy action counts and, per step, the spread (max − min) of the Q values over the actions."""
    run = RunDir(run_dir)
    if run.exists() and (algo := run.read_config()["algo"]) not in VALUE_BASED:  # before loading any model
        raise ValueError(f"{run_dir} is a run of {algo}; this reads Q values of {', '.join(VALUE_BASED)} runs")
    config, model = load_run_model(run_dir, checkpoint, device="cpu")
    assert isinstance(model, DQN)  # what apex and dqn runs save
    env = make_atari_vec_env(config["game"], 1, seed=seed, backend="ale", training=False)
    counts: Counter = Counter()
    spreads = np.empty(steps)
    try:
        obs = env.reset()
        for step in range(steps):
            with torch.no_grad():
                q = model.q_net(torch.as_tensor(np.asarray(obs)))[0].numpy()
            action = int(q.argmax())
            counts[action] += 1
            spreads[step] = q.max() - q.min()
            obs, _, _, _ = env.step(np.array([action]))
    finally:
        env.close()
    return counts, spreads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished apex or dqn run directory")
    parser.add_argument("--steps", default="3000", help="agent steps to play (default: 3000)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a model zip instead of the final model")
    parser.add_argument("--seed", type=int, default=1, help="seeds the games (default: 1)")
    args = parser.parse_args(argv)
    try:
        steps = parse_steps(args.steps)
        counts, spreads = greedy_actions(args.run_dir, steps, args.checkpoint, args.seed)
        names = action_meanings(RunDir(args.run_dir).read_config()["game"])
    except (OSError, ValueError, RunStateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.run_dir}: greedy actions over {steps:,} steps")
    print("| action | steps | share |")
    print("|---|---:|---:|")
    for action, name in enumerate(names):
        print(f"| {action} {name} | {counts[action]:,} | {counts[action] / steps:.0%} |")
    print(f"Q spread over actions (max − min): median {np.median(spreads):.3f}, largest {spreads.max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
