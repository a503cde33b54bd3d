"""Ape-X's hyperparameters: one dataclass, each default with its source.

Sources: Horgan et al. (2018), "Distributed Prioritized Experience Replay" (Ape-X DQN on Atari);
Schaul et al. (2016), "Prioritized Experience Replay"; Mnih et al. (2015), the Nature DQN;
Wang et al. (2016), dueling networks; van Hasselt et al. (2016), double Q-learning.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["APEX_ENVS_PER_ACTOR", "APEX_TIMESTEPS", "ApexConfig", "actor_epsilon"]

# Each actor steps a small vector of games: one network call per step serves all of them, which is
# what makes a CPU actor worth its core. Horgan et al. ran one game per actor, on 360 actors.
APEX_ENVS_PER_ACTOR = 4
# 10M agent steps = 40M frames, the budget of the A2C arm (rl_coordconv.agents.a2c), so the two
# algorithms compare conv and CoordConv on the same amount of experience.
APEX_TIMESTEPS = 10_000_000


@dataclass(frozen=True)
class ApexConfig:
    """Ape-X DQN: many ε-greedy actors, one learner, prioritized n-step double-Q with a dueling head.

    The same config drives every runner (local processes or Ray actors). The loss is the
    importance-weighted squared n-step double-Q error, ½ w (G − Q(s, a))², as in Horgan et al.
    """

    # ε-greedy actors. Horgan et al. ran 360; 4 spread ε from 0.4 to 0.0007 and still leave a
    # 2-core machine time for the learner. More with --backend ray on a cluster.
    actors: int = 4
    n_step: int = 3  # multi-step returns, n = 3 (Horgan et al. 2018)
    gamma: float = 0.99  # discount (Mnih et al. 2015; Horgan et al. 2018)
    batch_size: int = 512  # learner batch (Horgan et al. 2018)
    alpha: float = 0.6  # priority exponent: P(i) ∝ p_i^α (Horgan et al. 2018)
    beta: float = 0.4  # importance-sampling exponent, fixed, not annealed (Horgan et al. 2018)
    priority_eps: float = 1e-6  # added to |TD error| so no transition has zero probability (Schaul et al. 2016)
    # Transitions. Horgan et al. kept 2M; here a frame is stored once (7 KB per transition), so 1M
    # takes ≈ 7 GB and fits a 24 GiB machine next to its actors, where 2M (≈ 14 GB) would not.
    replay_capacity: int = 1_000_000
    # Transitions the learner samples per transition inserted (see .limiter; 0: no limit). Horgan
    # et al. report ≈ 19 batches of 512 per second against ≈ 12.5k transitions per second arriving
    # (360 actors, ≈ 50k frames/s): 19 × 512 / 12.5k ≈ 0.8.
    samples_per_insert: float = 0.8
    learning_starts: int = 50_000  # transitions in replay before learning; Nature DQN's replay start size
    target_update_interval: int = 2500  # learner steps between target-network copies (Horgan et al. 2018)
    max_grad_norm: float = 40.0  # gradient norm clip (Horgan et al. 2018)
    # Centered RMSProp, learning rate 0.00025/4, decay 0.95, ε 1.5e-7, no momentum (Horgan et al.
    # 2018), TensorFlow-style: ε inside the square root (SB3's RMSpropTFLike).
    learning_rate: float = 0.00025 / 4
    rmsprop_decay: float = 0.95
    rmsprop_eps: float = 1.5e-7
    epsilon_base: float = 0.4  # actor i's ε = epsilon_base^(1 + epsilon_alpha·i/(N−1)) (Horgan et al. 2018)
    epsilon_alpha: float = 7.0
    # Vector steps between parameter pulls: every 400 frames of each game (Horgan et al. 2018).
    parameter_pull_period: int = 100
    # Vector steps an actor buffers before it computes priorities and sends them to the replay
    # (Horgan et al. 2018: local buffers of 50 transitions per game).
    send_period: int = 50
    # ε of the saved model's stochastic predict (enjoy, SB3's predict(deterministic=False)):
    # the evaluation ε of tuned double DQN (van Hasselt et al. 2016).
    eval_epsilon: float = 0.001
    # Save the replay with every checkpoint (only the newest checkpoint keeps one), so that --resume
    # continues with the same transitions and priorities: the size of the replay's arrays on disk,
    # 6.6 GiB at 1M transitions. False when disk is short: a resumed run then refills its replay and
    # the learner waits for learning_starts again. (A setting of the run: choose it at the start.)
    checkpoint_replay: bool = True

    def __post_init__(self) -> None:
        positive = ("actors", "n_step", "batch_size", "replay_capacity", "target_update_interval")
        for key in (*positive, "send_period", "parameter_pull_period"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a whole number of at least 1, got {value!r}")
        if not isinstance(self.learning_starts, int) or self.learning_starts < 0:
            raise ValueError(f"learning_starts must be a whole number >= 0, got {self.learning_starts!r}")
        for key in ("gamma", "alpha", "beta", "epsilon_base", "eval_epsilon"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{key} must be a number in [0, 1], got {value!r}")
        if isinstance(self.samples_per_insert, bool) or not isinstance(self.samples_per_insert, (int, float)):
            raise ValueError(f"samples_per_insert must be a number >= 0 (0: no limit), got {self.samples_per_insert!r}")
        if not self.samples_per_insert >= 0:
            raise ValueError(f"samples_per_insert must be a number >= 0 (0: no limit), got {self.samples_per_insert!r}")
        if not isinstance(self.checkpoint_replay, bool):
            raise ValueError(f"checkpoint_replay must be true or false, got {self.checkpoint_replay!r}")
        if not isinstance(self.priority_eps, (int, float)) or not self.priority_eps > 0:
            raise ValueError(f"priority_eps must be a number > 0, got {self.priority_eps!r}")
        for key in ("learning_rate", "rmsprop_eps", "max_grad_norm", "epsilon_alpha"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        if not isinstance(self.rmsprop_decay, (int, float)) or not 0 <= self.rmsprop_decay < 1:
            raise ValueError(f"rmsprop_decay must be a number in [0, 1), got {self.rmsprop_decay!r}")
        if self.replay_capacity < self.batch_size:
            raise ValueError(
                f"replay_capacity ({self.replay_capacity:,}) must be at least batch_size ({self.batch_size:,})"
            )
        if self.learning_starts > self.replay_capacity // 2:
            # a full replay holds a little less than its capacity (each game's first frames, the
            # transitions still being built), so a threshold near it might never be reached
            raise ValueError(
                f"learning_starts ({self.learning_starts:,}) must be at most half of "
                f"replay_capacity ({self.replay_capacity:,})"
            )

    def epsilons(self) -> list[float]:
        """The ε of every actor, most exploratory first."""
        return [actor_epsilon(i, self.actors, self.epsilon_base, self.epsilon_alpha) for i in range(self.actors)]


def actor_epsilon(index: int, actors: int, base: float = 0.4, alpha: float = 7.0) -> float:
    """Actor ``index``'s ε: ``base^(1 + alpha·index/(actors−1))`` (Horgan et al. 2018).

    With one actor the fraction is taken as 0: that actor explores with ``base``.

    :param index: the actor, ``0 .. actors−1``
    :param actors: the number of actors N
    :param base: ε of actor 0
    :param alpha: how fast ε falls across actors; the last actor gets ``base^(1 + alpha)``
    """
    if not 0 <= index < actors:
        raise ValueError(f"actor index {index} is not in 0..{actors - 1}")
    fraction = index / (actors - 1) if actors > 1 else 0.0
    return float(base ** (1 + alpha * fraction))
