"""Every algorithm, in both arms, learns Catch: the tests that fail when an agent is broken.

Each trains through the command line on ``--game Catch`` (random play scores −0.71, a perfect
paddle +1), then plays 100 games greedily with the saved model through ``enjoy`` and asks for a
mean score of at least 0.5. Budgets and settings are the smallest found to learn in every seed
tried, with room to spare, so that the whole README test command stays within the README's
16–26 minutes on 2 cores; each is under 70 s here. Breaking an algorithm on purpose (learning rate
0, a frozen target network, the advantage's sign flipped, the replay's actions shuffled) makes its
test fail.

``pytest -m "not slow"`` leaves them out for a quick loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rl_coordconv import enjoy, train
from rl_coordconv.envs import random_policy_score

# Q-learners: 4 games, one gradient step per 8 transitions, a short ε schedule, fast targets.
_Q = (
    "--n-envs 4 --timesteps 10k --set train_freq=2 --set buffer_size=10000 --set learning_starts=1000 "
    "--set target_update_interval=250 --set exploration_fraction=0.3 --set exploration_final_eps=0.02 "
    "--set learning_rate=1e-3"
)
BUDGETS = {
    # A2C learns Catch with its defaults too (README), in 300k steps; 8 games and a 4× learning
    # rate get there in 60k.
    "a2c": "--n-envs 8 --timesteps 60k --set learning_rate=3e-3",
    "ppo": "--timesteps 25k --set learning_rate=1e-3",
    "dqn": _Q,
    "qrdqn": _Q,
    # 2 local actors (ε 0.4 and 0.0007), small batches and replay, frequent sends and pulls
    "apex": (
        "--actors 2 --timesteps 40k --set batch_size=32 --set learning_rate=1e-3 --set target_update_interval=100 "
        "--set learning_starts=1000 --set replay_capacity=50000 --set send_period=10 --set parameter_pull_period=10"
    ),
}
PASS_MARK = 0.5


def learn_catch(log_dir: Path, algo: str, coordconv: bool, extra: list[str] | None = None) -> float:
    """Train ``algo`` on Catch with its test budget; return the greedy mean score of its final model."""
    args = ["--algo", algo, "--game", "Catch", "--log-dir", str(log_dir), "--no-progress"]
    args += ["--checkpoint-every", "1M", *BUDGETS[algo].split(), *(extra or [])]
    assert train.main(args + ["--coordconv"] * coordconv) == 0
    (run,) = log_dir.glob(f"{algo}/Catch/*/seed0")
    scores = enjoy.play(run, episodes=100, deterministic=True, device="cpu")
    return float(np.mean(scores))


@pytest.mark.slow
@pytest.mark.parametrize("coordconv", [False, True], ids=["conv", "coordconv"])
@pytest.mark.parametrize("algo", list(BUDGETS))
def test_every_algorithm_learns_catch_in_both_arms(tmp_path, algo, coordconv):
    score = learn_catch(tmp_path, algo, coordconv)
    print(f"LEARNED {algo} {'coordconv' if coordconv else 'conv'}: greedy {score:.2f}")
    assert score >= PASS_MARK, f"{algo} scored {score:.2f} after training (random play: {random_policy_score():.2f})"
