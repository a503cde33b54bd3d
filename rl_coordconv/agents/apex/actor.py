"""The Ape-X actor: ε-greedy play in a vector of games, n-step transitions and their priorities.

An actor (Horgan et al. 2018, Algorithm 1) holds a copy of the learner's online and target
networks, refreshed when its runner hands it new parameters. Each vector step it

1. evaluates the online network on the current observations and picks ε-greedy actions;
2. starts its games stepping (training protocol: a life loss ends an episode, rewards clipped)
   and, while the emulator works in its own thread, evaluates the target network on the same
   observations: with the online values they give the double-Q bootstrap values of the
   transitions that end here;
3. extends each game's n-step transitions (:class:`NStepBuilder`) and queues the completed ones,
   with their initial priority ``|G − Q(s, a)|`` computed exactly as the learner will compute it,
   for the replay.

Every :meth:`ApexActor.run` returns a :class:`ActorOutput`: the new frames and prioritized
transitions as a replay :class:`~rl_coordconv.agents.apex.replay.Chunk`, the agent steps taken
and the games that finished (raw whole-game score, length).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import torch

from rl_coordconv.agents.apex.config import ApexConfig, actor_epsilon
from rl_coordconv.agents.apex.networks import DuelingDQNPolicy, load_flat_parameters
from rl_coordconv.agents.apex.replay import Chunk, ChunkBuilder
from rl_coordconv.envs import make_atari_vec_env

__all__ = ["ActorOutput", "ActorSpec", "ApexActor", "NStepBuilder", "NStepTransition"]


class NStepTransition(NamedTuple):
    """``(s_t, a_t, G, γ^k, s_{t+k})`` with ``G = Σ_{i<k} γ^i r_{t+i+1}``, rows standing for observations."""

    row: int  # row of s_t
    action: int
    ret: float
    discount: float  # γ^k, or 0 if the episode terminated within the k steps
    next_row: int  # row of s_{t+k}; = row when discount is 0
    q_value: float  # Q(s_t, a_t) of the actor's network when it acted


class NStepBuilder:
    """n-step transitions of one game, completed as its steps arrive.

    A transition is complete after ``n`` steps, or earlier when the episode ends: at a
    termination (including a life loss in training) its bootstrap discount is 0; at a time-limit
    truncation it bootstraps from the last observation with ``γ^k``, ``k`` the steps it covers.

    :param n: steps per return
    :param gamma: discount
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n = n
        self.gamma = gamma
        self._steps: deque[tuple[int, int, float, float]] = deque()

    def step(
        self,
        row: int,
        action: int,
        reward: float,
        q_value: float,
        next_row: int,
        terminated: bool = False,
        truncated: bool = False,
    ) -> list[NStepTransition]:
        """Record ``a_t`` taken in ``s_t`` (at ``row``) and its reward; return the transitions it completes.

        :param next_row: row of ``s_{t+1}`` (for a truncation: of the last observation of the episode)
        :param terminated: the episode ended for good at ``s_{t+1}``: no bootstrap
        :param truncated: the episode was cut at ``s_{t+1}``: bootstrap from it
        """
        self._steps.append((row, action, reward, q_value))
        if not (terminated or truncated) and len(self._steps) < self.n:
            return []
        ended = terminated or truncated
        done = list(self._steps) if ended else [self._steps[0]]
        rewards = [r for _, _, r, _ in self._steps]
        out = []
        for j, (start, first_action, _, q) in enumerate(done):
            ret = sum(self.gamma**i * r for i, r in enumerate(rewards[j:]))
            k = len(rewards) - j
            if terminated:
                out.append(NStepTransition(start, first_action, ret, 0.0, start, q))
            else:
                out.append(NStepTransition(start, first_action, ret, self.gamma**k, next_row, q))
        if ended:
            self._steps.clear()
        else:
            self._steps.popleft()
        return out


@dataclass(frozen=True)
class ActorSpec:
    """Everything needed to build actor ``index`` in another process or on another node."""

    index: int
    incarnation: int  # 0 for the first actor in this slot, +1 at every restart
    config: ApexConfig
    game: str
    n_envs: int
    env_backend: str
    seed: int  # the run's seed; actors derive their own from it, their index and incarnation
    policy_kwargs: dict[str, Any]

    @property
    def epsilon(self) -> float:
        return actor_epsilon(self.index, self.config.actors, self.config.epsilon_base, self.config.epsilon_alpha)


@dataclass
class ActorOutput:
    """What one :meth:`ApexActor.run` produced."""

    index: int
    incarnation: int
    chunk: Chunk
    steps: int  # agent steps (vector steps × games)
    episodes: list[tuple[float, int]] = field(default_factory=list)  # finished games: (raw score, length)


class ApexActor:
    """One Ape-X actor: a vector of games, a copy of the networks, an ε, n-step builders.

    :param spec: what to build; the games are seeded from the run seed, the actor index and its
        incarnation, so a restarted actor plays new games
    """

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.config = spec.config
        self.epsilon = spec.epsilon
        seeds = np.random.SeedSequence([spec.seed, spec.index, spec.incarnation]).generate_state(2)
        self.rng = np.random.default_rng(int(seeds[0]))
        # One emulator thread: actors are parallel across processes, and share the cores with the learner.
        self.env = make_atari_vec_env(
            spec.game, spec.n_envs, seed=int(seeds[1] % 2**31), backend=spec.env_backend, num_threads=1
        )
        self.policy = DuelingDQNPolicy(
            self.env.observation_space,
            self.env.action_space,  # type: ignore[arg-type]
            lambda _: self.config.learning_rate,
            **spec.policy_kwargs,
        )
        self.policy.set_training_mode(False)
        self.n_envs = spec.n_envs
        self.streams = np.arange(self.n_envs)
        self.builder = ChunkBuilder(self.n_envs)
        self.nstep = [NStepBuilder(self.config.n_step, self.config.gamma) for _ in range(self.n_envs)]
        self.obs = cast(np.ndarray, self.env.reset())
        self.rows = self.builder.observe(self.streams, self.obs)
        self.awaiting: list[tuple[int, NStepTransition]] = []  # (env, transition) waiting for s_{t+n}'s Q-values
        self.steps_since_pull = 0

    def set_parameters(self, online: np.ndarray | None = None, target: np.ndarray | None = None) -> None:
        """Load the learner's online and/or target parameters (flat vectors)."""
        if online is not None:
            load_flat_parameters(self.policy.q_net, online)
            self.steps_since_pull = 0
        if target is not None:
            load_flat_parameters(self.policy.q_net_target, target)

    def _q_values(self, network: torch.nn.Module, observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.as_tensor(observations)).numpy()

    def _queue(self, transitions: list[tuple[int, NStepTransition]], bootstrap: np.ndarray) -> None:
        """Send completed transitions to the chunk with priorities ``|G + γ^k V(s') − Q(s, a)|``.

        :param bootstrap: the double-Q value ``Q_target(s', argmax Q(s'))`` of each one's ``s'``
        """
        if not transitions:
            return
        envs = np.array([env for env, _ in transitions])
        fields = np.array([t[:5] for _, t in transitions], dtype=np.float64).T
        rows, actions, returns, discounts, next_rows = fields
        q_values = np.array([t.q_value for _, t in transitions])
        priorities = np.abs(returns + discounts * bootstrap - q_values)
        self.builder.add(envs, rows, next_rows, actions, returns, discounts, priorities)

    @staticmethod
    def _double_q(online: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target[np.arange(len(target)), online.argmax(axis=1)]

    def run(self, steps: int) -> ActorOutput:
        """Play ``steps`` vector steps; return their frames, prioritized transitions and finished games."""
        episodes: list[tuple[float, int]] = []
        for _ in range(steps):
            online = self._q_values(self.policy.q_net, self.obs)
            explore = self.rng.random(self.n_envs) < self.epsilon
            random_actions = self.rng.integers(online.shape[1], size=self.n_envs)
            actions = np.where(explore, random_actions, online.argmax(axis=1))
            self.env.step_async(actions)
            # While the emulator steps in its own thread: the transitions completed by the last
            # step bootstrap from the current observations.
            values = self._double_q(online, self._q_values(self.policy.q_net_target, self.obs))
            self._queue(self.awaiting, values[[env for env, _ in self.awaiting]])
            self.awaiting = []
            step_obs, rewards, dones, infos = self.env.step_wait()
            obs = cast(np.ndarray, step_obs)
            truncated = np.array(
                [bool(d and info.get("TimeLimit.truncated", False)) for d, info in zip(dones, infos, strict=True)]
            )
            # A cut episode bootstraps from its last observation, which gets rows of its own first.
            terminal_rows: dict[int, int] = {}
            cut_values: dict[int, float] = {}
            cut = np.flatnonzero(truncated)
            if len(cut):
                last_obs = np.stack([infos[i]["terminal_observation"] for i in cut])
                terminal_rows = dict(zip(cut.tolist(), self.builder.observe(cut, last_obs).tolist(), strict=True))
                cut_online = self._q_values(self.policy.q_net, last_obs)
                cut_target = self._q_values(self.policy.q_net_target, last_obs)
                cut_values = dict(zip(cut.tolist(), self._double_q(cut_online, cut_target).tolist(), strict=True))
            new_rows = self.builder.observe(self.streams, obs)
            for env in range(self.n_envs):
                action = int(actions[env])
                completed = self.nstep[env].step(
                    int(self.rows[env]),
                    action,
                    float(rewards[env]),
                    float(online[env, action]),
                    next_row=terminal_rows.get(env, int(new_rows[env])),
                    terminated=bool(dones[env] and not truncated[env]),
                    truncated=bool(truncated[env]),
                )
                if truncated[env]:
                    self._queue([(env, t) for t in completed], np.full(len(completed), cut_values[env]))
                elif dones[env]:
                    self._queue([(env, t) for t in completed], np.zeros(len(completed)))
                else:
                    self.awaiting += [(env, t) for t in completed]
                episode = infos[env].get("episode")
                if episode is not None:
                    episodes.append((float(episode["r"]), int(episode["l"])))
            self.obs, self.rows = obs, new_rows
            self.steps_since_pull += 1
        return ActorOutput(self.spec.index, self.spec.incarnation, self.builder.build(), steps * self.n_envs, episodes)

    def close(self) -> None:
        self.env.close()
