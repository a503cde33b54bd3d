"""PPO, DQN and QR-DQN with rl-baselines3-zoo's Atari hyperparameters (hyperparams/*.yml, ``atari``).

They are the stock SB3 / sb3-contrib algorithms; only the features extractor (AtariCNN, either
arm, with an explicit ``net_arch``) and the envs come from this package. DQN and QR-DQN add one
thing for ``--resume``: their replay buffer is not checkpointed (SB3 keeps it out of the model
file), so a resumed run refills it, playing its ε-greedy policy, before it learns again.
"""

from __future__ import annotations

from typing import Any

import sb3_contrib
import stable_baselines3

__all__ = ["DQN", "DQN_DEFAULTS", "PPO_DEFAULTS", "QRDQN", "QRDQN_DEFAULTS", "RefillsAfterResume"]


class RefillsAfterResume:
    """No gradient step until agent step ``learn_from`` is passed. A resume sets it to the
    checkpoint's step plus ``learning_starts``, the warm-up a fresh run has; unlike in SB3's own
    warm-up (random actions) the agent keeps playing its ε-greedy policy meanwhile."""

    learn_from = 0
    learning_starts: int
    num_timesteps: int

    def refill_before_learning(self, step: int) -> None:
        """The replay is empty again at ``step`` (a resume): learn only once it holds ``learning_starts`` more."""
        self.learn_from = step + self.learning_starts

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.num_timesteps > self.learn_from:  # strict, as SB3 compares with learning_starts
            super().train(gradient_steps, batch_size)  # type: ignore[misc]


class DQN(RefillsAfterResume, stable_baselines3.DQN):
    """SB3's DQN; see :class:`RefillsAfterResume`. Its saved models load with SB3's own class."""


class QRDQN(RefillsAfterResume, sb3_contrib.QRDQN):
    """sb3-contrib's QR-DQN; see :class:`RefillsAfterResume`."""


PPO_DEFAULTS: dict[str, Any] = {
    # rl-zoo3 hyperparams/ppo.yml, atari (Schulman et al. 2017, Table 5)
    "n_steps": 128,
    "n_epochs": 4,
    "batch_size": 256,
    "learning_rate": "lin_2.5e-4",
    "clip_range": "lin_0.1",
    "vf_coef": 0.5,
    "ent_coef": 0.01,
}

DQN_DEFAULTS: dict[str, Any] = {
    # rl-zoo3 hyperparams/dqn.yml, atari
    # SB3 stores obs and next_obs (2 × 28 KB per transition): 100k transitions take 5.6 GB, and a
    # 1M buffer would not fit a 24 GB machine. Raise it with --set buffer_size=... on a bigger box.
    "buffer_size": 100_000,
    "learning_rate": 1e-4,
    "batch_size": 32,
    "learning_starts": 100_000,
    "target_update_interval": 10_000,
    "train_freq": 4,
    "gradient_steps": 1,
    "exploration_fraction": 0.1,
    "exploration_final_eps": 0.1,
    "optimize_memory_usage": False,
}

QRDQN_DEFAULTS: dict[str, Any] = {
    # rl-zoo3 hyperparams/qrdqn.yml, atari, keeps sb3-contrib's QRDQN defaults (Dabney et al. 2018:
    # lr 5e-5, 200 quantiles, target update 10k, final ε 0.01); only the buffer is smaller, see DQN.
    "buffer_size": 100_000,
}
