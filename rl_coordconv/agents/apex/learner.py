"""The Ape-X learner and its Q-network: an SB3 ``DQNPolicy`` with a dueling head over ``AtariCNN``.

The network lives in an SB3 :class:`~stable_baselines3.DQN` model, so a trained Ape-X agent *is*
an SB3 DQN zip: ``stable_baselines3.DQN.load`` (or ``rl_coordconv.agents.load_model("apex", …)``)
loads it and ``predict`` acts with it. The zip is for acting and evaluation; SB3's own replay and
``learn`` are not used (its replay buffer is a one-slot placeholder), and an Ape-X run continues
with ``train --resume``.

One learner step (Horgan et al. 2018): sample a prioritized batch, compute n-step double-Q targets
``G = R + γ^k Q_target(s', argmax_a Q(s', a))`` (van Hasselt et al. 2016), minimise
``½ w (G − Q(s, a))²`` with importance weights ``w``, clip the gradient norm, and return ``|G − Q|``
as the new priorities. The target network is copied from the online one every
``target_update_interval`` steps.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from rl_coordconv.agents.apex.config import ApexConfig
from rl_coordconv.agents.apex.replay import SampledBatch
from rl_coordconv.extractors import AtariCNN, CoordLayers, atari_policy_kwargs

__all__ = [
    "ApexLearner",
    "DuelingDQNPolicy",
    "DuelingHead",
    "DuelingQNetwork",
    "apex_policy_kwargs",
    "flat_parameters",
    "load_flat_parameters",
    "make_apex_model",
]


class DuelingHead(nn.Module):
    """``Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a')`` over a features vector (Wang et al. 2016, Eq. 9).

    Ape-X builds it with empty ``net_arch``: V and A are linear layers on ``AtariCNN``'s shared 512
    features, so conv and CoordConv arms keep the DQN trunk. Wang et al. give each stream a
    512-unit hidden layer of its own and scale the gradient into the trunk by 1/√2; neither is done here.

    :param features_dim: input features
    :param n_actions: actions
    :param net_arch: hidden layers of each stream (empty: both streams are linear)
    :param activation_fn: activation between hidden layers
    """

    def __init__(
        self, features_dim: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.value = nn.Sequential(*create_mlp(features_dim, 1, net_arch, activation_fn))
        self.advantage = nn.Sequential(*create_mlp(features_dim, n_actions, net_arch, activation_fn))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


class DuelingQNetwork(QNetwork):
    """SB3's ``QNetwork`` whose head (``q_net``) is a :class:`DuelingHead`."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        # SB3 types q_net as a Sequential; any module mapping features to Q-values works
        self.q_net = DuelingHead(features_dim, int(action_space.n), self.net_arch, activation_fn)  # type: ignore[assignment]


class DuelingDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` with dueling Q-networks (online and target)."""

    def make_q_net(self) -> DuelingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args).to(self.device)


def apex_policy_kwargs(
    config: ApexConfig, coordconv: bool = False, with_r: bool = False, coord_layers: CoordLayers = "first"
) -> dict[str, Any]:
    """``policy_kwargs`` of the Ape-X network: the DQN arm's ``AtariCNN`` and explicit ``net_arch``
    (:func:`~rl_coordconv.extractors.atari_policy_kwargs`), Ape-X's centered RMSProp."""
    kwargs = atari_policy_kwargs("dqn", coordconv=coordconv, with_r=with_r, coord_layers=coord_layers)
    kwargs["optimizer_class"] = RMSpropTFLike
    kwargs["optimizer_kwargs"] = dict(alpha=config.rmsprop_decay, eps=config.rmsprop_eps, centered=True)
    return kwargs


def make_apex_model(
    observation_space: spaces.Space,
    action_space: spaces.Space,
    config: ApexConfig,
    policy_kwargs: dict[str, Any],
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> DQN:
    """An SB3 DQN holding the Ape-X network, built from spaces alone (the actors own the envs).

    Its hyperparameters mirror Ape-X's where SB3 has a counterpart, for the record; its
    ``exploration_rate`` is the evaluation ε used by ``predict(deterministic=False)``.
    """
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"Ape-X DQN needs a discrete action space, got {action_space}")
    model = DQN(
        DuelingDQNPolicy,
        env=None,  # type: ignore[arg-type]  # the spaces are set below
        learning_rate=config.learning_rate,
        buffer_size=1,  # SB3's replay is never used: Ape-X has its own
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        gamma=config.gamma,
        target_update_interval=config.target_update_interval,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        _init_setup_model=False,
    )
    model.observation_space = observation_space
    model.action_space = action_space
    model.n_envs = 1
    model._setup_model()
    model.exploration_rate = config.eval_epsilon
    return model


def flat_parameters(module: nn.Module) -> np.ndarray:
    """All parameters of ``module`` as one float32 vector, on the CPU."""
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().cpu().numpy()


def load_flat_parameters(module: nn.Module, vector: np.ndarray | torch.Tensor) -> None:
    """Copy a vector made by :func:`flat_parameters` into ``module``'s parameters, in place."""
    if isinstance(vector, np.ndarray) and not vector.flags.writeable:
        vector = vector.copy()  # Ray hands out read-only views of its object store; torch warns on those
    source = torch.as_tensor(vector)
    offset = 0
    with torch.no_grad():
        for parameter in module.parameters():
            n = parameter.numel()
            parameter.copy_(source[offset : offset + n].view_as(parameter))
            offset += n
    if offset != source.numel():
        raise ValueError(f"parameter vector has {source.numel()} values, the network {offset}")


class ApexLearner:
    """Trains the Q-network of an SB3 DQN model on prioritized n-step double-Q batches.

    :param model: from :func:`make_apex_model`, or a saved one loaded with ``DQN.load``
    :param config: the Ape-X hyperparameters
    """

    def __init__(self, model: DQN, config: ApexConfig) -> None:
        self.model = model
        self.config = config
        self.policy = model.policy
        self.device = model.device

    @property
    def steps(self) -> int:
        """Learner steps (gradient updates) so far, across resumes."""
        return int(self.model._n_updates)

    @property
    def target_version(self) -> int:
        """How many times the target network has been copied from the online one."""
        return self.steps // self.config.target_update_interval

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)

    def step(self, batch: SampledBatch) -> tuple[np.ndarray, dict[str, float]]:
        """One gradient step on ``batch``.

        :return: ``|TD error|`` of each sample (its new priority), and ``loss``, ``q_values``
        """
        policy = self.policy
        policy.set_training_mode(True)
        observations = self._tensor(batch.observations)
        next_observations = self._tensor(batch.next_observations)
        actions = self._tensor(batch.actions)[:, None]
        with torch.no_grad():
            next_actions = policy.q_net(next_observations).argmax(dim=1, keepdim=True)
            next_values = policy.q_net_target(next_observations).gather(1, next_actions).squeeze(1)
            targets = self._tensor(batch.returns) + self._tensor(batch.discounts) * next_values
        q_values = policy.q_net(observations).gather(1, actions).squeeze(1)
        td_errors = targets - q_values
        loss = (self._tensor(batch.weights) * 0.5 * td_errors.pow(2)).mean()
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.q_net.parameters(), self.config.max_grad_norm)
        policy.optimizer.step()
        self.model._n_updates += 1
        if self.steps % self.config.target_update_interval == 0:
            policy.q_net_target.load_state_dict(policy.q_net.state_dict())
        metrics = {"loss": float(loss.detach()), "q_values": float(q_values.detach().mean())}
        return td_errors.detach().abs().cpu().numpy(), metrics

    def online_parameters(self) -> np.ndarray:
        return flat_parameters(self.policy.q_net)

    def target_parameters(self) -> np.ndarray:
        return flat_parameters(self.policy.q_net_target)

    def coord_weight_ratio(self) -> float | None:
        """‖W_coord‖/‖W_image‖ of the online network's first CoordConv layer (None in the conv arm)."""
        extractor = self.policy.q_net.features_extractor
        return extractor.coord_weight_ratio() if isinstance(extractor, AtariCNN) else None

    def save(self, agent_steps: int) -> bytes:
        """The model as an SB3 zip (network, target network, optimizer, counters)."""
        self.model.num_timesteps = agent_steps
        buffer = io.BytesIO()
        self.model.save(buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: Path | str, config: ApexConfig, device: torch.device | str = "cpu") -> ApexLearner:
        """A learner resumed from a zip written by :meth:`save`."""
        return cls(DQN.load(path, device=device), config)
